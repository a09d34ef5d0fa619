"""GET /v1/vehicles/{id} and GET /v1/vehicles answer byte for byte what FastAPI wrote from the
pydantic models (schemas.Vehicle, Page[Vehicle]), whoever writes the JSON: strings with quotes,
backslashes, control characters and non-ASCII text, timestamps with and without microseconds,
nulls. The expected bodies are pydantic's own serialization of the rows, as FastAPI's
`response_model` serialization does it."""

import datetime as dt
import uuid
from typing import Any

import asyncpg
import httpx
from pydantic import TypeAdapter

from app.vehicles.schemas import Vehicle
from app.web.paging import Page
from tests.helpers import User, auth, create_user

ODD_TEXT = [
    'quote " and backslash \\ and slash /',
    "tab\there, newline\nthere, \x01\x1f\x7f",
    "é, 中文, emoji \U0001f3cd, line separator \u2028, </script>",
    "plain",
]
INSTANTS = [
    dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
    dt.datetime(2024, 1, 2, 3, 4, 5, 7, tzinfo=dt.UTC),
    dt.datetime(2025, 6, 7, 8, 9, 10, 123400, tzinfo=dt.UTC),
    dt.datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
]


async def odd_vehicles(db: asyncpg.Pool, user: User) -> list[uuid.UUID]:
    """Vehicles with odd text and exact timestamps (audit triggers off for the insert)."""
    garage = await db.fetchval(
        "insert into public.garages (tenant_id, name) values ($1, 'G') returning id",
        user.tenant_id,
    )
    ids = []
    async with db.acquire() as conn, conn.transaction():
        await conn.execute("set local session_replication_role = replica")
        for n, (text, instant) in enumerate(zip(ODD_TEXT, INSTANTS, strict=True)):
            ids.append(
                await conn.fetchval(
                    """insert into public.vehicles
                         (tenant_id, garage_id, year, make, model, trim, color, license_plate,
                          nickname, timezone, current_mileage, created_at, updated_at,
                          created_by, updated_by)
                       values ($1, $2, $3, $4, $4, $4, $4, $5, $4, 'Europe/Berlin', $6,
                               $7::timestamptz, $7::timestamptz + interval '1 second', $8, null)
                       returning id""",
                    user.tenant_id,
                    garage if n % 2 else None,
                    2000 + n if n != 3 else None,
                    text,
                    f"P{n}",
                    n * 1000 if n != 1 else None,
                    instant,
                    user.id if n != 2 else None,
                )
            )
    return ids


async def rows(db: asyncpg.Pool, ids: list[uuid.UUID]) -> dict[uuid.UUID, dict[str, Any]]:
    found = await db.fetch("select * from public.vehicles where id = any($1)", ids)
    return {r["id"]: dict(r) for r in found}


async def test_a_vehicle_is_written_as_pydantic_writes_it(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    user = await create_user(db)
    ids = await odd_vehicles(db, user)
    stored = await rows(db, ids)
    for vid in ids:
        resp = await client.get(f"/v1/vehicles/{vid}", headers=auth(user))
        assert resp.status_code == 200, resp.text
        expected = Vehicle.model_validate(stored[vid]).model_dump_json()
        assert resp.content.decode() == expected
        assert list(resp.headers) == ["content-length", "content-type", "etag", "x-request-id"]
        assert resp.headers["content-type"] == "application/json"


async def test_a_page_of_vehicles_is_written_as_pydantic_writes_it(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    user = await create_user(db)
    ids = await odd_vehicles(db, user)
    stored = await rows(db, ids)
    newest_first = sorted(ids, key=lambda i: (stored[i]["created_at"], i), reverse=True)
    page_type = TypeAdapter(Page[Vehicle])
    url: str | None = "/v1/vehicles?limit=3"
    seen: list[uuid.UUID] = []
    while url is not None:
        resp = await client.get(url, headers=auth(user))
        assert resp.status_code == 200, resp.text
        body = resp.json()
        page_ids = [uuid.UUID(item["id"]) for item in body["items"]]
        expected = Page[Vehicle](
            items=[Vehicle.model_validate(stored[i]) for i in page_ids],
            next_cursor=body["next_cursor"],
        )
        assert resp.content == page_type.dump_json(expected)
        assert list(resp.headers) == ["content-length", "content-type", "x-request-id"]
        assert resp.headers["content-type"] == "application/json"
        seen += page_ids
        url = f"/v1/vehicles?limit=3&cursor={body['next_cursor']}" if body["next_cursor"] else None
    assert seen == newest_first
    empty = await client.get("/v1/vehicles?q=nothing-like-this", headers=auth(user))
    assert empty.content == b'{"items":[],"next_cursor":null}'
