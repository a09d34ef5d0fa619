"""Limits a client cannot get around: page size, body size (declared, chunked, or lied about),
header size (through a real uvicorn), JSON nesting depth, string lengths, list lengths.

Each over-the-limit request gets its 4xx problem, never a 500; each has an allow twin just under.
"""

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from app.core.config import Settings
from app.core.edge import MAX_BODY_BYTES, MAX_HEADER_BYTES
from app.main import create_app
from app.web.models import MAX_JSON_DEPTH
from app.web.paging import MAX_LIMIT
from tests.factories import LIST_PATHS, SPEC
from tests.helpers import User, auth, create_user


@pytest.fixture
async def owner(db: asyncpg.Pool) -> User:
    return await create_user(db)


@pytest.fixture
async def vehicle(client: httpx.AsyncClient, owner: User) -> str:
    resp = await client.post("/v1/vehicles", json={"make": "Moto"}, headers=auth(owner))
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def _problem(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = resp.json()
    return body


# --- limit ----------------------------------------------------------------------------------------

PAGED = [
    p
    for p in LIST_PATHS
    if any(x["name"] == "limit" for x in SPEC["paths"][p]["get"].get("parameters", []))
]


def test_every_list_is_paged() -> None:
    assert len(PAGED) >= 5
    for path in PAGED:
        limit = next(x for x in SPEC["paths"][path]["get"]["parameters"] if x["name"] == "limit")
        assert limit["schema"]["maximum"] == MAX_LIMIT, path


@pytest.mark.parametrize("path", PAGED)
async def test_limit_is_capped(client: httpx.AsyncClient, owner: User, path: str) -> None:
    for bad in (MAX_LIMIT + 1, 10**9, 0, -1):
        resp = await client.get(path, params={"limit": bad}, headers=auth(owner))
        assert _problem(resp, 422)["code"] == "validation_failed"
    twin = await client.get(path, params={"limit": MAX_LIMIT}, headers=auth(owner))
    assert twin.status_code == 200, twin.text


# --- body size ------------------------------------------------------------------------------------


def _garage_body(size: int) -> bytes:
    """A JSON garage whose encoding is exactly `size` bytes (a long description)."""
    empty = json.dumps({"name": "G", "description": ""}).encode()
    return json.dumps({"name": "G", "description": "x" * (size - len(empty))}).encode()


async def test_body_over_1_mib_is_413(client: httpx.AsyncClient, owner: User) -> None:
    headers = auth(owner) | {"Content-Type": "application/json"}
    resp = await client.post(
        "/v1/garages", content=_garage_body(MAX_BODY_BYTES + 1), headers=headers
    )
    assert _problem(resp, 413)["code"] == "payload_too_large"
    # Twin: exactly 1 MiB passes the size limit (and then fails validation on the long description).
    twin = await client.post("/v1/garages", content=_garage_body(MAX_BODY_BYTES), headers=headers)
    assert twin.status_code == 422, twin.text


async def test_chunked_body_without_content_length_is_413(
    client: httpx.AsyncClient, owner: User
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        body = _garage_body(MAX_BODY_BYTES + 64 * 1024)
        for i in range(0, len(body), 64 * 1024):
            yield body[i : i + 64 * 1024]

    headers = auth(owner) | {"Content-Type": "application/json"}
    resp = await client.post("/v1/garages", content=chunks(), headers=headers)
    assert "content-length" not in resp.request.headers  # really streamed
    assert _problem(resp, 413)["code"] == "payload_too_large"


async def _raw_asgi(app: FastAPI, headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> int:
    """Drive the app with hand-made ASGI messages: the body may disagree with Content-Length."""
    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/garages",
        "raw_path": b"/v1/garages",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("test", 80),
        "state": {},
    }
    await asyncio.wait_for(app(scope, receive, send), timeout=30)
    start = next(m for m in sent if m["type"] == "http.response.start")
    return int(start["status"])


async def test_a_lying_content_length_does_not_get_past_the_limit(
    app: FastAPI, owner: User
) -> None:
    body = _garage_body(MAX_BODY_BYTES + 1)
    chunks = [body[i : i + 256 * 1024] for i in range(0, len(body), 256 * 1024)]
    token = auth(owner)["Authorization"].encode()
    headers = [
        (b"host", b"test"),
        (b"authorization", token),
        (b"content-type", b"application/json"),
        (b"content-length", b"20"),  # a lie: the body is over 1 MiB
    ]
    assert await _raw_asgi(app, headers, chunks) == 413
    # Garbage Content-Length: refused, not parsed.
    bad = [*headers[:3], (b"content-length", b"-1")]
    assert await _raw_asgi(app, bad, [b"{}"]) == 413
    # Twin: an honest small body gets through.
    small = json.dumps({"name": "ok"}).encode()
    honest = [*headers[:3], (b"content-length", str(len(small)).encode())]
    assert await _raw_asgi(app, honest, [small]) == 201


# --- header size (a real server) ------------------------------------------------------------------


@pytest.fixture(params=["httptools", "h11"])
def served(request: pytest.FixtureRequest, settings: Settings) -> Iterator[tuple[str, int]]:
    """The app under a real uvicorn on 127.0.0.1 (the ASGI transport has no header parser)."""
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=0, http=request.param, log_config=None
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    port = int(server.servers[0].sockets[0].getsockname()[1])
    try:
        yield request.param, port
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def _raw_get(port: int, extra: bytes) -> int:
    """The status of a raw HTTP/1.1 request; 0 if the server hung up without answering."""
    data = b""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        try:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n" + extra)
            sock.sendall(b"Connection: close\r\n\r\n")
            while chunk := sock.recv(65536):
                data += chunk
        except (ConnectionResetError, BrokenPipeError):
            pass  # h11 answers 400 and closes while the rest is still being sent
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0


@pytest.mark.parametrize("size", [MAX_HEADER_BYTES + 1, 256 * 1024, 4 * 1024 * 1024])
def test_huge_headers_are_refused_not_500(served: tuple[str, int], size: int) -> None:
    _, port = served
    # 431 from the app's limit, or 400 (or a hang-up) from the HTTP parser: never a 500.
    assert _raw_get(port, b"X-Padding: " + b"a" * size + b"\r\n") in (0, 400, 431)
    # Many small headers add up the same way.
    many = b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 1000) for i in range(200))
    assert _raw_get(port, many) in (0, 400, 431)
    # Twin: ordinary headers are fine.
    assert _raw_get(port, b"X-Padding: " + b"a" * 1000 + b"\r\n") == 200


