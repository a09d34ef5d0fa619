"""A pooled connection whose server went away: 503 with Retry-After, and never used again.

The server ends the backend (pg_terminate_backend: the FATAL 57P01 a fast shutdown sends). Between
that error and the socket's close, asyncpg's protocol is still busy with the error and refuses the
next statement with InternalClientError; a proxy that holds the end of the stream makes that
moment last, so the test does not depend on timing.
"""

import asyncio
import uuid

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from pydantic import SecretStr

from app.core.config import Settings
from app.main import create_app
from tests.helpers import TEST_JWT_SECRET, auth, create_user
from tests.resilience.support import EofHoldingProxy


async def _backends(db: asyncpg.Pool, name: str) -> int:
    return int(
        await db.fetchval("select count(*) from pg_stat_activity where application_name = $1", name)
    )


@pytest.mark.parametrize("path", ["/v1/vehicles", "/v1/timeline"])  # timeline: a ListConn
async def test_a_connection_left_busy_by_a_lost_server_is_503_and_closed(
    database_url: str, db: asyncpg.Pool, path: str
) -> None:
    user = await create_user(db)
    headers = auth(user)
    name = f"mm-lost-{uuid.uuid4().hex[:12]}"
    database = await db.fetchval("select current_database()")
    settings = Settings(
        supabase_jwt_secret=SecretStr(TEST_JWT_SECRET),
        supabase_url=None,
        jwt_issuer=None,
        db_pool_min=1,
        db_pool_max=1,
        db_pool_timeout_s=2.0,
        maintenance_scheduler=False,
    )
    async with EofHoldingProxy(database_url) as proxy:
        app = create_app(
            settings, database_url=proxy.url(database, "authenticator", application_name=name)
        )
        async with (
            LifespanManager(app) as manager,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=manager.app), base_url="http://test", timeout=30
            ) as client,
        ):
            for _ in range(2):  # the second with the token from the verifier's cache
                assert (await client.get(path, headers=headers)).status_code == 200
            assert await _backends(db, name) == 1
            proxy.hold_eof = True
            await db.execute(
                """select pg_terminate_backend(pid) from pg_stat_activity
                   where application_name = $1""",
                name,
            )
            for _ in range(100):
                if await _backends(db, name) == 0:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)  # the FATAL error reaches the idle pooled connection
            assert proxy.client_closed == 0

            lost = await client.get(path, headers=headers)
            assert lost.status_code == 503, lost.text
            assert lost.headers["content-type"] == "application/problem+json"
            assert lost.headers["retry-after"]
            assert lost.json()["code"] == "database_unavailable"
            # The app closed the connection rather than pooling it again.
            for _ in range(40):
                if proxy.client_closed:
                    break
                await asyncio.sleep(0.05)
            assert proxy.client_closed == 1
            proxy.hold_eof = False

            # The next request gets a new connection and full service.
            for _ in range(3):
                resp = await client.get(path, headers=headers)
                assert resp.status_code == 200, resp.text
            assert await _backends(db, name) == 1
