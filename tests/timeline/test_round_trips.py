"""What an append costs the database: the statements POST /v1/timeline sends inside its
transaction, besides BEGIN (sent with the request's context) and COMMIT, counted by a query logger
on the app's only connection. The database checks the vehicle, the date, the payload and the
odometer as it inserts, so an append is one statement; an Idempotency-Key adds its lock."""

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from app.core.config import Settings
from app.timeline import queries
from app.web import idempotency
from tests.helpers import auth, create_user
from tests.timeline.support import make_vehicle


class Statements:
    """Every statement the connection runs while `counting`."""

    def __init__(self) -> None:
        self.counting = False
        self.seen: list[str] = []

    def __call__(self, record: Any) -> None:
        if self.counting:
            self.seen.append(record.query)

    def inside_the_transaction(self) -> list[str]:
        return [
            q
            for q in self.seen
            if not q.lstrip().lower().startswith(("begin;", "commit", "rollback"))
        ]


@pytest.fixture(scope="module")
async def one_connection_app(settings: Settings) -> AsyncIterator[tuple[FastAPI, Statements]]:
    """The real app with a pool of one connection, which logs every statement it runs."""
    from asgi_lifespan import LifespanManager

    from app.main import create_app

    application = create_app(settings.model_copy(update={"db_pool_min": 1, "db_pool_max": 1}))
    statements = Statements()
    async with LifespanManager(application):
        pool: asyncpg.Pool = application.state.motomind.pool
        async with pool.acquire() as conn:
            conn.add_query_logger(statements)  # kept by the connection across acquisitions
        yield application, statements


async def _count(
    app_and_log: tuple[FastAPI, Statements], body: dict[str, Any], headers: dict[str, str]
) -> tuple[httpx.Response, list[str]]:
    application, statements = app_and_log
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        # Once unlogged first: the statements are prepared and cached, as in steady state.
        warm = (
            {**headers, "Idempotency-Key": str(uuid.uuid4())}
            if "Idempotency-Key" in headers
            else headers
        )
        await client.post("/v1/timeline", json=body, headers=warm)
        statements.seen.clear()
        statements.counting = True
        try:
            resp = await client.post("/v1/timeline", json=body, headers=headers)
        finally:
            statements.counting = False
    return resp, statements.inside_the_transaction()


async def test_an_append_is_one_statement(
    one_connection_app: tuple[FastAPI, Statements], db: asyncpg.Pool
) -> None:
    user = await create_user(db)
    vid = await make_vehicle(db, user)
    body = {"vehicle_id": str(vid), "type": "maintenance", "payload": {"service": "wash"}}
    resp, sent = await _count(one_connection_app, body, auth(user))
    assert resp.status_code == 201, resp.text
    assert sent == [queries.APPEND]


async def test_an_append_with_an_idempotency_key_is_two_and_so_is_its_replay(
    one_connection_app: tuple[FastAPI, Statements], db: asyncpg.Pool
) -> None:
    user = await create_user(db)
    vid = await make_vehicle(db, user)
    body = {"vehicle_id": str(vid), "type": "odometer", "miles": 10}
    headers = {**auth(user), "Idempotency-Key": str(uuid.uuid4())}
    first, sent = await _count(one_connection_app, body, headers)
    assert first.status_code == 201, first.text
    # The key's lock, then the append and its response stored, in one statement.
    assert sent == [idempotency.LOCK, queries.APPEND_ONCE]
    again, sent = await _count(one_connection_app, body, headers)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert sent == [idempotency.LOCK, queries.APPEND_ONCE]


async def test_a_history_date_costs_one_more_for_its_partition(
    one_connection_app: tuple[FastAPI, Statements], db: asyncpg.Pool
) -> None:
    """Every accepted date has a partition from install on; one of a year maintenance does not
    keep is checked (and a missing partition made) first."""
    user = await create_user(db)
    vid = await make_vehicle(db, user)
    body = {"vehicle_id": str(vid), "type": "odometer", "miles": 10, "date": "1987-06-05"}
    resp, sent = await _count(one_connection_app, body, auth(user))
    assert resp.status_code == 201, resp.text
    assert resp.json()["date"] == dt.date(1987, 6, 5).isoformat()
    assert sent == [queries.ENSURE_PARTITION, queries.APPEND]
