"""The maintenance jobs in pg_cron, where it runs (else the API's own scheduler:
app/database/maintenance.py)."""

import contextlib
from typing import Any

import asyncpg

from app.core.db import dsn_with

CRON_JOBS = {
    "refresh-timeline": ("*/5 * * * *", "select public.refresh_timeline()"),
    "create-partitions": ("0 3 1 * *", "select public.create_next_year_partition()"),
}


async def pg_cron_available(conn: asyncpg.Connection) -> bool:
    """pg_cron is preloaded, or (where the setting is hidden from this role, as from Supabase's
    `postgres`) its extension is installed here: the way a Supabase project turns it on."""
    row = await conn.fetchrow(
        """select exists (select 1 from pg_available_extensions where name = 'pg_cron')
                    as available,
                  (select setting from pg_settings where name = 'shared_preload_libraries')
                    as preload,
                  exists (select 1 from pg_extension where extname = 'pg_cron') as installed"""
    )
    if row is None or not row["available"]:
        return False
    if row["preload"] is None:
        return bool(row["installed"])
    return "pg_cron" in row["preload"]


async def schedule_cron_jobs(conn: asyncpg.Connection, dsn: str) -> bool:
    """With pg_cron loaded, keep the maintenance jobs in the database. Returns whether it did.

    pg_cron lives in one database per cluster (`cron.database_name`); jobs for this database are
    created there with `cron.schedule_in_database`, named after this database so that several
    databases on one server each keep their own jobs.
    """
    if not await pg_cron_available(conn):
        return False
    database = await conn.fetchval("select current_database()")
    cron_db = (
        await conn.fetchval("select current_setting('cron.database_name', true)") or "postgres"
    )
    cron_conn = await asyncpg.connect(dsn_with(dsn, database=cron_db))
    try:
        await cron_conn.execute("create extension if not exists pg_cron")
        for name, (schedule, command) in CRON_JOBS.items():
            await cron_conn.execute(
                "select cron.schedule_in_database($1, $2, $3, $4)",
                f"motomind-{name}-{database}",
                schedule,
                command,
                database,
            )
    finally:
        await cron_conn.close()
    return True


async def cron_jobs(conn: asyncpg.Connection, dsn: str) -> list[dict[str, Any]]:
    """The pg_cron jobs of this database, or [] when pg_cron is not in use."""
    if not await pg_cron_available(conn):
        return []
    database = await conn.fetchval("select current_database()")
    cron_db = (
        await conn.fetchval("select current_setting('cron.database_name', true)") or "postgres"
    )
    with contextlib.suppress(asyncpg.PostgresError, OSError):
        cron_conn = await asyncpg.connect(dsn_with(dsn, database=cron_db))
        try:
            rows = await cron_conn.fetch(
                """select jobname, schedule, command, active from cron.job
                   where database = $1 order by jobname""",
                database,
            )
            return [dict(r) for r in rows]
        finally:
            await cron_conn.close()
    return []
