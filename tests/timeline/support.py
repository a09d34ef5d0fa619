"""Shared helpers for the timeline tests: vehicles made by the owner, events appended over HTTP."""

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx

from app.core.config import Settings
from app.core.db import set_request_context
from tests.helpers import User, auth, claims_for


async def make_vehicle(db: asyncpg.Pool, user: User, **cols: Any) -> uuid.UUID:
    cols = {"make": "Honda", **cols}
    names = ", ".join(cols)
    params = ", ".join(f"${i + 2}" for i in range(len(cols)))
    vid: uuid.UUID = await db.fetchval(
        f"insert into public.vehicles (tenant_id, {names}) values ($1, {params}) returning id",
        user.tenant_id,
        *cols.values(),
    )
    return vid


async def db_today(db: asyncpg.Pool, timezone: str = "America/New_York") -> dt.date:
    today: dt.date = await db.fetchval("select (now() at time zone $1)::date", timezone)
    return today


async def append(
    client: httpx.AsyncClient,
    user: User,
    vehicle_id: uuid.UUID | None,
    type_: str = "odometer",
    *,
    miles: int | None = None,
    date: dt.date | None = None,
    payload: dict[str, Any] | None = None,
    key: str | None = None,
    **extra: Any,
) -> httpx.Response:
    body: dict[str, Any] = {"type": type_, **extra}
    if vehicle_id is not None:
        body["vehicle_id"] = str(vehicle_id)
    if miles is not None:
        body["miles"] = miles
    if date is not None:
        body["date"] = date.isoformat()
    if payload is not None:
        body["payload"] = payload
    headers = auth(user)
    if key is not None:
        headers["Idempotency-Key"] = key
    return await client.post("/v1/timeline", json=body, headers=headers)


async def event_count(db: asyncpg.Pool, vehicle_id: uuid.UUID) -> int:
    count: int = await db.fetchval(
        "select count(*) from public.vehicle_events where vehicle_id = $1", vehicle_id
    )
    return count


@asynccontextmanager
async def committed_as(db: asyncpg.Pool, user: User) -> AsyncIterator[asyncpg.Connection]:
    """Like helpers.as_user, but commits."""
    async with db.acquire() as conn, conn.transaction():
        await set_request_context(
            conn, role="authenticated", claims=claims_for(user), settings=Settings()
        )
        yield conn


async def all_pages(
    client: httpx.AsyncClient, user: User, path: str, *, limit: int, **params: Any
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {"limit": limit, **params, **({"cursor": cursor} if cursor else {})}
        resp = await client.get(path, params=query, headers=auth(user))
        assert resp.status_code == 200, resp.text
        page = resp.json()
        assert len(page["items"]) <= limit
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
