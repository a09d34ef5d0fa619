"""The pool, and the one way into the database for a request.

Longer than 300 lines because the request transaction is one piece and must stay readable as one:
the BEGIN with its context in one message, the claims the database may see, the connection kinds
(tenant, list, service), and what a lost connection does (terminated, 503), side by side.
"""

import asyncio
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Annotated, Any, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
from fastapi import Depends, Request

from app.core.auth import Bearer, Identity, service_identity, user_identity
from app.core.config import Settings
from app.core.errors import RETRY_AFTER_S, ProblemError
from app.core.observability import record_pool, worker_metrics_dir
from app.core.sqlstate import UNAVAILABLE

# One statement, transaction-local (PostgREST's txVarQuery): the role, the verified claims RLS
# reads (DATABASE_CLAIMS of them), and the limits (role-level settings do not apply after SET
# ROLE). Sent with BEGIN as one message (begin_with_context), or with bind parameters
# (set_request_context).
SET_REQUEST_CONTEXT = """
select set_config('role', $1, true),
       set_config('request.jwt.claims', $2, true),
       set_config('statement_timeout', $3, true),
       set_config('lock_timeout', $4, true)
"""
# Sorting discouraged, for keyset lists over a long history (the timeline; queries.list_events
# says why). In the same first statement, so it costs no round trip; a list request's other
# statements are primary-key lookups, which no sort setting changes.
LIST_PLANNER = (
    "set_config('enable_sort', 'off', true), set_config('enable_incremental_sort', 'off', true)"
)
SET_LIST_CONTEXT = f"{SET_REQUEST_CONTEXT.rstrip()},\n       {LIST_PLANNER}\n"
SHARED_METRICS = worker_metrics_dir() is not None
_PARAM = re.compile(r"\$(\d+)")
for _context in (SET_REQUEST_CONTEXT, SET_LIST_CONTEXT):  # begin_with_context fills $1..$4
    assert sorted(_PARAM.findall(_context)) == ["1", "2", "3", "4"], _context


# The claims a request's transaction sees as request.jwt.claims: what the schema reads (sub via
# auth.uid(), role via auth.role(), tenant_id and app_metadata.tenant_id via
# public.current_tenant_id()) and what a policy on auth.jwt() may sensibly test (Supabase's
# aud, iss, exp, iat, nbf, session_id, is_anonymous, aal, amr). They are written into the BEGIN
# message as SQL text (one round trip: bind parameters need BEGIN in a message of its own), and
# SQL text shows in pg_stat_activity and in the server's log when a statement fails; so never
# personal data: no email, phone or user_metadata (auth.email() is NULL in a request), and of
# app_metadata only tenant_id. These are pseudonymous ids, times and flags.
DATABASE_CLAIMS = frozenset(
    {"sub", "role", "tenant_id", "aud", "iss", "exp", "iat", "nbf"}
    | {"session_id", "is_anonymous", "aal", "amr"}
)


def database_claims(claims: Mapping[str, Any]) -> dict[str, Any]:
    """The verified claims the database may see (DATABASE_CLAIMS), app_metadata cut to its
    tenant_id."""
    kept = {name: value for name, value in claims.items() if name in DATABASE_CLAIMS}
    app_metadata = claims.get("app_metadata")
    if isinstance(app_metadata, dict) and "tenant_id" in app_metadata:
        kept["app_metadata"] = {"tenant_id": app_metadata["tenant_id"]}
    return kept


def _escape_string(value: str) -> str:
    """An SQL escape-string literal (E'...': its meaning does not hang on
    standard_conforming_strings). Only printable ASCII is taken, all that json.dumps writes."""
    if not (value.isascii() and value.isprintable()):
        raise ValueError("only printable ASCII is written into SQL text")
    # '' rather than \' for a quote: accepted whatever backslash_quote says.
    return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _context_values(
    role: str, claims: dict[str, Any] | None, settings: Settings
) -> tuple[str, str, str, str]:
    return (
        role,
        json.dumps(claims) if claims is not None else "",
        f"{settings.db_statement_timeout_ms}ms",
        f"{settings.db_lock_timeout_ms}ms",
    )


