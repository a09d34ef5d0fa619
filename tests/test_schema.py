"""The catalog: tables, RLS, partitions, views, roles, pinned search paths, idempotent install."""

import datetime as dt
import secrets
from typing import Any

import asyncpg

from app.core.db import dsn_with
from app.database.migrate import SCHEMA_VERSION, install
from tests.factories import TABLES as PUBLIC_TABLES
from tests.helpers import as_role

RLS_TABLES = list(PUBLIC_TABLES)
TABLES = [t for t in RLS_TABLES if t != "idempotency_keys"]  # the design's seven
CLIENT_ROLES = ["anon", "authenticated", "service_role"]
# Security-definer functions the client roles must be able to call.
CALLABLE_BY_AUTHENTICATED = {
    "public.current_tenant_id()",
    "public.ensure_event_partition_for(date)",
    "public.schema_version()",
}


def this_year() -> int:
    return dt.date.today().year


async def test_the_seven_tables_exist(db: asyncpg.Pool) -> None:
    rows = await db.fetch(
        """select relname, relkind::text from pg_class
           where relnamespace = 'public'::regnamespace and relkind in ('r', 'p')
             and not relispartition"""
    )
    kinds = {r["relname"]: r["relkind"] for r in rows}
    assert set(TABLES) <= set(kinds)
    assert kinds["vehicle_events"] == "p"


async def test_rls_enabled_forced_with_policies_on_every_table(db: asyncpg.Pool) -> None:
    rows = await db.fetch(
        """select c.relname, c.relrowsecurity, c.relforcerowsecurity,
                  array(select p.polcmd::text from pg_policy p where p.polrelid = c.oid
                        order by 1) as cmds
           from pg_class c
           where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p')"""
    )
    by_name = {r["relname"]: r for r in rows}
    for table in RLS_TABLES:
        row = by_name[table]
        assert row["relrowsecurity"] and row["relforcerowsecurity"], table
        assert row["cmds"], f"{table} has no policy"
    # Every table in public, partitions included, has RLS on.
    for name, row in by_name.items():
        assert row["relrowsecurity"] and row["relforcerowsecurity"], name
    # Separate policies per command; the timeline is append-only.
    for table in ["garages", "vehicles", "vehicle_images", "reminders", "idempotency_keys"]:
        assert sorted(by_name[table]["cmds"]) == ["a", "d", "r", "w"], table
    assert sorted(by_name["vehicle_events"]["cmds"]) == ["a", "r"]
    assert sorted(by_name["tenants"]["cmds"]) == ["r", "w"]
    assert sorted(by_name["profiles"]["cmds"]) == ["r", "w"]


async def test_policies_are_for_authenticated_and_use_the_tenant_helper(db: asyncpg.Pool) -> None:
    rows = await db.fetch(
        """select tablename, policyname, roles,
                  coalesce(qual, '') || coalesce(with_check, '') as expr
           from pg_policies where schemaname = 'public'"""
    )
    assert rows
    for row in rows:
        assert list(row["roles"]) == ["authenticated"], row["policyname"]
        assert "current_tenant_id()" in row["expr"], row["policyname"]
        assert "SELECT" in row["expr"].upper(), row["policyname"]  # wrapped: once per statement


async def test_partitions_for_this_year_and_the_two_after(db: asyncpg.Pool) -> None:
    names = {
        r["relname"]
        for r in await db.fetch(
            """select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid
               where i.inhparent = 'public.vehicle_events'::regclass"""
        )
    }
    for year in range(this_year(), this_year() + 3):
        assert f"vehicle_events_{year}" in names
    async with as_role(db, "service_role") as conn:
        coverage = await conn.fetch("select * from public.partition_coverage where required")
    assert [r["year"] for r in coverage] == list(range(this_year(), this_year() + 3))
    assert all(r["covered"] for r in coverage)


async def test_every_partition_has_the_index_set(db: asyncpg.Pool) -> None:
    parent = await db.fetch(
        """select indexrelid::regclass::text as name, pg_get_indexdef(indexrelid) as def
           from pg_index where indrelid = 'public.vehicle_events'::regclass"""
    )
    defs = " ".join(r["def"] for r in parent)
    for expected in [
        "(tenant_id, vehicle_id, date DESC, created_at DESC, id DESC)",
        "(tenant_id, type, date DESC)",
        "(tenant_id, date DESC, created_at DESC, id DESC)",
        "(vehicle_id, date DESC)",
        "USING gin (payload)",
        "(payload ->> 'correction_of'::text)",
    ]:
        assert expected in defs, expected
    rows = await db.fetch(
        """select c.relname,
                  (select count(*) from pg_inherits ii
                   join pg_index x on x.indexrelid = ii.inhrelid
                   where x.indrelid = c.oid) as attached
           from pg_inherits i join pg_class c on c.oid = i.inhrelid
           where i.inhparent = 'public.vehicle_events'::regclass"""
    )
    for row in rows:
        assert row["attached"] == len(parent), row["relname"]


