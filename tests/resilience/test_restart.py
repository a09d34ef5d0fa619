"""PostgreSQL crashes and comes back under load: 503s while down, full service after, nothing lost.

The test runs its own embedded PostgreSQL (to stop it) and the real app in a real uvicorn server on
a socket, so a dropped connection or a hang would show as such.
"""

import asyncio
import time
import uuid

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from app.cli import with_user
from app.core.config import Settings
from app.core.db import _init_connection
from app.database.migrate import install
from app.database.roles import DEFAULT_API_ROLE
from app.main import create_app
from tests.helpers import TEST_JWT_SECRET, auth, create_user
from tests.resilience.support import (
    Outcome,
    RestartableServer,
    describe,
    restartable_server,
    serve,
    timed,
)

POOL_TIMEOUT_S = 1.0
STATEMENT_TIMEOUT_MS = 2000
# The longest any request may take: waiting for a connection, then a statement, plus a margin for a
# loaded machine. Anything slower is a hang.
HANG_S = POOL_TIMEOUT_S + STATEMENT_TIMEOUT_MS / 1000 + 3
TRANSIENT_CODES = {"database_unavailable", "pool_exhausted", "statement_timeout", "lock_timeout"}
WORKERS = 4


def _event(i: int) -> dict:
    return {"type": "document", "payload": {"kind": "receipt", "title": f"receipt {i}"}}


async def app_on(pg: RestartableServer) -> tuple[FastAPI, dict[str, str]]:
    """The schema and a user on the restartable server, and the app (not yet started) over it."""
    owner = await asyncpg.connect(pg.uri)
    try:
        await install(owner)
        await _init_connection(owner)
        user = await create_user(owner)  # type: ignore[arg-type]
    finally:
        await owner.close()
    settings = Settings(
        supabase_jwt_secret=SecretStr(TEST_JWT_SECRET),
        supabase_url=None,
        jwt_issuer=None,
        db_pool_min=1,
        db_pool_max=4,
        db_pool_timeout_s=POOL_TIMEOUT_S,
        db_statement_timeout_ms=STATEMENT_TIMEOUT_MS,
        db_lock_timeout_ms=1000,
        maintenance_scheduler=False,
    )
    return create_app(settings, database_url=with_user(pg.uri, DEFAULT_API_ROLE)), auth(
        user, ttl=600
    )


@pytest.mark.timeout(120)
async def test_restart_under_load() -> None:
    with restartable_server() as pg:
        app, headers = await app_on(pg)
        outcomes: list[Outcome] = []
        stop = asyncio.Event()
        counter = iter(range(1_000_000))

        async def worker(client: httpx.AsyncClient, n: int) -> None:
            while not stop.is_set():
                i = next(counter)
                if (i + n) % 2 == 0:
                    outcomes.append(
                        await timed(client, "POST", "/v1/timeline", json=_event(i), headers=headers)
                    )
                else:
                    outcomes.append(
                        await timed(
                            client, "GET", "/v1/timeline", params={"limit": 5}, headers=headers
                        )
                    )
                await asyncio.sleep(0.01)

        async with (
            serve(app) as base_url,
            httpx.AsyncClient(base_url=base_url, timeout=HANG_S + 10) as client,
        ):
            warm = await timed(client, "POST", "/v1/timeline", json=_event(-1), headers=headers)
            assert warm.status == 201, warm.body
            outcomes.append(warm)
            workers = [asyncio.create_task(worker(client, n)) for n in range(WORKERS)]
            try:
                await asyncio.sleep(1.0)
                await asyncio.to_thread(pg.stop_immediately)
                down_at = time.monotonic()
                await asyncio.sleep(2.0)
                up_from = time.monotonic()
                await asyncio.to_thread(pg.start)
                up_at = time.monotonic()
                await asyncio.sleep(3.0)
            finally:
                stop.set()
                await asyncio.gather(*workers)

            after: list[Outcome] = []
            for i in range(20):
                if i % 2:
                    after.append(
                        await timed(
                            client, "GET", "/v1/timeline", params={"limit": 5}, headers=headers
                        )
                    )
                else:
                    after.append(
                        await timed(
                            client, "POST", "/v1/timeline", json=_event(10_000 + i), headers=headers
                        )
                    )

        everything = outcomes + after
        # Never a dropped socket or a client timeout, never a 500, never a hang.
        broken = [o for o in everything if o.error or o.status not in (200, 201, 503)]
        assert not broken, describe(broken)
        slow = [o for o in everything if o.elapsed > HANG_S]
        assert not slow, describe(slow)
        # Every 503 is an honest, retryable problem.
        unavailable = [o for o in everything if o.status == 503]
        bad_503 = [
            o
            for o in unavailable
            if not o.content_type.startswith("application/problem+json")
            or o.retry_after is None
            or o.code not in TRANSIENT_CODES
        ]
        assert not bad_503, describe(bad_503)
        # While the server was down (requests sent after the stop, answered before the start)
        # nothing succeeded, and the outage was really exercised.
        during = [o for o in outcomes if o.started >= down_at and o.started + o.elapsed <= up_from]
        assert during, "no request ran while PostgreSQL was down"
        assert all(o.status == 503 for o in during), describe(during)
        assert sum(o.ok for o in outcomes if o.started < down_at) > 0
        # 3 s after it is back, every request succeeds.
        assert all(o.ok for o in after), describe(after)
        assert up_at - down_at < 30

        # Nothing acknowledged with 201 is missing.
        acknowledged = [uuid.UUID(o.body["id"]) for o in everything if o.status == 201]
        assert len(acknowledged) >= 11
        owner = await asyncpg.connect(pg.uri)
        try:
            found = await owner.fetchval(
                "select count(*) from public.vehicle_events where id = any($1::uuid[])",
                acknowledged,
            )
        finally:
            await owner.close()
        assert found == len(acknowledged)


