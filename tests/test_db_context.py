"""Issue 3: what the database sees in a request, timeouts, and no leak across pooled connections."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import APIRouter, FastAPI, Request

from app.core.auth import CurrentUser
from app.core.config import Settings
from app.core.db import ServiceConn, TenantConn, begin_with_context
from app.database.roles import DEFAULT_API_ROLE
from app.main import create_app
from tests.helpers import create_user
from tests.jwt_support import DROP, bearer, claims, hs256

probe = APIRouter(prefix="/test")


@probe.get("/context")
async def context(conn: TenantConn, user: CurrentUser) -> dict[str, Any]:
    row = await conn.fetchrow(
        """select current_user as role, session_user as login,
                  current_setting('request.jwt.claims', true) as claims,
                  current_setting('statement_timeout') as statement_timeout,
                  current_setting('lock_timeout') as lock_timeout,
                  public.current_tenant_id() as tenant_id,
                  auth.uid() as uid, auth.role() as auth_role, auth.jwt() ->> 'aud' as jwt_aud"""
    )
    assert row is not None
    return {
        **dict(row),
        "claims": json.loads(row["claims"]),
        "tenant_id": str(row["tenant_id"]),
        "uid": str(row["uid"]),
    }


@probe.get("/ops-context")
async def ops_context(conn: ServiceConn) -> dict[str, Any]:
    return {"role": await conn.fetchval("select current_user")}


@probe.get("/sleep")
async def sleep(conn: TenantConn) -> dict[str, str]:
    await conn.execute("select pg_sleep(3)")
    return {"slept": "yes"}


@probe.get("/profiles")
async def profiles(conn: TenantConn) -> list[str]:
    return [str(r["tenant_id"]) for r in await conn.fetch("select tenant_id from public.profiles")]


@probe.get("/fresh")
async def fresh(request: Request) -> dict[str, Any]:
    """A new transaction on the pool's (only) connection, before anything sets it up."""
    pool: asyncpg.Pool = request.app.state.motomind.pool
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            """select current_user as role,
                      current_setting('request.jwt.claims', true) as claims,
                      current_setting('role') as role_setting"""
        )
    assert row is not None
    return dict(row)


@probe.post("/commit-fails")
async def commit_fails(conn: TenantConn) -> dict[str, str]:
    # The server ends the session while the transaction idles, so the commit cannot succeed.
    await conn.execute("set local idle_in_transaction_session_timeout = '100ms'")
    await asyncio.sleep(0.5)
    return {"committed": "no"}