def test_the_app_itself_refuses_huge_headers_with_431(served: tuple[str, int]) -> None:
    """httptools (uvicorn's default parser) has no header limit: the app's own 431 is the bound.
    h11 may refuse first (400), depending on how the bytes arrive."""
    parser, port = served
    status = _raw_get(port, b"X-Padding: " + b"a" * (MAX_HEADER_BYTES + 1) + b"\r\n")
    assert status == 431 if parser == "httptools" else status in (0, 400, 431)


async def test_a_huge_token_is_401_not_500(client: httpx.AsyncClient) -> None:
    resp = await client.get("/v1/me", headers={"Authorization": "Bearer " + "a" * 20_000})
    assert _problem(resp, 401)["code"] == "invalid_token"


# --- nesting depth, string lengths, list lengths --------------------------------------------------


@pytest.mark.parametrize("depth", [50, 1_000, 100_000])
async def test_deeply_nested_payloads_are_422(
    client: httpx.AsyncClient, owner: User, vehicle: str, depth: int
) -> None:
    for opening, closing in (("[", "]"), ('{"a":', "}")):
        nested = opening * depth + "1" + closing * depth
        payload = f'{{"service": "x", "items": {nested}}}'
        raw = f'{{"type": "maintenance", "vehicle_id": "{vehicle}", "payload": {payload}}}'
        resp = await client.post(
            "/v1/timeline",
            content=raw.encode(),
            headers=auth(owner) | {"Content-Type": "application/json"},
        )
        assert resp.status_code in (400, 422), (depth, resp.status_code, resp.text[:300])
        assert resp.headers["content-type"].startswith("application/problem+json")


def _nested(depth: int, brackets: bool) -> str:
    opening, closing = ("[", "]") if brackets else ('{"a":', "}")
    return opening * depth + "1" + closing * depth


@pytest.mark.parametrize("depth", [320, 950, 5_000])
async def test_bodies_nested_too_deep_are_400_on_every_route(
    client: httpx.AsyncClient, owner: User, vehicle: str, depth: int
) -> None:
    """Depths that used to overflow the recursive NUL check (500) or the JSON parser."""
    headers = auth(owner) | {"Content-Type": "application/json"}
    for brackets in (True, False):
        nested = _nested(depth, brackets)
        for method, path, raw in (
            ("POST", "/v1/vehicles", f'{{"make": {nested}}}'),
            ("PATCH", f"/v1/vehicles/{vehicle}", f'{{"nickname": {nested}}}'),
            (
                "POST",
                "/v1/reminders",
                f'{{"title": "t", "due_mileage": 1, "description": {nested}}}',
            ),
            (
                "POST",
                "/v1/timeline",
                f'{{"type": "maintenance", "vehicle_id": "{vehicle}", '
                f'"payload": {{"service": "x", "items": {nested}}}}}',
            ),
            ("POST", "/v1/garages", nested),
        ):
            resp = await client.request(method, path, content=raw.encode(), headers=headers)
            problem = _problem(resp, 400)
            assert problem["code"] == "body_too_deep", (method, path, depth)
            assert str(MAX_JSON_DEPTH) in problem["detail"]