async def test_feed_materialized_view_is_private(db: asyncpg.Pool) -> None:
    mvs = await db.fetch("select schemaname, matviewname from pg_matviews")
    assert ("private", "timeline_feed") in [(r[0], r[1]) for r in mvs]
    assert all(r["schemaname"] != "public" for r in mvs)
    unique = await db.fetchval(
        """select count(*) from pg_index
           where indrelid = 'private.timeline_feed'::regclass and indisunique"""
    )
    assert unique >= 1
    for role in CLIENT_ROLES:
        assert not await db.fetchval("select has_schema_privilege($1, 'private', 'usage')", role)


async def test_the_views(db: asyncpg.Pool) -> None:
    views = {
        r["viewname"]
        for r in await db.fetch("select viewname from pg_views where schemaname = 'public'")
    }
    assert {"timeline_feed", "db_health_stats", "partition_coverage", "mv_freshness"} <= views
    for view in ["db_health_stats", "partition_coverage", "mv_freshness"]:
        assert await db.fetchval("select has_table_privilege('service_role', $1, 'select')", view)
        for role in ["anon", "authenticated"]:
            assert not await db.fetchval(
                "select has_table_privilege($1, $2, 'select')", role, f"public.{view}"
            )
    assert await db.fetchval(
        "select has_table_privilege('authenticated', 'public.timeline_feed', 'select')"
    )
    assert not await db.fetchval(
        "select has_table_privilege('anon', 'public.timeline_feed', 'select')"
    )


async def test_roles(db: asyncpg.Pool) -> None:
    rows = await db.fetch(
        """select rolname, rolcanlogin, rolsuper, rolinherit, rolbypassrls, rolcreaterole,
                  rolcreatedb from pg_roles
           where rolname in ('anon', 'authenticated', 'service_role', 'authenticator')"""
    )
    roles = {r["rolname"]: r for r in rows}
    assert set(roles) == {"anon", "authenticated", "service_role", "authenticator"}
    auth = roles["authenticator"]
    assert auth["rolcanlogin"] and not auth["rolinherit"]
    assert not (auth["rolsuper"] or auth["rolbypassrls"] or auth["rolcreaterole"])
    assert not auth["rolcreatedb"]
    for name in ["anon", "authenticated"]:
        assert not roles[name]["rolcanlogin"]
        assert not roles[name]["rolbypassrls"]
        assert not roles[name]["rolsuper"]
    for name in CLIENT_ROLES:
        assert await db.fetchval("select pg_has_role('authenticator', $1, 'member')", name)


async def test_authenticator_owns_nothing(db: asyncpg.Pool) -> None:
    owned = await db.fetchval(
        """select (select count(*) from pg_class where relowner = r.oid)
                + (select count(*) from pg_proc where proowner = r.oid)
                + (select count(*) from pg_namespace where nspowner = r.oid)
                + (select count(*) from pg_type where typowner = r.oid)
           from pg_roles r where r.rolname = 'authenticator'"""
    )
    assert owned == 0


async def test_every_function_pins_its_search_path(db: asyncpg.Pool) -> None:
    rows = await db.fetch(
        """select p.oid::regprocedure::text as name, p.proconfig
           from pg_proc p
           where p.pronamespace in ('public'::regnamespace, 'private'::regnamespace,
                                    'auth'::regnamespace)"""
    )
    assert len(rows) > 10
    unpinned = [
        r["name"]
        for r in rows
        if not any(c.startswith("search_path=") for c in (r["proconfig"] or []))
    ]
    assert unpinned == []


async def test_security_definer_functions_are_revoked_from_clients(db: asyncpg.Pool) -> None:
    rows = await db.fetch(
        """select p.oid, n.nspname || '.' || p.oid::regprocedure::text as name,
                  p.oid::regprocedure::text as short
           from pg_proc p join pg_namespace n on n.oid = p.pronamespace
           where p.prosecdef and n.nspname in ('public', 'private')"""
    )
    assert rows
    for row in rows:
        qualified = row["short"] if "." in row["short"] else f"public.{row['short']}"
        anon = await db.fetchval(
            "select has_function_privilege('anon', $1::oid, 'execute')", row["oid"]
        )
        authenticated = await db.fetchval(
            "select has_function_privilege('authenticated', $1::oid, 'execute')", row["oid"]
        )
        if qualified in CALLABLE_BY_AUTHENTICATED:
            assert authenticated, qualified
        else:
            assert not authenticated, qualified
            assert not anon, qualified