def begin_with_context(
    *, role: str, claims: dict[str, Any] | None, settings: Settings, keyset_list: bool = False
) -> str:
    """BEGIN and the request's context as one simple-query message: one round trip where BEGIN
    and a bound statement take two, on every request. The values are written as literals, in one
    pass over the constant statement (a value is never scanned again). Being SQL text, the claims
    show in pg_stat_activity while it runs and in the server log if it fails: pass only
    database_claims (the request's transaction does)."""
    literals = [_escape_string(v) for v in _context_values(role, claims, settings)]
    context = SET_LIST_CONTEXT if keyset_list else SET_REQUEST_CONTEXT
    return "begin;" + _PARAM.sub(lambda m: literals[int(m.group(1)) - 1], context)


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


async def _reset_connection(conn: asyncpg.Connection) -> None:
    """On release. asyncpg has already rolled back a transaction left open; everything a request
    sets is transaction-local (set_config(..., true), SET LOCAL, xact advisory locks), so the
    default reset (`RESET ALL; UNLISTEN *; CLOSE ALL; pg_advisory_unlock_all()`), one more round
    trip per request, would find nothing to undo."""


async def create_pool(dsn: str, settings: Settings) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min(settings.db_pool_min, settings.db_pool_max),
        max_size=settings.db_pool_max,
        statement_cache_size=settings.db_statement_cache_size,
        init=_init_connection,
        reset=_reset_connection,
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
    keyset_list: bool = False,
) -> None:
    """Must be the first statement of the request's transaction."""
    await conn.execute(
        SET_LIST_CONTEXT if keyset_list else SET_REQUEST_CONTEXT,
        *_context_values(role, claims, settings),
    )


# --- The request's transaction -------------------------------------------------------------------
_log = logging.getLogger("motomind.db")

RESOLVE_TENANT = "select public.current_tenant_id()"


def pool_exhausted() -> ProblemError:
    return ProblemError(
        503,
        "pool_exhausted",
        "Busy",
        "No database connection became free in time; retry.",
        headers={"Retry-After": RETRY_AFTER_S},
    )


def database_unavailable() -> ProblemError:
    return ProblemError(
        503,
        UNAVAILABLE.code,
        UNAVAILABLE.title,
        UNAVAILABLE.detail,
        headers={"Retry-After": RETRY_AFTER_S},
    )


# Raised by a statement whose connection is gone or whose protocol state is unknown: closed under
# it, or still busy with the last message of a server that went away (a fast shutdown's 57P01 can
# arrive between two statements: asyncpg then refuses the next one with InternalClientError).
# Not an argument asyncpg could not encode (an InterfaceError that is also a ValueError): nothing
# was sent, the connection is fine.
_LOST_CONNECTION = (
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,
    OSError,
)


def connection_lost(exc: BaseException) -> bool:
    return isinstance(exc, _LOST_CONNECTION) and not isinstance(exc, ValueError)


def no_tenant() -> ProblemError:
    return ProblemError(
        403, "no_tenant", "No tenant", "The token's user belongs to no tenant (no profile)."
    )


