"""Install or upgrade the schema from `sql/`, and report what is installed."""

import base64
import contextlib
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import asyncpg

from app.db import dsn_with

DEFAULT_API_ROLE = "motomind_api"
API_ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
RESERVED_ROLES = frozenset(
    {"postgres", "anon", "authenticated", "service_role", "authenticator", "public"}
)
SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
# Serializes concurrent installers (two `serve` processes starting at once).
INSTALL_LOCK_KEY = 0x4D4D_5343  # "MMSC"
# sql/NNN_*.sql below this number run before the migrations: roles, schemas, and the functions that
# tables' defaults call (auth.uid(), public.current_tenant_id()). The rest run after them.
FIRST_AFTER_MIGRATIONS = 100
MIGRATION_NAME = re.compile(r"(\d{14})_([a-z0-9_]+)\.sql")

CRON_JOBS = {
    "refresh-timeline": ("*/5 * * * *", "select public.refresh_timeline()"),
    "create-partitions": ("0 3 1 * *", "select public.create_next_year_partition()"),
}

# The migrations' own record, in the style of the Supabase CLI's schema_migrations.
MIGRATIONS_TABLE = """
create table if not exists private.schema_migrations (
  version text primary key,
  name text not null,
  applied_at timestamptz not null default now(),
  adopted boolean not null default false
);
revoke all on table private.schema_migrations from public;
"""
# A database installed by the first release (before migrations) has its tables: the baseline.
FIRST_RELEASE_TABLE = "select to_regclass('private.schema_version') is not null"
FIRST_RELEASE = "select exists (select 1 from private.schema_version where version = 1)"


class SchemaNewerError(ValueError):
    """The database has migrations this code does not know: it belongs to a newer release."""


@dataclass(frozen=True)
class Migration:
    version: str  # the file's timestamp, YYYYMMDDHHMMSS
    name: str
    path: Path


def _sql_dir() -> Path:
    if SQL_DIR.is_dir():
        return SQL_DIR
    # Installed as a wheel: the files travel as package data (Dockerfile).
    return Path(str(resources.files("app") / "sql"))


def sql_files() -> list[Path]:
    """The re-creatable files (functions, triggers, views, policies, grants), in order."""
    return sorted(_sql_dir().glob("*.sql"))


def migrations() -> list[Migration]:
    """sql/migrations/<timestamp>_<name>.sql, oldest first: each applied once and recorded."""
    found = []
    for path in sorted((_sql_dir() / "migrations").glob("*.sql")):
        match = MIGRATION_NAME.fullmatch(path.name)
        if match is None:
            raise ValueError(f"migration file {path.name} is not named <YYYYMMDDHHMMSS>_<name>.sql")
        found.append(Migration(match.group(1), match.group(2), path))
    return found


SCHEMA_VERSION = len(migrations())  # what public.schema_version() answers once all are applied


def _before_migrations(path: Path) -> bool:
    return int(path.name.split("_", 1)[0]) < FIRST_AFTER_MIGRATIONS


async def applied_migrations(conn: asyncpg.Connection) -> list[str]:
    if not await conn.fetchval("select to_regclass('private.schema_migrations') is not null"):
        return []
    rows = await conn.fetch("select version from private.schema_migrations order by version")
    return [r["version"] for r in rows]


async def install(
    conn: asyncpg.Connection,
    *,
    api_role: str = DEFAULT_API_ROLE,
    api_password: str | None = None,
) -> list[Migration]:
    """Bring the database to this code's schema, under a lock that serializes installers:
    roles and schemas, then each pending migration in a transaction of its own (recorded in
    private.schema_migrations), then every re-creatable object and the API's login role.
    Refuses a database with migrations this code does not know. Idempotent; returns the
    migrations it applied."""
    known = migrations()
    await conn.execute("select pg_advisory_lock($1)", INSTALL_LOCK_KEY)
    try:
        async with conn.transaction():
            for path in sql_files():
                if _before_migrations(path):
                    await conn.execute(path.read_text())
            await conn.execute(MIGRATIONS_TABLE)
            applied = await applied_migrations(conn)
            unknown = sorted(set(applied) - {m.version for m in known})
            if unknown:
                raise SchemaNewerError(
                    "the database has migrations this release does not know "
                    f"({', '.join(unknown)}): it was installed by a newer release"
                )
            if (
                not applied
                and known
                and await conn.fetchval(FIRST_RELEASE_TABLE)
                and await conn.fetchval(FIRST_RELEASE)
            ):
                baseline = known[0]
                await conn.execute(
                    """insert into private.schema_migrations (version, name, adopted)
                       values ($1, $2, true)""",
                    baseline.version,
                    baseline.name,
                )
                applied = [baseline.version]
        pending = [m for m in known if m.version not in applied]
        for migration in pending:
            async with conn.transaction():
                await conn.execute(migration.path.read_text())
                await conn.execute(
                    "insert into private.schema_migrations (version, name) values ($1, $2)",
                    migration.version,
                    migration.name,
                )
        async with conn.transaction():
            for path in sql_files():
                if not _before_migrations(path):
                    await conn.execute(path.read_text())
            await ensure_api_role(conn, api_role, api_password)
        return pending
    finally:
        # A lost connection has lost its session lock too: nothing to release then.
        with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            await conn.execute("select pg_advisory_unlock($1)", INSTALL_LOCK_KEY)


