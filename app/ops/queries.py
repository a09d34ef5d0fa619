from typing import Any

import asyncpg

HEALTH = "select * from public.db_health_stats"
PARTITIONS = "select * from public.partition_coverage"
FRESHNESS = "select * from public.mv_freshness"
RUN_MAINTENANCE = "select public.run_scheduled_maintenance()"


async def rows(conn: asyncpg.Connection, sql: str) -> list[dict[str, Any]]:
    return [dict(r) for r in await conn.fetch(sql)]


async def run_maintenance(conn: asyncpg.Connection) -> Any:
    return await conn.fetchval(RUN_MAINTENANCE)