class RequestTransaction:
    """The request's transaction: a pooled connection, BEGIN with the request context (one round
    trip), and at the end COMMIT (before the response is sent: scope="function"), or ROLLBACK when
    the request failed; the connection is then released. A lost connection is terminated and
    answered 503. A plain async context manager, so each request pays for no generator."""

    __slots__ = ("_conn", "_identity", "_keyset_list", "_proxy", "_request", "_role", "_tenant")

    def __init__(
        self,
        request: Request,
        *,
        role: str,
        identity: Identity,
        tenant: bool,
        keyset_list: bool = False,
    ) -> None:
        self._request = request
        self._role = role
        self._identity = identity
        self._tenant = tenant
        self._keyset_list = keyset_list

    async def __aenter__(self) -> asyncpg.Connection:
        request = self._request
        state = request.app.state.motomind
        pool: asyncpg.Pool = state.pool
        settings: Settings = state.settings
        try:
            # Bounded here rather than by acquire(timeout=), which runs the wait as a Task.
            async with asyncio.timeout(settings.db_pool_timeout_s):
                self._proxy = await pool.acquire()
        except TimeoutError:
            raise pool_exhausted() from None
        if SHARED_METRICS:  # other workers may answer /metrics: keep this one's gauges current
            record_pool(pool)
        # The proxy forwards every Connection method; queries are typed against Connection.
        conn = self._conn = cast(asyncpg.Connection, self._proxy)
        try:
            identity, role, keyset_list = self._identity, self._role, self._keyset_list
            claims = database_claims(identity.claims)
            tenant_id: uuid.UUID | None = identity.tenant_id
            request.state.user_id = str(identity.user_id) if identity.user_id else None
            if self._tenant and tenant_id is not None:
                claims["tenant_id"] = str(tenant_id)
            begin = begin_with_context(
                role=role, claims=claims, settings=settings, keyset_list=keyset_list
            )
            # A manual BEGIN: request code must not open conn.transaction() (asyncpg refuses).
            await conn.execute(begin)
            if self._tenant and tenant_id is None:
                # No tenant in the token: the caller's profile decides (as RLS would).
                tenant_id = await conn.fetchval(RESOLVE_TENANT)
                if tenant_id is None:
                    raise no_tenant()
                claims["tenant_id"] = str(tenant_id)
                await set_request_context(
                    conn, role=role, claims=claims, settings=settings, keyset_list=keyset_list
                )
            request.state.tenant_id = str(tenant_id) if tenant_id else None
        except BaseException as exc:
            await self.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        return conn

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        try:
            if exc is not None:
                await self._end_failed(exc)
            else:
                await self._commit()
        finally:
            await self._release()

    async def _end_failed(self, exc: BaseException) -> None:
        conn = self._conn
        if connection_lost(exc) or conn.is_closed():
            # Its state is unknown: closed, never rolled back or pooled again.
            conn.terminate()
        else:
            try:
                await conn.execute("rollback")
            except Exception as rollback_exc:  # the original error matters more
                _log.warning("rollback failed: %s", type(rollback_exc).__name__)
                conn.terminate()
        if connection_lost(exc):
            _log.warning("database connection lost: %s", type(exc).__name__)
            raise database_unavailable() from exc

    async def _commit(self) -> None:
        conn = self._conn
        # Before the response is sent (scope="function"): a failed commit is the client's error.
        try:
            status = await conn.execute("commit")
        except BaseException as exc:
            if connection_lost(exc) or conn.is_closed():
                conn.terminate()  # the commit's outcome is unknown: so is the connection
            if connection_lost(exc):
                _log.warning("database connection lost at commit: %s", type(exc).__name__)
                raise database_unavailable() from exc
            raise
        if status != "COMMIT":  # an aborted transaction rolls back
            raise RuntimeError("the request's transaction was aborted yet not reported")

    async def _release(self) -> None:
        state = self._request.app.state.motomind
        pool: asyncpg.Pool = state.pool
        try:
            await pool.release(self._proxy, timeout=state.settings.db_pool_timeout_s)
        except Exception as exc:  # asyncpg has terminated it; the answer stands
            _log.warning("connection release failed: %s", type(exc).__name__)
        if SHARED_METRICS:
            record_pool(pool)


# One dependency per kind of connection: each verifies the token (its only sub-dependency is the
# bearer scheme, which the OpenAPI document shows) and opens the request's transaction. A route
# receives its connection from exactly one of them; FastAPI solves one level, not a chain.


async def tenant_connection(
    request: Request, credentials: Bearer
) -> AsyncIterator[asyncpg.Connection]:
    """The request's connection: one transaction as `authenticated`, with the verified claims."""
    identity = await user_identity(request, credentials)
    async with RequestTransaction(
        request, role="authenticated", identity=identity, tenant=True
    ) as conn:
        yield conn


async def list_connection(
    request: Request, credentials: Bearer
) -> AsyncIterator[asyncpg.Connection]:
    """tenant_connection for a keyset list over a long history: sorting discouraged."""
    identity = await user_identity(request, credentials)
    async with RequestTransaction(
        request, role="authenticated", identity=identity, tenant=True, keyset_list=True
    ) as conn:
        yield conn


async def service_connection(
    request: Request, credentials: Bearer
) -> AsyncIterator[asyncpg.Connection]:
    """For /v1/ops: one transaction as `service_role` (service tokens only)."""
    identity = await service_identity(request, credentials)
    async with RequestTransaction(
        request, role="service_role", identity=identity, tenant=False
    ) as conn:
        yield conn


TenantConn = Annotated[asyncpg.Connection, Depends(tenant_connection, scope="function")]
ListConn = Annotated[asyncpg.Connection, Depends(list_connection, scope="function")]
ServiceConn = Annotated[asyncpg.Connection, Depends(service_connection, scope="function")]
