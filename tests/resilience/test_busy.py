"""A migration's table lock and an exhausted pool: quick, honest 503s, and service right after."""

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from pydantic import SecretStr

from app.cli import with_user
from app.core.config import Settings
from app.main import create_app
from tests.helpers import TEST_JWT_SECRET, User, auth, create_user
from tests.resilience.support import Outcome, describe, table_lock, timed, waiting_on_locks

MARGIN_S = 3.0  # for a loaded CI machine: "within the timeout" means within timeout + this


def _settings(**overrides: object) -> Settings:
    return Settings(
        supabase_jwt_secret=SecretStr(TEST_JWT_SECRET),
        supabase_url=None,
        jwt_issuer=None,
        maintenance_scheduler=False,
        **overrides,  # type: ignore[arg-type]
    )


@asynccontextmanager
async def _client(database_url: str, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, database_url=with_user(database_url, "authenticator"))
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://test", timeout=60
        ) as client,
    ):
        yield client


def _assert_busy(outcomes: list[Outcome], code: str, within_s: float) -> None:
    wrong = [
        o
        for o in outcomes
        if o.status != 503
        or o.code != code
        or o.retry_after is None
        or not o.content_type.startswith("application/problem+json")
        or o.elapsed > within_s
    ]
    assert not wrong, describe(wrong)


async def _request(client: httpx.AsyncClient, user: User, i: int) -> Outcome:
    if i % 2:
        return await timed(
            client, "POST", "/v1/garages", json={"name": f"g{i}"}, headers=auth(user)
        )
    return await timed(client, "GET", "/v1/garages", headers=auth(user))


@pytest.mark.timeout(90)
async def test_table_locked_for_25_s(database_url: str, db: asyncpg.Pool) -> None:
    lock_timeout_ms = 2000
    settings = _settings(db_lock_timeout_ms=lock_timeout_ms, db_statement_timeout_ms=5000)
    user = await create_user(db)
    async with _client(database_url, settings) as client:
        first = await _request(client, user, 1)
        assert first.status == 201, first.body
        behind: list[Outcome] = []
        others: list[Outcome] = []
        async with table_lock(database_url, "public.garages"):
            locked_at = time.monotonic()
            until = locked_at + 25

            async def worker(n: int) -> None:
                i = n
                while time.monotonic() < until - lock_timeout_ms / 1000:
                    behind.append(await _request(client, user, i))
                    i += 1

            async def unaffected() -> None:
                # Routes that do not touch the locked table keep working meanwhile.
                while time.monotonic() < until - 1:
                    others.append(await timed(client, "GET", "/v1/me", headers=auth(user)))
                    await asyncio.sleep(1)

            await asyncio.gather(*(worker(n) for n in range(4)), unaffected())
            remaining = until - time.monotonic()
            if remaining > 0:
                await asyncio.sleep(remaining)
        released_at = time.monotonic()
        # As soon as it is released, the API serves normally.
        after = [await _request(client, user, i) for i in range(6)]

    assert released_at - locked_at >= 25
    assert len(behind) >= 4 * 5, describe(behind)
    _assert_busy(behind, "lock_timeout", lock_timeout_ms / 1000 + MARGIN_S)
    assert others and all(o.status == 200 for o in others), describe(others)
    assert all(o.ok for o in after), describe(after)
    assert after[0].started - released_at < MARGIN_S
    # The 503s created nothing: only the first garage and the three created after the release.
    count = await db.fetchval(
        "select count(*) from public.garages where tenant_id = $1", user.tenant_id
    )
    assert count == 1 + 3


@pytest.mark.timeout(60)
async def test_pool_of_2_under_12_slow_requests(database_url: str, db: asyncpg.Pool) -> None:
    pool_timeout_s = 0.5
    settings = _settings(
        db_pool_min=1,
        db_pool_max=2,
        db_pool_timeout_s=pool_timeout_s,
        # The two requests that get a connection wait behind the lock until it is released.
        db_lock_timeout_ms=20_000,
        db_statement_timeout_ms=30_000,
    )
    user = await create_user(db)
    async with _client(database_url, settings) as client:
        warm = await timed(client, "GET", "/v1/garages", headers=auth(user))
        assert warm.status == 200
        async with table_lock(database_url, "public.garages") as owner:
            tasks = [
                asyncio.create_task(timed(client, "GET", "/v1/garages", headers=auth(user)))
                for _ in range(12)
            ]
            # The ten without a connection answer by themselves while the lock is still held.
            deadline = time.monotonic() + pool_timeout_s + 10
            pending: set[asyncio.Task[Outcome]] = set(tasks)
            while len(pending) > 2 and time.monotonic() < deadline:
                _, pending = await asyncio.wait(
                    pending,
                    timeout=deadline - time.monotonic(),
                    return_when=asyncio.FIRST_COMPLETED,
                )
            done_while_locked = [t.result() for t in tasks if t.done()]
            blocked = await waiting_on_locks(owner)
        slow = await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
        after = [await timed(client, "GET", "/v1/garages", headers=auth(user)) for _ in range(5)]

    assert len(done_while_locked) == 10, describe(slow)
    _assert_busy(done_while_locked, "pool_exhausted", pool_timeout_s + MARGIN_S)
    assert blocked == 2
    # The two that held the connections finish once the lock is gone; nobody hung.
    assert sorted(o.status for o in slow) == [200] * 2 + [503] * 10, describe(slow)
    assert all(o.ok for o in after), describe(after)
