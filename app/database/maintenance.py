"""The in-app maintenance scheduler, for databases without pg_cron.

Every API process runs this loop; a transaction-level advisory lock plus the recorded time of the
last run make each job run once per interval across all of them (and not at all while pg_cron is
already running the same functions on schedule).
"""

import asyncio
import logging
import random

import asyncpg

from app.core.config import Settings
from app.core.observability import MAINTENANCE_RUNS

log = logging.getLogger("motomind.maintenance")

LOCK_KEY = 0x4D4D_4D54  # "MMMT"
INTERVAL_S = 300.0
RUN_TIMEOUT = "5min"

LAST_RUN_AGE = """
select extract(epoch from now() - last_run_at) from public.mv_freshness
"""


async def run_if_due(pool: asyncpg.Pool, *, interval_s: float = INTERVAL_S) -> bool:
    """Run partition creation and the feed refresh if nobody has for `interval_s`."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "select set_config('role', 'service_role', true), "
            "set_config('statement_timeout', $1, true)",
            RUN_TIMEOUT,
        )
        if not await conn.fetchval("select pg_try_advisory_xact_lock($1)", LOCK_KEY):
            return False  # another process is running it right now
        age = await conn.fetchval(LAST_RUN_AGE)
        if age is not None and float(age) < interval_s * 0.9:
            return False
        result = await conn.fetchval("select public.run_scheduled_maintenance()")
    for job in result or []:
        outcome = "ok" if job.get("ok") else "error"
        MAINTENANCE_RUNS.labels(job.get("job", "unknown"), outcome).inc()
        if outcome == "error":
            log.warning("maintenance job failed", extra={"job": job})
    return True


async def scheduler(pool: asyncpg.Pool, settings: Settings) -> None:
    """Forever: try every interval (with jitter so processes don't stampede)."""
    while True:
        try:
            await run_if_due(pool, interval_s=settings.maintenance_interval_s)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bad run must not end the loop
            log.warning("maintenance run failed: %s", type(exc).__name__)
        await asyncio.sleep(settings.maintenance_interval_s * random.uniform(0.9, 1.1))  # noqa: S311