async def test_event_partitions_cannot_be_named_directly(db: asyncpg.Pool) -> None:
    for year in range(this_year(), this_year() + 3):
        for role in CLIENT_ROLES:
            assert not await db.fetchval(
                "select has_table_privilege($1, $2, 'select,insert,update,delete')",
                role,
                f"public.vehicle_events_{year}",
            )


async def test_events_are_not_updatable_or_deletable_by_authenticated(db: asyncpg.Pool) -> None:
    for priv in ["delete", "truncate"]:
        assert not await db.fetchval(
            "select has_table_privilege('authenticated', 'public.vehicle_events', $1)", priv
        )
    assert not await db.fetchval(
        "select has_any_column_privilege('authenticated', 'public.vehicle_events', 'update')"
    )
    assert await db.fetchval(
        "select has_any_column_privilege('authenticated', 'public.vehicle_events', 'insert')"
    )
    for table in RLS_TABLES:
        assert not await db.fetchval(
            "select has_table_privilege('anon', $1, 'delete')", f"public.{table}"
        )
        assert not await db.fetchval(
            "select has_any_column_privilege('anon', $1, 'select,insert,update')",
            f"public.{table}",
        )


async def test_schema_version_is_readable_by_the_login_role(db: asyncpg.Pool) -> None:
    async with as_role(db, "authenticator") as conn:
        assert await conn.fetchval("select public.schema_version()") == SCHEMA_VERSION


async def catalog_snapshot(conn: asyncpg.Connection) -> dict[str, Any]:
    """What an install defines, in a comparable form."""
    schemas = "('public', 'private', 'auth')"
    return {
        "relations": await conn.fetch(
            f"""select c.relname, c.relkind::text, c.relacl::text, c.relrowsecurity,
                       c.relforcerowsecurity
                from pg_class c join pg_namespace n on n.oid = c.relnamespace
                where n.nspname in {schemas} order by n.nspname, c.relname"""
        ),
        "functions": await conn.fetch(
            f"""select p.oid::regprocedure::text, p.prosrc, p.proconfig, p.proacl::text,
                       p.prosecdef
                from pg_proc p join pg_namespace n on n.oid = p.pronamespace
                where n.nspname in {schemas} order by 1"""
        ),
        "policies": await conn.fetch(
            """select tablename, policyname, cmd, roles, qual, with_check from pg_policies
               where schemaname = 'public' order by 1, 2"""
        ),
        "triggers": await conn.fetch(
            """select tgrelid::regclass::text, tgname, pg_get_triggerdef(oid) from pg_trigger
               where not tgisinternal order by 1, 2"""
        ),
        "constraints": await conn.fetch(
            """select conrelid::regclass::text, conname, pg_get_constraintdef(oid)
               from pg_constraint
               where connamespace in ('public'::regnamespace, 'private'::regnamespace)
               order by 1, 2"""
        ),
        "versions": await conn.fetch(
            "select version, name, applied_at from private.schema_migrations order by 1"
        ),
        "roles": await conn.fetch(
            """select r.rolname, r.rolcanlogin, r.rolinherit, r.rolbypassrls,
                      array(select g.rolname from pg_auth_members m
                            join pg_roles g on g.oid = m.roleid
                            where m.member = r.oid order by 1) as member_of
               from pg_roles r
               where r.rolname in ('anon', 'authenticated', 'service_role', 'authenticator')
               order by 1"""
        ),
    }


async def test_reinstall_is_idempotent(db: asyncpg.Pool) -> None:
    async with db.acquire() as conn:
        before = await catalog_snapshot(conn)
        await install(conn)
        await install(conn)
        after = await catalog_snapshot(conn)
    for key in before:
        assert [tuple(r) for r in after[key]] == [tuple(r) for r in before[key]], key


async def test_installs_in_a_second_database_on_the_same_server(server_url: str) -> None:
    """Roles are cluster-wide: they already exist when the second database installs."""
    name = f"motomind_second_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f'create database "{name}"')
    try:
        conn = await asyncpg.connect(dsn_with(server_url, database=name))
        try:
            await install(conn)
            await install(conn)
            assert await conn.fetchval("select public.schema_version()") == SCHEMA_VERSION
            assert await conn.fetchval("select to_regclass('auth.users') is not null")
        finally:
            await conn.close()
    finally:
        await admin.execute(f'drop database "{name}" with (force)')
        await admin.close()
