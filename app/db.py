"""The pool, and the one way into the database for a request."""

import json
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from app.config import Settings

# One statement, bind parameters, transaction-local (PostgREST's txVarQuery): the role, the
# verified claims RLS reads, and the limits (role-level settings do not apply after SET ROLE).
SET_REQUEST_CONTEXT = """
select set_config('role', $1, true),
       set_config('request.jwt.claims', $2, true),
       set_config('statement_timeout', $3, true),
       set_config('lock_timeout', $4, true)
"""


def dsn_with(dsn: str, *, database: str) -> str:
    """The same server and credentials, another database (keeps a `?host=` socket path)."""
    parts = urlsplit(dsn)
    query = dict(parse_qsl(parts.query))
    if "dbname" in query:
        query["dbname"] = database
    return urlunsplit(parts._replace(path=f"/{database}", query=urlencode(query)))


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(
            typename, encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
        )


async def create_pool(dsn: str, settings: Settings) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min(settings.db_pool_min, settings.db_pool_max),
        max_size=settings.db_pool_max,
        statement_cache_size=settings.db_statement_cache_size,
        init=_init_connection,
        # A connection idle for long is closed rather than trusted after a failover.
        max_inactive_connection_lifetime=60.0,
    )
    assert pool is not None
    return pool


async def set_request_context(
    conn: asyncpg.Connection,
    *,
    role: str,
    claims: dict[str, Any] | None,
    settings: Settings,
) -> None:
    """Must be the first statement of the request's transaction."""
    await conn.execute(
        SET_REQUEST_CONTEXT,
        role,
        json.dumps(claims) if claims is not None else "",
        f"{settings.db_statement_timeout_ms}ms",
        f"{settings.db_lock_timeout_ms}ms",
    )