CYCLES = 8
DOWN_S = 3.0


@pytest.mark.timeout(150)
async def test_repeated_fast_restarts_answer_only_2xx_or_503() -> None:
    """A fast shutdown ends every backend, also one in the middle of a request's transaction.
    Whatever state that leaves a connection in, the request answers 503 with Retry-After (never
    500) and the connection is not used again. Several cycles, as one restart in four used to
    leave a connection busy with the lost server's error (asyncpg InternalClientError: 500)."""
    with restartable_server() as pg:
        app, headers = await app_on(pg)
        outcomes: list[Outcome] = []
        stop = asyncio.Event()
        counter = iter(range(1_000_000))

        async def worker(client: httpx.AsyncClient, n: int) -> None:
            while not stop.is_set():
                i = next(counter)
                if (i + n) % 2 == 0:
                    outcomes.append(
                        await timed(client, "POST", "/v1/timeline", json=_event(i), headers=headers)
                    )
                else:
                    outcomes.append(await timed(client, "GET", "/v1/vehicles", headers=headers))
                await asyncio.sleep(0.005)

        async def until_served() -> None:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                if sum(o.ok for o in outcomes[-WORKERS:]) == WORKERS:
                    return
                await asyncio.sleep(0.05)
            raise AssertionError("no full service after the restart:\n" + describe(outcomes[-8:]))

        async with (
            serve(app) as base_url,
            httpx.AsyncClient(base_url=base_url, timeout=HANG_S + 10) as client,
        ):
            warm = await timed(client, "POST", "/v1/timeline", json=_event(-1), headers=headers)
            assert warm.status == 201, warm.body
            workers = [asyncio.create_task(worker(client, n)) for n in range(WORKERS)]
            try:
                for _ in range(CYCLES):
                    await until_served()
                    await asyncio.sleep(0.3)  # requests in flight when the server goes
                    await asyncio.to_thread(pg.stop_fast)
                    await asyncio.sleep(DOWN_S)
                    await asyncio.to_thread(pg.start)
                await until_served()
            finally:
                stop.set()
                await asyncio.gather(*workers)
            after = [await timed(client, "GET", "/v1/vehicles", headers=headers) for _ in range(8)]

        broken = [o for o in outcomes if o.error or o.status not in (200, 201, 503)]
        assert not broken, describe(broken)
        bad_503 = [
            o
            for o in outcomes
            if o.status == 503
            and (
                not o.content_type.startswith("application/problem+json")
                or o.retry_after is None
                or o.code not in TRANSIENT_CODES
            )
        ]
        assert not bad_503, describe(bad_503)
        assert sum(o.status == 503 for o in outcomes) >= CYCLES  # the outages were exercised
        assert all(o.ok for o in after), describe(after)
