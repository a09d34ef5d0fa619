"""Install or upgrade the schema from `sql/`, and report what is installed."""

import contextlib
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import asyncpg

from app.database.cron import cron_jobs
from app.database.roles import DEFAULT_API_ROLE, ensure_api_role

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
# Serializes concurrent installers (two `serve` processes starting at once).
INSTALL_LOCK_KEY = 0x4D4D_5343  # "MMSC"
# sql/NNN_*.sql below this number run before the migrations: roles, schemas, and the functions that
# tables' defaults call (auth.uid(), public.current_tenant_id()). The rest run after them.
FIRST_AFTER_MIGRATIONS = 100
MIGRATION_NAME = re.compile(r"(\d{14})_([a-z0-9_]+)\.sql")

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


async def installed_version(conn: asyncpg.Connection) -> int | None:
    """The schema version, or None when the schema is missing. Callable by any role."""
    exists = await conn.fetchval("select to_regprocedure('public.schema_version()') is not null")
    if not exists:
        return None
    value = await conn.fetchval("select public.schema_version()")
    return int(value) if value is not None else None


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
