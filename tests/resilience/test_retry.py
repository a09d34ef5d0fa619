"""Retries through the real error handlers and the edge: 40001/40P01 re-run a request, bounded."""

import asyncpg
import httpx
from fastapi import FastAPI, Request

from app.core.edge import EdgeMiddleware
from app.core.errors import ProblemError, install_error_handlers
from app.main import create_app
from tests.helpers import TEST_JWT_SECRET


def _app(failures: int, exc: type[Exception] = asyncpg.SerializationError) -> tuple[FastAPI, dict]:
    """A tiny app whose route fails `failures` times with `exc`, then echoes its body."""
    seen: dict = {"calls": 0, "bodies": [], "request_ids": []}
    app = FastAPI()
    install_error_handlers(app)
    app.add_middleware(EdgeMiddleware)

    @app.post("/work")
    async def work(request: Request) -> dict:
        seen["calls"] += 1
        seen["bodies"].append(await request.body())
        seen["request_ids"].append(request.state.request_id)
        if seen["calls"] <= failures:
            if exc is ProblemError:
                raise ProblemError(503, "busy", "Busy", headers={"Retry-After": "1"})
            raise exc("could not serialize access")
        return {"calls": seen["calls"], "body": (await request.json())}

    return app, seen


async def _post(app: FastAPI, payload: dict) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.post("/work", json=payload, headers={"X-Request-ID": "req-1"})


async def test_serialization_failure_is_retried_with_the_same_body() -> None:
    app, seen = _app(failures=2)
    resp = await _post(app, {"odometer": 42})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"calls": 3, "body": {"odometer": 42}}
    assert seen["bodies"] == [b'{"odometer":42}'] * 3
    # One request to the client: the same request id on every attempt and on the response.
    assert seen["request_ids"] == ["req-1"] * 3
    assert resp.headers["x-request-id"] == "req-1"


async def test_deadlock_is_retried() -> None:
    app, seen = _app(failures=1, exc=asyncpg.DeadlockDetectedError)
    resp = await _post(app, {"a": 1})
    assert resp.status_code == 200
    assert seen["calls"] == 2


async def test_retries_are_bounded_and_the_last_answer_is_a_503_problem() -> None:
    app, seen = _app(failures=10)
    resp = await _post(app, {"a": 1})
    assert seen["calls"] == 3
    assert resp.status_code == 503
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert resp.headers["retry-after"] == "1"
    assert resp.json()["code"] == "transaction_conflict"
    assert resp.headers["x-request-id"] == "req-1"


async def test_other_errors_are_not_retried() -> None:
    for exc in (asyncpg.LockNotAvailableError, asyncpg.QueryCanceledError, ProblemError):
        app, seen = _app(failures=1, exc=exc)
        resp = await _post(app, {"a": 1})
        assert resp.status_code == 503, exc
        assert seen["calls"] == 1, exc


async def test_the_body_limit_still_answers_413() -> None:
    app, seen = _app(failures=0)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        resp = await client.post(
            "/work",
            content=b"x" * (1024 * 1024 + 1),
            headers={"content-type": "application/json"},
        )
    assert resp.status_code == 413
    assert seen["calls"] == 0


def test_create_app_runs_requests_through_one_edge_layer_outside_cors() -> None:
    from pydantic import SecretStr

    from app.core.config import Settings

    settings = Settings(
        supabase_jwt_secret=SecretStr(TEST_JWT_SECRET), cors_allow_origins="https://app.example"
    )
    app = create_app(settings, database_url="postgresql://nobody@127.0.0.1:1/none")
    order = [m.cls for m in app.user_middleware]  # outermost first
    assert order[0] is EdgeMiddleware  # CORS answers carry X-Request-ID too
    assert order.count(EdgeMiddleware) == 1