async def test_bodies_nested_up_to_the_limit_are_validated_as_usual(
    client: httpx.AsyncClient, owner: User
) -> None:
    headers = auth(owner) | {"Content-Type": "application/json"}
    # The body object is one level: MAX_JSON_DEPTH - 1 more inside it is still within the limit.
    for depth, status in ((MAX_JSON_DEPTH - 1, 422), (MAX_JSON_DEPTH, 400)):
        raw = f'{{"make": {_nested(depth, True)}}}'
        resp = await client.post("/v1/vehicles", content=raw.encode(), headers=headers)
        assert _problem(resp, status)["code"] == (
            "validation_failed" if status == 422 else "body_too_deep"
        )


async def test_nul_is_refused_at_any_depth_and_in_keys(
    client: httpx.AsyncClient, owner: User, vehicle: str
) -> None:
    headers = auth(owner) | {"Content-Type": "application/json"}
    deep = "[" * 50 + '"a\\u0000b"' + "]" * 50
    for items in (deep, '[{"name\\u0000": "oil"}]'):
        raw = (
            f'{{"type": "maintenance", "vehicle_id": "{vehicle}", '
            f'"payload": {{"service": "x", "items": {items}}}}}'
        )
        resp = await client.post("/v1/timeline", content=raw.encode(), headers=headers)
        problem = _problem(resp, 422)
        assert "NUL" in problem["errors"][0]["msg"], problem


STRING_CAPS = [
    ("/v1/garages", {"name": "x" * 201}, {"name": "x" * 200}),
    (
        "/v1/garages",
        {"name": "G", "description": "x" * 2001},
        {"name": "G", "description": "x" * 2000},
    ),
    ("/v1/vehicles", {"nickname": "x" * 101}, {"nickname": "x" * 100}),
]


@pytest.mark.parametrize(("path", "bad", "good"), STRING_CAPS)
async def test_string_lengths_are_capped(
    client: httpx.AsyncClient, owner: User, path: str, bad: dict[str, Any], good: dict[str, Any]
) -> None:
    resp = await client.post(path, json=bad, headers=auth(owner))
    problem = _problem(resp, 422)
    assert problem["errors"][0]["type"] == "string_too_long"
    twin = await client.post(path, json=good, headers=auth(owner))
    assert twin.status_code == 201, twin.text


async def test_event_strings_are_capped(
    client: httpx.AsyncClient, owner: User, vehicle: str
) -> None:
    base = {"type": "maintenance", "vehicle_id": vehicle}
    for bad in (
        {**base, "notes": "x" * 2001, "payload": {"service": "oil"}},
        {**base, "payload": {"service": "x" * 501}},
        {**base, "payload": {"service": "oil", "shop": "x" * 501}},
        {**base, "payload": {"service": "oil", "items": [{"name": "x" * 501}]}},
    ):
        resp = await client.post("/v1/timeline", json=bad, headers=auth(owner))
        assert _problem(resp, 422)["code"] == "validation_failed", bad
    good = {**base, "notes": "x" * 2000, "payload": {"service": "x" * 500, "shop": "y" * 500}}
    twin = await client.post("/v1/timeline", json=good, headers=auth(owner))
    assert twin.status_code == 201, twin.text


async def test_list_fields_are_capped(client: httpx.AsyncClient, owner: User, vehicle: str) -> None:
    def body(n: int) -> dict[str, Any]:
        items = [{"name": f"part {i}", "cost": 1} for i in range(n)]
        return {
            "type": "maintenance",
            "vehicle_id": vehicle,
            "payload": {"service": "x", "items": items},
        }

    resp = await client.post("/v1/timeline", json=body(101), headers=auth(owner))
    problem = _problem(resp, 422)
    assert problem["errors"][0]["type"] == "too_long"
    twin = await client.post("/v1/timeline", json=body(100), headers=auth(owner))
    assert twin.status_code == 201, twin.text


async def test_the_database_caps_list_fields_too(db: asyncpg.Pool, owner: User) -> None:
    """Direct SQL cannot get around the item cap (the same rules are enforced in the database)."""
    from tests.helpers import as_user

    vehicle = await db.fetchval(
        "insert into public.vehicles (tenant_id, make) values ($1, 'VW') returning id",
        owner.tenant_id,
    )
    items = [{"name": f"p{i}"} for i in range(101)]
    async with as_user(db, owner) as conn:
        with pytest.raises(asyncpg.PostgresError) as refused:
            await conn.execute(
                """insert into public.vehicle_events (vehicle_id, date, type, payload)
                   values ($1, current_date, 'maintenance', $2)""",
                vehicle,
                {"service": "x", "items": items},
            )
    assert refused.value.sqlstate == "MM002"
    async with as_user(db, owner) as conn:  # twin
        await conn.execute(
            """insert into public.vehicle_events (vehicle_id, date, type, payload)
               values ($1, current_date, 'maintenance', $2)""",
            vehicle,
            {"service": "x", "items": items[:100]},
        )