@asynccontextmanager
async def probe_client(settings: Settings, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(settings.model_copy(update=overrides))
    app.include_router(probe)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield c


def token_for(user_id: uuid.UUID, **extra: Any) -> str:
    return hs256(claims(user_id, issuer=None, **extra))


async def test_the_database_sees_the_verified_claims_it_needs(
    settings: Settings, db: asyncpg.Pool
) -> None:
    user = await create_user(db)
    payload = claims(
        user.id,
        issuer=None,
        email=user.email,
        phone="+15550100",
        app_metadata={"provider": "email", "providers": ["email"]},
        user_metadata={"full_name": "Someone"},
        session_id=str(uuid.uuid4()),
        aal="aal1",
        is_anonymous=False,
    )
    async with probe_client(settings) as c:
        resp = await c.get("/test/context", headers=bearer(hs256(payload)))
    assert resp.status_code == 200, resp.text
    seen = resp.json()
    assert seen["role"] == "authenticated"
    assert seen["login"] == DEFAULT_API_ROLE
    assert (
        seen["statement_timeout"] == f"{settings.db_statement_timeout_ms}ms"
        or seen["statement_timeout"] == f"{settings.db_statement_timeout_ms // 1000}s"
    )
    assert seen["lock_timeout"] in (
        f"{settings.db_lock_timeout_ms}ms",
        f"{settings.db_lock_timeout_ms // 1000}s",
    )
    # The claims the schema and policies read, plus the tenant resolved from the profile; no
    # personal data (email, phone, user_metadata) and no app_metadata without a tenant in it.
    needed = ("sub", "aud", "role", "iat", "exp", "session_id", "aal", "is_anonymous")
    assert seen["claims"] == {
        **{name: payload[name] for name in needed},
        "tenant_id": str(user.tenant_id),
    }
    assert seen["tenant_id"] == str(user.tenant_id)


async def test_claims_written_into_the_begin_message_arrive_verbatim(
    settings: Settings, db: asyncpg.Pool
) -> None:
    """The context is written into the BEGIN message as literals: quotes, backslashes, the
    statement's own `$n` markers, SQL and non-ASCII text in a claim arrive as data, byte for
    byte, and change nothing else."""
    user = await create_user(db)
    hostile = "O'Brien \\'; reset role; select 1 -- $1 $2 $$ E'\\x27' '' Zürich \u2028 \\ \""
    payload = claims(
        user.id,
        issuer=None,
        session_id=hostile,
        amr=[{"method": "'); drop table public.vehicles; --", "timestamp": 1}],
        aud=["authenticated", hostile],
    )
    async with probe_client(settings) as c:
        resp = await c.get("/test/context", headers=bearer(hs256(payload)))
    assert resp.status_code == 200, resp.text
    seen = resp.json()
    assert seen["claims"] == {**payload, "tenant_id": str(user.tenant_id)}
    assert seen["role"] == "authenticated" and seen["tenant_id"] == str(user.tenant_id)
    assert await db.fetchval("select to_regclass('public.vehicles')") is not None


@pytest.mark.parametrize("tenant_in", ["claim", "app_metadata", "profile"])
async def test_no_personal_claim_is_written_into_the_sql_the_app_sends(
    settings: Settings, db: asyncpg.Pool, tenant_in: str
) -> None:
    """SQL text shows in pg_stat_activity and in the server's log when a statement fails: the
    email, phone and user_metadata of a token are in none of it, nor in a bound value, while
    tenant resolution, RLS and the auth.* helpers work as before."""
    user = await create_user(db)
    marker = uuid.uuid4().hex
    personal = {
        "email": f"ada.{marker}@example.org",
        "phone": f"4420{marker[:8]}",
        "user_metadata": {"full_name": f"Ada {marker}", "avatar_url": f"https://x.test/{marker}"},
    }
    app_metadata: dict[str, Any] = {"provider": f"p{marker}", "providers": [f"p{marker}"]}
    extra: dict[str, Any] = {}
    if tenant_in == "claim":
        extra["tenant_id"] = str(user.tenant_id)
    elif tenant_in == "app_metadata":
        app_metadata["tenant_id"] = str(user.tenant_id)
    token = hs256(claims(user.id, issuer=None, app_metadata=app_metadata, **personal, **extra))
    sent: list[str] = []

    def record(query: Any) -> None:
        sent.append(f"{query.query} {query.args!r}")

    app: FastAPI = create_app(settings.model_copy(update={"db_pool_min": 1, "db_pool_max": 1}))
    app.include_router(probe)
    async with LifespanManager(app):
        pool: asyncpg.Pool = app.state.motomind.pool
        async with pool.acquire() as conn:  # the pool's only connection: it serves the requests
            conn.add_query_logger(record)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            context = await c.get("/test/context", headers=bearer(token))
            created = await c.post("/v1/vehicles", json={"make": "Honda"}, headers=bearer(token))
            listed = await c.get("/v1/vehicles", headers=bearer(token))
    assert context.status_code == 200, context.text
    assert created.status_code == 201, created.text
    assert listed.status_code == 200, listed.text

    assert any("request.jwt.claims" in text for text in sent)  # the logger saw the context
    for text in sent:
        assert marker not in text, text
        assert "user_metadata" not in text and "email" not in text, text
    # The database still knows whom and which tenant: the helpers and RLS work.
    seen = context.json()
    assert seen["tenant_id"] == str(user.tenant_id)
    assert seen["uid"] == str(user.id) and seen["auth_role"] == "authenticated"
    assert seen["jwt_aud"] == "authenticated"
    assert seen["claims"]["tenant_id"] == str(user.tenant_id)
    if tenant_in == "app_metadata":
        assert seen["claims"]["app_metadata"] == {"tenant_id": str(user.tenant_id)}
    else:
        assert "app_metadata" not in seen["claims"]
    assert [v["id"] for v in listed.json()["items"]] == [created.json()["id"]]
    row = await db.fetchrow(
        "select tenant_id, created_by from public.vehicles where id = $1",
        uuid.UUID(created.json()["id"]),
    )
    assert row is not None
    assert (row["tenant_id"], row["created_by"]) == (user.tenant_id, user.id)


async def test_service_connection_runs_as_service_role(
    settings: Settings, db: asyncpg.Pool
) -> None:
    user = await create_user(db)
    service = hs256(claims(issuer=None, role="service_role", sub=DROP))
    async with probe_client(settings) as c:
        resp = await c.get("/test/ops-context", headers=bearer(service))
        assert resp.status_code == 200
        assert resp.json() == {"role": "service_role"}
        # A user's token is refused there; a service token is refused on tenant routes.
        assert (
            await c.get("/test/ops-context", headers=bearer(token_for(user.id)))
        ).status_code == 403
        assert (await c.get("/test/context", headers=bearer(service))).status_code == 403


async def test_statement_timeout_applies_as_authenticated_and_is_503(
    settings: Settings, db: asyncpg.Pool
) -> None:
    user = await create_user(db)
    async with probe_client(settings, db_statement_timeout_ms=200) as c:
        resp = await c.get("/test/sleep", headers=bearer(token_for(user.id)))
        assert resp.status_code == 503
        assert resp.headers["content-type"] == "application/problem+json"
        assert resp.headers["retry-after"]
        assert resp.json()["code"] == "statement_timeout"
        assert "pg_sleep" not in resp.text
        # The connection is healthy afterwards.
        assert (await c.get("/v1/me", headers=bearer(token_for(user.id)))).status_code == 200


async def test_pool_exhausted_is_503_not_a_hang(settings: Settings, db: asyncpg.Pool) -> None:
    user = await create_user(db)
    async with probe_client(
        settings, db_pool_min=1, db_pool_max=1, db_pool_timeout_s=0.2, db_statement_timeout_ms=1500
    ) as c:
        slow = asyncio.create_task(c.get("/test/sleep", headers=bearer(token_for(user.id))))
        await asyncio.sleep(0.2)
        resp = await c.get("/v1/me", headers=bearer(token_for(user.id)))
        assert resp.status_code == 503
        assert resp.json()["code"] == "pool_exhausted"
        assert resp.headers["retry-after"]
        assert (await slow).status_code == 503


async def test_a_failed_commit_reaches_the_client(settings: Settings, db: asyncpg.Pool) -> None:
    user = await create_user(db)
    async with probe_client(settings) as c:
        resp = await c.post("/test/commit-fails", headers=bearer(token_for(user.id)))
        assert resp.status_code == 503, resp.text
        assert resp.headers["content-type"] == "application/problem+json"
        assert (await c.get("/v1/me", headers=bearer(token_for(user.id)))).status_code == 200


async def test_no_leak_across_a_single_pooled_connection(
    settings: Settings, db: asyncpg.Pool
) -> None:
    a, b = await create_user(db), await create_user(db)
    # Tokens without a tenant claim: the tenant comes from the profile, inside the transaction.
    tokens = {a.tenant_id: token_for(a.id), b.tenant_id: token_for(b.id)}
    invalid = bearer(hs256(claims(a.id, issuer=None), secret="wrong-" + "z" * 40))
    async with probe_client(settings, db_pool_min=1, db_pool_max=1) as c:
        for i in range(700):
            tenant = a.tenant_id if i % 2 == 0 else b.tenant_id
            headers = bearer(tokens[tenant])
            resp = await c.get("/test/profiles", headers=headers)
            assert resp.status_code == 200
            assert set(resp.json()) == {str(tenant)}
            resp = await c.get("/v1/tenant", headers=headers)
            assert resp.json()["id"] == str(tenant)
            assert (await c.get("/v1/me", headers=invalid)).status_code == 401
            fresh = (await c.get("/test/fresh")).json()
            assert fresh["claims"] in ("", None)
            assert fresh["role"] == DEFAULT_API_ROLE


@pytest.mark.parametrize(
    "string_setting", ["backslash_quote = off", "standard_conforming_strings = off"]
)
async def test_the_begin_message_means_the_same_whatever_the_string_settings(
    database_url: str, string_setting: str
) -> None:
    """The literals of begin_with_context hold under either server setting that changes how
    quotes and backslashes in string literals are read."""
    claims = {"sub": str(uuid.uuid4()), "name": "O'Brien \\ '' \\' $2 $$", "city": "Zürich"}
    message = begin_with_context(role="authenticated", claims=claims, settings=Settings())
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f"set {string_setting}")
        await conn.execute(message)
        seen = await conn.fetchrow(
            "select current_user as role, current_setting('request.jwt.claims') as claims"
        )
        await conn.execute("rollback")
    finally:
        await conn.close()
    assert seen is not None and seen["role"] == "authenticated"
    assert json.loads(seen["claims"]) == claims