def scram_verifier(password: str, *, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802/7677): setting it
    instead of the password keeps the plain text out of pg_stat_activity and the server log."""
    salt = secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    b64 = base64.b64encode
    return (
        f"SCRAM-SHA-256${iterations}:{b64(salt).decode()}"
        f"${b64(stored_key).decode()}:{b64(server_key).decode()}"
    )


async def ensure_api_role(conn: asyncpg.Connection, name: str, password: str | None) -> None:
    """The API's login: LOGIN NOINHERIT, owning nothing, a member of exactly the roles it switches
    to. Done as Supabase's `postgres` can (CREATEROLE, not a superuser); roles are cluster-wide,
    so a second installer racing this one is fine."""
    if (
        not API_ROLE_NAME.fullmatch(name)
        or name in RESERVED_ROLES
        or name.startswith(("pg_", "supabase"))
    ):
        raise ValueError(f"{name!r} cannot be the API's login role")
    existing = await conn.fetchrow(
        """select r.rolsuper or r.rolbypassrls or r.rolcreaterole or r.rolcreatedb
                    or r.rolreplication as privileged,
                  r.rolname = current_user or r.rolname = session_user as installer,
                  exists (select 1 from pg_catalog.pg_shdepend d
                          where d.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass
                            and d.refobjid = r.oid and d.deptype = 'o') as owns,
                  array(select m.roleid::regrole::text from pg_catalog.pg_auth_members m
                        where m.member = r.oid
                          and m.roleid::regrole::text not in ('anon', 'authenticated',
                                                              'service_role')) as member_of
           from pg_catalog.pg_roles r where r.rolname = $1""",
        name,
    )
    if existing is None:
        try:
            async with conn.transaction():  # a savepoint: another installer may win the race
                await conn.execute(f"create role {name} login noinherit")
        except asyncpg.DuplicateObjectError:
            pass
    else:
        # An existing role is taken only if it is already what `create role` would make: the
        # API's login must not be able to become anything more than a client (RLS is its fence).
        problems = [
            what
            for what, found in (
                (
                    "is privileged (superuser, BYPASSRLS, CREATEROLE, CREATEDB or REPLICATION)",
                    existing["privileged"],
                ),
                ("is the role installing the schema", existing["installer"]),
                ("owns objects", existing["owns"]),
                (f"is a member of {', '.join(existing['member_of'])}", existing["member_of"]),
            )
            if found
        ]
        if problems:
            raise ValueError(
                f"role {name} cannot be the API's login: it {'; it '.join(problems)}. "
                "Choose another MOTOMIND_API_ROLE; db init creates it."
            )
        await conn.execute(f"alter role {name} login noinherit")
    for member_of in ("anon", "authenticated", "service_role"):
        if not await conn.fetchval("select pg_has_role($1, $2, 'MEMBER')", name, member_of):
            await conn.execute(f"grant {member_of} to {name}")
    await conn.execute(f"grant execute on function public.cursor_signing_key() to {name}")
    if password is not None:
        # PostgreSQL's clients SASLprep a password before hashing it; for printable ASCII that is
        # the identity, so the verifier computed here is the one they will prove.
        if not (password.isascii() and password.isprintable()) or not password:
            raise ValueError("MOTOMIND_API_PASSWORD must be printable ASCII (it goes into URLs)")
        verifier = scram_verifier(password).replace("'", "''")
        await conn.execute(f"alter role {name} password '{verifier}'")


async def installed_version(conn: asyncpg.Connection) -> int | None:
    """The schema version, or None when the schema is missing. Callable by any role."""
    exists = await conn.fetchval("select to_regprocedure('public.schema_version()') is not null")
    if not exists:
        return None
    value = await conn.fetchval("select public.schema_version()")
    return int(value) if value is not None else None


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


@dataclass
class SchemaStatus:
    version: int | None
    expected: int = SCHEMA_VERSION
    applied: list[str] = field(default_factory=list)  # migration versions in the database
    pending: list[str] = field(default_factory=list)  # this release's, not applied yet
    unknown: list[str] = field(default_factory=list)  # applied, unknown here: a newer release's
    partitions: list[str] = field(default_factory=list)
    cron_jobs: list[dict[str, Any]] = field(default_factory=list)
    freshness: dict[str, Any] | None = None


async def status(conn: asyncpg.Connection, dsn: str) -> SchemaStatus:
    result = SchemaStatus(version=await installed_version(conn))
    if result.version is None:
        return result
    known = {m.version: f"{m.version}_{m.name}" for m in migrations()}
    result.applied = await applied_migrations(conn)
    result.pending = [name for version, name in known.items() if version not in result.applied]
    result.unknown = [v for v in result.applied if v not in known]
    rows = await conn.fetch(
        """select c.relname from pg_inherits i
           join pg_class c on c.oid = i.inhrelid
           where i.inhparent = 'public.vehicle_events'::regclass order by c.relname"""
    )
    result.partitions = [r["relname"] for r in rows]
    result.cron_jobs = await cron_jobs(conn, dsn)
    fresh = await conn.fetchrow("select * from public.mv_freshness limit 1")
    result.freshness = dict(fresh) if fresh else None
    return result
