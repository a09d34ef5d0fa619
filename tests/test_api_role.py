"""The API's login role that `db init` creates (contract §6): LOGIN NOINHERIT, owning nothing,
a member of exactly anon, authenticated and service_role. An existing role is taken only when it
is already that; anything more would let the API's login step outside RLS."""

import secrets
from collections.abc import AsyncIterator

import asyncpg
import pytest

from app.database.migrate import install
from app.database.roles import DEFAULT_API_ROLE, ensure_api_role


@pytest.fixture
async def role(db: asyncpg.Pool) -> AsyncIterator[str]:
    name = f"mm_api_{secrets.token_hex(4)}"
    yield name
    async with db.acquire() as conn:
        exists = await conn.fetchval("select count(*) from pg_roles where rolname = $1", name)
        if exists:
            await conn.execute(f"drop owned by {name}")
            await conn.execute(f"drop role {name}")


async def test_a_new_role_is_made_as_the_contract_says(db: asyncpg.Pool, role: str) -> None:
    async with db.acquire() as conn:
        await install(conn, api_role=role)
        await install(conn, api_role=role)  # and again: nothing changes
        row = await conn.fetchrow(
            """select rolsuper, rolinherit, rolcanlogin, rolbypassrls, rolcreaterole,
                      rolcreatedb, rolreplication,
                      array(select roleid::regrole::text from pg_auth_members
                            where member = r.oid order by 1) as member_of
               from pg_roles r where rolname = $1""",
            role,
        )
    assert dict(row) == {
        "rolsuper": False,
        "rolinherit": False,
        "rolcanlogin": True,
        "rolbypassrls": False,
        "rolcreaterole": False,
        "rolcreatedb": False,
        "rolreplication": False,
        "member_of": ["anon", "authenticated", "service_role"],
    }


@pytest.mark.parametrize(
    ("setup", "problem"),
    [
        ("create role {r} login createdb", "is privileged"),
        ("create role {r} login bypassrls", "is privileged"),
        (
            "create role {r} login; create table public.{r}_owned (id int); "
            "alter table public.{r}_owned owner to {r}",
            "owns objects",
        ),
        ("create role {r} login; grant postgres to {r}", "is a member of postgres"),
    ],
    ids=["createdb", "bypassrls", "owner", "member_of_postgres"],
)
async def test_an_existing_role_that_is_more_than_a_client_is_refused(
    db: asyncpg.Pool, role: str, setup: str, problem: str
) -> None:
    async with db.acquire() as conn:
        await conn.execute(setup.format(r=role))
        before = await conn.fetchval("select rolinherit from pg_roles where rolname = $1", role)
        with pytest.raises(ValueError, match=problem):
            async with conn.transaction():
                await ensure_api_role(conn, role, None)
        assert (
            await conn.fetchval("select rolinherit from pg_roles where rolname = $1", role)
            == before
        )
        if "owned" in setup:
            await conn.execute(f"drop table public.{role}_owned")


@pytest.mark.parametrize(
    "name",
    [
        "postgres",
        "authenticator",
        "anon",
        "pg_x",
        "supabase_x",
        "Bad-Name",
        "x; drop role postgres",
    ],
)
async def test_reserved_or_malformed_names_are_refused(db: asyncpg.Pool, name: str) -> None:
    async with db.acquire() as conn:
        with pytest.raises(ValueError, match="cannot be the API's login role"):
            await ensure_api_role(conn, name, None)


@pytest.mark.parametrize("password", ["ﬁre-truck", "pass\u00a0word", "tab\tin", ""])
async def test_a_password_clients_would_hash_differently_is_refused(
    db: asyncpg.Pool, password: str
) -> None:
    """Clients SASLprep passwords before hashing; only printable ASCII is certain to match."""
    async with db.acquire() as conn:
        with pytest.raises(ValueError, match="printable ASCII"):
            async with conn.transaction():
                await ensure_api_role(conn, DEFAULT_API_ROLE, password)
