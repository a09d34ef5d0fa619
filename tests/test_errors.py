"""problem+json for every error, and the SQLSTATE table, with errors raised by the real database."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import APIRouter

from app.core.config import Settings
from app.core.db import TenantConn
from app.main import create_app
from tests.helpers import auth, create_user

raiser = APIRouter(prefix="/test")

RAISES = {
    "odometer": "errcode = 'MM001', message = 'odometer_rollback', "
    "detail = 'conflicts with the reading of 52000 on 2024-05-01'",
    "payload": "errcode = 'MM002', message = 'invalid_payload', "
    "detail = 'payload.volume must be a number greater than 0', column = 'payload.volume'",
    "vin": "errcode = '23505', message = 'duplicate key value', constraint = 'vehicles_vin_key'",
    "plate": "errcode = '23505', message = 'dup', constraint = 'vehicles_tenant_plate_idx'",
    "unique": "errcode = '23505', message = 'dup', constraint = 'garages_name_key'",
    "fk": "errcode = '23503', message = 'violates fk', constraint = 'vehicles_garage_fkey', "
    "detail = 'Key (tenant_id, garage_id)=(a, b) is not present in table \"garages\".'",
    "rls": "errcode = '42501', message = 'new row violates row-level security policy'",
    "date": "errcode = '22023', message = 'date_out_of_range', detail = 'outside 1900..2027'",
    "deadlock": "errcode = '40P01', message = 'deadlock detected'",
    "lock": "errcode = '55P03', message = 'could not obtain lock'",
    "bug": "errcode = '42703', message = 'column secret_col does not exist'",
}


@raiser.get("/raise/{name}")
async def raise_it(name: str, conn: TenantConn) -> dict[str, str]:
    await conn.execute(f"do $$ begin raise exception using {RAISES[name]}; end $$")
    return {}


@raiser.get("/boom")
async def boom(conn: TenantConn) -> dict[str, str]:
    raise RuntimeError("select secret from internals")


@asynccontextmanager
async def raiser_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    app.include_router(raiser)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield c


EXPECTED: dict[str, tuple[int, str, str | None]] = {
    "odometer": (409, "odometer_rollback", "conflicts with the reading of 52000 on 2024-05-01"),
    "payload": (422, "invalid_payload", "payload.volume must be a number greater than 0"),
    "vin": (409, "duplicate_vin", None),
    "plate": (409, "duplicate_plate", None),
    "unique": (409, "conflict", None),
    "fk": (422, "invalid_reference", None),
    "rls": (404, "not_found", None),
    "date": (422, "date_out_of_range", "outside 1900..2027"),
    "deadlock": (503, "transaction_conflict", None),
    "lock": (503, "lock_timeout", None),
    "bug": (500, "internal_error", None),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_sqlstate_table(settings: Settings, db: asyncpg.Pool, name: str) -> None:
    user = await create_user(db)
    status, code, detail = EXPECTED[name]
    async with raiser_client(settings) as c:
        resp = await c.get(f"/test/raise/{name}", headers=auth(user))
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = resp.json()
    assert body["code"] == code
    assert body["type"] == f"urn:motomind:problem:{code}"
    if detail:
        assert body["detail"] == detail
    if status == 503:
        assert resp.headers["retry-after"]
    # Never SQL text or constraint names.
    for leak in ("vehicles_", "garages_", "secret_col", "deadlock detected", "Key ("):
        assert leak not in resp.text
    if name == "fk":
        assert body["errors"][0]["loc"] == ["body", "garage_id"]


async def test_an_unexpected_error_is_a_500_problem_without_details(
    settings: Settings, db: asyncpg.Pool
) -> None:
    user = await create_user(db)
    async with raiser_client(settings) as c:
        resp = await c.get("/test/boom", headers=auth(user))
    assert resp.status_code == 500
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["code"] == "internal_error"
    assert resp.headers["X-Request-ID"]  # a 500 can still be traced to its log line
    assert "secret" not in resp.text
    assert "Traceback" not in resp.text


# --- Bodies that are not JSON ---------------------------------------------------------------------

JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/garages"),
        ("POST", "/v1/vehicles"),
        ("POST", "/v1/timeline"),
        ("PATCH", "/v1/me"),
    ],
)
async def test_malformed_json_is_400(
    client: httpx.AsyncClient, db: asyncpg.Pool, method: str, path: str
) -> None:
    user = await create_user(db)
    for raw, detail in (
        (b'{"name": "secret-value', "Unterminated string starting at character 9."),
        (b"{bad", "Expecting property name enclosed in double quotes at character 1."),
    ):
        resp = await client.request(method, path, content=raw, headers=auth(user) | JSON)
        assert resp.status_code == 400, resp.text
        assert resp.headers["content-type"] == "application/problem+json"
        body = resp.json()
        assert body["code"] == "malformed_json"
        assert body["detail"] == f"The body is not valid JSON: {detail}"
        assert "secret-value" not in resp.text  # the body is never echoed
    # Bytes that are not even text.
    resp = await client.request(
        method, path, content=b'{"name": "\xff\xfe"}', headers=auth(user) | JSON
    )
    assert resp.status_code == 400, resp.text
    assert resp.json()["code"] == "malformed_json"


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/xml", None],
)
async def test_a_json_route_refuses_other_media_types_with_415(
    client: httpx.AsyncClient, db: asyncpg.Pool, content_type: str | None
) -> None:
    user = await create_user(db)
    headers = auth(user) | ({"Content-Type": content_type} if content_type else {})
    resp = await client.post("/v1/garages", content=b'{"name": "G"}', headers=headers)
    if content_type is None:
        assert "content-type" not in resp.request.headers
    assert resp.status_code == 415, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["code"] == "unsupported_media_type"
    patched = await client.patch("/v1/me", content=b'{"name": "N"}', headers=headers)
    assert patched.status_code == 415, patched.text


async def test_json_media_types_are_accepted_and_an_empty_body_stays_422(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    user = await create_user(db)
    for content_type in (
        "application/json",
        "application/json; charset=utf-8",
        "application/merge-patch+json",
    ):
        resp = await client.post(
            "/v1/garages",
            content=b'{"name": "G"}',
            headers=auth(user) | {"Content-Type": content_type},
        )
        assert resp.status_code == 201, (content_type, resp.text)
    # No body at all: the body is missing (422), whatever the media type says.
    for content_type in ("application/json", "text/plain"):
        resp = await client.post("/v1/garages", headers=auth(user) | {"Content-Type": content_type})
        assert resp.status_code == 422, resp.text
        assert resp.json()["code"] == "validation_failed"
    # Valid JSON of the wrong shape is still a 422, not a 400.
    resp = await client.post("/v1/garages", content=b"[1, 2]", headers=auth(user) | JSON)
    assert resp.status_code == 422, resp.text
