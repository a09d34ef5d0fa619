"""CORS on every answer to an allowed origin, the edge's own (413, 431, the last-resort 500) too:
without the headers a web app reads "Failed to fetch" instead of the problem."""

from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import APIRouter, FastAPI

from app.core.config import Settings
from app.core.edge import MAX_BODY_BYTES, MAX_HEADER_BYTES
from app.main import CORS_ALLOW_HEADERS, CORS_EXPOSE_HEADERS, create_app
from tests.helpers import auth, create_user

ALLOWED = "http://app.localhost:5173"
OTHER = "http://evil.localhost:5173"

boom = APIRouter()


@boom.get("/test/cors-boom")
async def raise_a_bug() -> None:
    raise RuntimeError("a bug")


@pytest.fixture(scope="module")
async def cors_app(settings: Settings) -> AsyncIterator[FastAPI]:
    app = create_app(settings.model_copy(update={"cors_allow_origins": ALLOWED}))
    app.include_router(boom)
    async with LifespanManager(app):
        yield app


@pytest.fixture
async def browser(cors_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=cors_app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.localhost") as c:
        yield c


Call = Callable[[httpx.AsyncClient, dict[str, str]], Awaitable[httpx.Response]]


async def _too_large(c: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    body = b"x" * (MAX_BODY_BYTES + 1)
    return await c.post("/v1/garages", content=body, headers=headers)


async def _too_large_streamed(c: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(17):
            yield b"x" * (64 * 1024)

    return await c.post("/v1/garages", content=chunks(), headers=headers)


async def _headers_too_large(c: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    return await c.get("/v1/garages", headers=headers | {"X-Padding": "x" * MAX_HEADER_BYTES})


async def _bug(c: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    return await c.get("/test/cors-boom", headers=headers)


async def _no_token(c: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    return await c.get("/v1/garages", headers=headers)


async def _preflight(c: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    request_headers = "authorization, content-type, idempotency-key, if-match, x-request-id"
    return await c.options(
        "/v1/garages",
        headers=headers
        | {
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": request_headers,
        },
    )


ANSWERS: dict[str, tuple[Call, int, str | None]] = {
    "413 declared": (_too_large, 413, "payload_too_large"),
    "413 streamed": (_too_large_streamed, 413, "payload_too_large"),
    "431": (_headers_too_large, 431, "headers_too_large"),
    "500 from the edge": (_bug, 500, "internal_error"),
    "401 from a route": (_no_token, 401, "missing_token"),
}


@pytest.mark.parametrize("name", sorted(ANSWERS))
async def test_every_answer_to_an_allowed_origin_carries_the_cors_headers(
    browser: httpx.AsyncClient, name: str
) -> None:
    call, status, code = ANSWERS[name]
    resp = await call(browser, {"Origin": ALLOWED, "Content-Type": "application/json"})
    assert resp.status_code == status, resp.text
    assert resp.json()["code"] == code
    assert resp.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert resp.headers["Access-Control-Allow-Credentials"] == "true"
    assert "Origin" in [v.strip() for v in resp.headers["Vary"].split(",")]
    exposed = {h.strip().lower() for h in resp.headers["Access-Control-Expose-Headers"].split(",")}
    assert exposed == {h.lower() for h in CORS_EXPOSE_HEADERS}
    assert resp.headers["X-Request-ID"]


@pytest.mark.parametrize("name", sorted(ANSWERS))
async def test_a_disallowed_origin_is_granted_nothing(
    browser: httpx.AsyncClient, name: str
) -> None:
    """Without Access-Control-Allow-Origin the browser hides the answer (Starlette still adds
    Allow-Credentials and Expose-Headers to every cross-origin answer: inert without it)."""
    call, status, _ = ANSWERS[name]
    resp = await call(browser, {"Origin": OTHER, "Content-Type": "application/json"})
    assert resp.status_code == status, resp.text
    assert "Access-Control-Allow-Origin" not in resp.headers
    assert "Origin" in [v.strip() for v in resp.headers["Vary"].split(",")]  # caches keep apart


async def test_a_preflight_for_an_allowed_origin_allows_the_contracts_headers(
    browser: httpx.AsyncClient,
) -> None:
    resp = await _preflight(browser, {"Origin": ALLOWED})
    assert resp.status_code == 200, resp.text
    assert resp.headers["Access-Control-Allow-Origin"] == ALLOWED
    allowed = {h.strip().lower() for h in resp.headers["Access-Control-Allow-Headers"].split(",")}
    assert {h.lower() for h in CORS_ALLOW_HEADERS} <= allowed
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    assert resp.headers["X-Request-ID"]

    refused = await _preflight(browser, {"Origin": OTHER})
    assert refused.status_code == 400
    assert "Access-Control-Allow-Origin" not in refused.headers


async def test_an_answer_to_an_allowed_origin_is_readable_with_a_token(
    browser: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    """The allow twin of the refusals above: a real create, read as a browser would."""
    user = await create_user(db)
    resp = await browser.post(
        "/v1/garages", json={"name": "Home"}, headers=auth(user) | {"Origin": ALLOWED}
    )
    assert resp.status_code == 201, resp.text
    assert resp.headers["Access-Control-Allow-Origin"] == ALLOWED


async def test_without_allowed_origins_no_answer_grants_any(client: httpx.AsyncClient) -> None:
    resp = await _too_large(client, {"Origin": ALLOWED, "Content-Type": "application/json"})
    assert resp.status_code == 413
    assert "Access-Control-Allow-Origin" not in resp.headers
