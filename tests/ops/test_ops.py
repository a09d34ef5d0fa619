"""/v1/ops for service tokens, and the in-app maintenance scheduler."""

import asyncio
from datetime import date

import asyncpg
import httpx
from pydantic import SecretStr

from app.core.auth import issue_token
from app.core.config import Settings
from app.database.maintenance import run_if_due
from tests.helpers import TEST_JWT_SECRET, auth, create_user


def service_headers() -> dict[str, str]:
    settings = Settings(supabase_jwt_secret=SecretStr(TEST_JWT_SECRET))
    token = issue_token(settings, sub=None, role="service_role", ttl=300, extra={})
    return {"Authorization": f"Bearer {token}"}


async def test_ops_routes_answer_service_tokens_only(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    user = await create_user(db)
    for path in ("/v1/ops/health", "/v1/ops/partitions", "/v1/ops/freshness"):
        assert (await client.get(path)).status_code == 401
        assert (await client.get(path, headers=auth(user))).status_code == 403
        ok = await client.get(path, headers=service_headers())
        assert ok.status_code == 200, ok.text
        assert isinstance(ok.json(), list)
    denied = await client.post("/v1/ops/maintenance", headers=auth(user))
    assert denied.status_code == 403


async def test_partitions_cover_this_year_and_two_ahead(client: httpx.AsyncClient) -> None:
    rows = (await client.get("/v1/ops/partitions", headers=service_headers())).json()
    required = {r["year"]: r for r in rows if r["required"]}
    year = date.today().year
    assert set(required) == {year, year + 1, year + 2}
    assert all(r["covered"] and r["partition_name"] for r in required.values())


async def test_manual_maintenance_refreshes_the_feed_and_records_the_run(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    before = await db.fetchval(
        "select count(*) from private.maintenance_runs where job = 'refresh_timeline'"
    )
    resp = await client.post("/v1/ops/maintenance", headers=service_headers())
    assert resp.status_code == 200, resp.text
    jobs = {job["job"]: job for job in resp.json()}
    assert jobs["refresh_timeline"]["ok"] is True
    assert jobs["create_next_year_partition"]["ok"] is True
    after = await db.fetchval(
        "select count(*) from private.maintenance_runs where job = 'refresh_timeline'"
    )
    assert after == before + 1
    fresh = (await client.get("/v1/ops/freshness", headers=service_headers())).json()
    assert fresh[0]["last_refreshed_at"] is not None
    assert fresh[0]["last_run_ok"] is True


async def test_scheduler_runs_once_across_processes(settings: Settings, database_url: str) -> None:
    """Five pools (five API processes) race for one due run: exactly one runs it."""
    from app.cli import with_user
    from app.core.db import create_pool

    dsn = with_user(database_url, "authenticator")
    pools = [await create_pool(dsn, settings) for _ in range(5)]
    try:
        # Make the job due: pretend every recorded run happened long ago.
        admin = await asyncpg.connect(database_url)
        await admin.execute(
            "update private.maintenance_runs set started_at = started_at - interval '1 day', "
            "finished_at = finished_at - interval '1 day'"
        )
        before = await admin.fetchval("select count(*) from private.maintenance_runs")
        ran = await asyncio.gather(*(run_if_due(p, interval_s=300) for p in pools))
        assert sum(ran) == 1
        after = await admin.fetchval("select count(*) from private.maintenance_runs")
        assert after == before + 2  # the two jobs, once
        # Not due again right after.
        assert await run_if_due(pools[0], interval_s=300) is False
        await admin.close()
    finally:
        for p in pools:
            await p.close()
