"""Behind a real PgBouncer in transaction mode, one server connection shared by two tenants.

Every request sets its role and claims transaction-locally, so whichever client transaction gets
the server connection next can never see what the previous one set. Needs the test server over
TCP (TEST_DATABASE_URL, as CI's PostgreSQL 15 pass sets it) and Debian's `pgbouncer`
(.ci/setup-pgbouncer). With MOTOMIND_EXPECT_PGBOUNCER=1 a missing prerequisite fails instead of
skipping, so CI cannot pass without running this.
"""

import asyncio
import os
import uuid
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from pydantic import SecretStr

from app.core.config import Settings
from app.main import create_app
from tests.helpers import TEST_JWT_SECRET, User, auth, create_user
from tests.pgbouncer import pgbouncer, pgbouncer_binary, tcp_server
from tests.resilience.support import describe, timed

REQUESTS = 2000
CONCURRENCY = 8


def _unavailable(reason: str) -> None:
    if os.environ.get("MOTOMIND_EXPECT_PGBOUNCER") == "1":
        pytest.fail(f"MOTOMIND_EXPECT_PGBOUNCER=1 but {reason}")
    pytest.skip(reason)


@pytest.mark.timeout(120)
async def test_two_tenants_on_one_server_connection(
    server_url: str, database_url: str, db: asyncpg.Pool
) -> None:
    server = tcp_server(server_url)
    if server is None:
        _unavailable(
            "the test server listens on a unix socket only; set TEST_DATABASE_URL to a TCP server "
            "(e.g. postgresql://postgres@127.0.0.1:5432/postgres) to run the PgBouncer test"
        )
        return
    if pgbouncer_binary() is None:
        _unavailable("pgbouncer is not installed (run .ci/setup-pgbouncer)")
        return

    users = [await create_user(db), await create_user(db)]
    dbname = urlsplit(database_url).path.lstrip("/")
    with pgbouncer(server=server, users=["authenticator", "postgres"]) as bouncer:
        settings = Settings(
            supabase_jwt_secret=SecretStr(TEST_JWT_SECRET),
            supabase_url=None,
            jwt_issuer=None,
            maintenance_scheduler=False,
            db_statement_cache_size=0,
            db_pool_min=1,
            db_pool_max=4,
            db_pool_timeout_s=10,
        )
        dsn = f"postgresql://authenticator@127.0.0.1:{bouncer.port}/{dbname}"
        app = create_app(settings, database_url=dsn)
        async with (
            LifespanManager(app) as manager,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=manager.app), base_url="http://test", timeout=30
            ) as client,
        ):
            garages: dict[uuid.UUID, set[str]] = {}
            events: dict[uuid.UUID, set[str]] = {}
            for user in users:
                garages[user.id], events[user.id] = await _create_some(client, user)

            async def check(i: int) -> str | None:
                user, other = users[i % 2], users[(i + 1) % 2]
                kind = (i // 2) % 4
                if kind == 0:
                    out = await timed(client, "GET", "/v1/garages", headers=auth(user))
                    got = {g["id"] for g in out.body["items"]} if out.status == 200 else None
                    return None if got == garages[user.id] else f"garages {out.status} {got}"
                if kind == 1:
                    out = await timed(client, "GET", "/v1/timeline", headers=auth(user))
                    got = {e["id"] for e in out.body["items"]} if out.status == 200 else None
                    return None if got == events[user.id] else f"timeline {out.status} {got}"
                if kind == 2:
                    out = await timed(client, "GET", "/v1/me", headers=auth(user))
                    me = out.body if out.status == 200 else {}
                    ok = me.get("id") == str(user.id) and me["tenant"]["id"] == str(user.tenant_id)
                    return None if ok else f"me {out.status} {me}"
                # Another tenant's id is a 404, as if it did not exist.
                theirs = sorted(garages[other.id])[i % 3]
                out = await timed(client, "GET", f"/v1/garages/{theirs}", headers=auth(user))
                return None if out.status == 404 else f"other tenant's garage {out.status}"

            failures: list[str] = []
            counter = iter(range(REQUESTS))

            async def worker() -> None:
                for i in counter:
                    problem = await check(i)
                    if problem:
                        failures.append(f"request {i}: {problem}")

            await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
            assert not failures, "\n".join(failures[:20])
            # It really went through PgBouncer, on one server connection: the server sees it as
            # the only `authenticator` session from PgBouncer's side of the socket.
            ports = bouncer.server_client_ports()
            assert len(ports) == 1, ports
            session = await db.fetchrow(
                "select usename, datname from pg_stat_activity where client_port = $1",
                next(iter(ports)),
            )
            assert session is not None
            assert (session["usename"], session["datname"]) == ("authenticator", dbname)

            # Writes through the bouncer still work after all that, for both tenants.
            for user in users:
                more_garages, more_events = await _create_some(client, user, n=1)
                garages[user.id] |= more_garages
                events[user.id] |= more_events
                listed = await timed(client, "GET", "/v1/garages", headers=auth(user))
                assert {g["id"] for g in listed.body["items"]} == garages[user.id]

    # And the owner sees exactly what each tenant created.
    for user in users:
        rows = await db.fetch(
            "select id::text from public.garages where tenant_id = $1", user.tenant_id
        )
        assert {r["id"] for r in rows} == garages[user.id]


async def _create_some(
    client: httpx.AsyncClient, user: User, n: int = 3
) -> tuple[set[str], set[str]]:
    garages: set[str] = set()
    events: set[str] = set()
    for i in range(n):
        g = await timed(
            client,
            "POST",
            "/v1/garages",
            json={"name": f"g-{uuid.uuid4().hex[:6]}"},
            headers=auth(user),
        )
        assert g.status == 201, describe([g])
        garages.add(g.body["id"])
        e = await timed(
            client,
            "POST",
            "/v1/timeline",
            json={"type": "document", "payload": {"kind": "receipt", "title": f"r{i}"}},
            headers=auth(user),
        )
        assert e.status == 201, describe([e])
        events.add(e.body["id"])
    return garages, events
