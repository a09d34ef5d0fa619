"""The `motomind` command: serve, db init, db status, token, demo."""

import asyncio
import contextlib
import json
import os
import shutil
import signal
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import typer
import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr
from uvicorn.supervisors import Multiprocess

from app.core.config import Settings, get_settings
from app.core.observability import configure_logging
from app.database import cron, migrate, users
from app.database.embedded import dev_secret, start_embedded

cli = typer.Typer(
    help="MotoMind API", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False
)
db_cli = typer.Typer(help="Install and inspect the database schema.", no_args_is_help=True)
cli.add_typer(db_cli, name="db")


@dataclass
class Runtime:
    settings: Settings
    api_dsn: str | None  # what the API logs in as (None: DATABASE_URL unset, an admin URL given)
    admin_dsn: str  # what installs the schema
    embedded: Path | None = None  # the embedded server's data directory, when it is used


def with_user(dsn: str, user: str) -> str:
    parts = urlsplit(dsn)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{user}@{host}"))


def runtime(settings: Settings | None = None) -> Runtime:
    """Where to connect: DATABASE_ADMIN_URL / DATABASE_URL when either is set, always; the embedded
    server (started here) only when neither is."""
    settings = settings or get_settings()
    if settings.database_url or settings.database_admin_url:
        admin = settings.database_admin_url or settings.database_url
        assert admin is not None
        return Runtime(settings, settings.database_url, admin)
    server = start_embedded(settings.motomind_data_dir)
    admin = str(server.get_uri())
    if settings.supabase_jwt_secret is None and settings.supabase_url is None:
        secret = dev_secret(settings.motomind_data_dir)
        settings = settings.model_copy(update={"supabase_jwt_secret": SecretStr(secret)})
    # The API logs in as its own login role (owns nothing, not a superuser), as in production.
    api = with_user(admin, settings.motomind_api_role)
    return Runtime(settings, api, admin, embedded=settings.motomind_data_dir)


def announce(rt: Runtime) -> None:
    """Say so when the embedded server is used: nothing was set that names a server."""
    if rt.embedded is not None:
        typer.echo(
            f"DATABASE_URL and DATABASE_ADMIN_URL are unset: using the embedded PostgreSQL "
            f"in {rt.embedded.resolve()}"
        )


async def _init(rt: Runtime) -> tuple[list[migrate.Migration], bool]:
    conn = await asyncpg.connect(rt.admin_dsn)
    try:
        password = rt.settings.motomind_api_password
        applied = await migrate.install(
            conn,
            api_role=rt.settings.motomind_api_role,
            api_password=password.get_secret_value() if password else None,
        )
        return applied, await cron.schedule_cron_jobs(conn, rt.admin_dsn)
    finally:
        await conn.close()


@db_cli.command("init")
def db_init() -> None:
    """Install or upgrade the schema (idempotent)."""
    rt = runtime()
    announce(rt)
    try:
        applied, scheduled = asyncio.run(_init(rt))
    except ValueError as exc:  # a setting the installer refuses, said plainly
        typer.echo(f"db init: {exc}", err=True)
        raise typer.Exit(2) from None
    where = urlsplit(rt.admin_dsn)
    typer.echo(
        f"schema version {migrate.SCHEMA_VERSION} installed in database "
        f"{where.path.lstrip('/') or '(default)'} on {where.hostname or 'a local socket'}"
    )
    typer.echo(
        "migrations applied now: " + ", ".join(f"{m.version}_{m.name}" for m in applied)
        if applied
        else "migrations: none pending"
    )
    typer.echo(f"the API logs in as {rt.settings.motomind_api_role}")
    typer.echo(
        "maintenance: pg_cron jobs scheduled"
        if scheduled
        else "maintenance: pg_cron not available; the API runs the jobs"
    )


async def _status(rt: Runtime) -> migrate.SchemaStatus:
    conn = await asyncpg.connect(rt.admin_dsn)
    try:
        return await migrate.status(conn, rt.admin_dsn)
    finally:
        await conn.close()


@db_cli.command("status")
def db_status() -> None:
    """Schema version, partitions, scheduled jobs and feed freshness."""
    rt = runtime()
    announce(rt)
    st = asyncio.run(_status(rt))
    if st.version is None:
        typer.echo("schema: not installed (run `motomind db init`)")
        raise typer.Exit(1)
    state = "newer than this release" if st.unknown else "behind" if st.pending else "up to date"
    typer.echo(f"schema version: {st.version} (expected {st.expected}, {state})")
    typer.echo(f"migrations applied: {len(st.applied)} of {st.expected}")
    for name in st.pending:
        typer.echo(f"pending migration: {name} (run `motomind db init`)")
    for version in st.unknown:
        typer.echo(f"unknown migration: {version} (installed by a newer release)")
    typer.echo(f"partitions: {', '.join(st.partitions) or 'none'}")
    if st.cron_jobs:
        for job in st.cron_jobs:
            typer.echo(f"pg_cron job: {job['jobname']} [{job['schedule']}] {job['command']}")
    else:
        typer.echo("maintenance: in-app scheduler (pg_cron not in use)")
    typer.echo(
        "feed freshness: "
        + (json.dumps(st.freshness, default=str) if st.freshness else "never refreshed")
    )


@cli.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    workers: int | None = typer.Option(
        None, min=1, max=64, help="Worker processes (default: WEB_CONCURRENCY, else 1)."
    ),
) -> None:
    """Run the API. Without DATABASE_URL, starts the embedded PostgreSQL and installs the schema."""
    from app.main import create_app

    rt = runtime()
    configure_logging(rt.settings)
    if rt.api_dsn is None:
        typer.echo(
            "DATABASE_ADMIN_URL is set but DATABASE_URL is not: set DATABASE_URL to the API's "
            f"login ({rt.settings.motomind_api_role}); `motomind db init` creates it",
            err=True,
        )
        raise typer.Exit(2)
    if rt.embedded is not None:
        asyncio.run(_init(rt))
    workers = workers or rt.settings.web_concurrency
    if workers == 1:
        app = create_app(rt.settings, database_url=rt.api_dsn)
        config = uvicorn.Config(
            app, host=host, port=port, log_config=None, timeout_graceful_shutdown=30
        )
        GracefulServer(config).run()
        return
    # Workers are new processes that build the app from the environment: hand them what this
    # process resolved (the embedded server's address, its dev secret), and a directory where
    # their metrics meet, so /metrics answers for all of them whichever one is asked.
    os.environ["DATABASE_URL"] = rt.api_dsn
    secret = rt.settings.supabase_jwt_secret
    if secret is not None:
        os.environ["SUPABASE_JWT_SECRET"] = secret.get_secret_value()
    own_metrics_dir = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    if own_metrics_dir:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="motomind-metrics-")
    else:  # a directory given to us starts empty, as prometheus_client requires
        for stale in Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).glob("*.db"):
            stale.unlink()
    config = uvicorn.Config(
        "app.cli:worker_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        timeout_graceful_shutdown=30,
    )
    try:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    finally:
        if own_metrics_dir:
            shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)


def worker_app() -> FastAPI:
    """The app as one of `serve --workers N`'s processes builds it (uvicorn calls this)."""
    from app.main import create_app

    settings = get_settings()
    configure_logging(settings)
    return create_app(settings)


async def _ensure_user(rt: Runtime, email: str, tenant_id: uuid.UUID | None) -> tuple[str, str]:
    conn = await asyncpg.connect(rt.admin_dsn)
    try:
        return await users.ensure_user(conn, email=email, tenant_id=tenant_id)
    finally:
        await conn.close()


@cli.command()
def token(
    email: str = typer.Option(..., help="The user's email; the user is created if missing."),
    tenant_id: uuid.UUID | None = typer.Option(None, help="Tenant for a new user."),
    ttl: int = typer.Option(3600, min=1, max=30 * 24 * 3600, help="Lifetime in seconds."),
    role: str = typer.Option("authenticated", help="authenticated or service_role."),
) -> None:
    """Print a JWT signed with the configured HS256 secret (development and debugging)."""
    from app.core.auth import issue_token

    rt = runtime()
    secret = rt.settings.supabase_jwt_secret
    if secret is None:
        typer.echo("no HS256 secret configured (SUPABASE_JWT_SECRET): cannot sign", err=True)
        raise typer.Exit(2)
    user_id, tenant = asyncio.run(_ensure_user(rt, email, tenant_id))
    claims: dict[str, object] = {"email": email, "tenant_id": tenant}
    sub: str | None = user_id
    if role == "service_role":
        claims, sub = {}, None
    typer.echo(issue_token(rt.settings, sub=sub, role=role, ttl=ttl, extra=claims))


async def _demo(rt: Runtime, email: str) -> tuple[str, str, int]:
    from app.database.demo import load_demo

    user_id, tenant = await _ensure_user(rt, email, None)
    conn = await asyncpg.connect(rt.admin_dsn)
    try:
        count = await load_demo(conn, user_id=user_id, tenant_id=tenant, settings=rt.settings)
    finally:
        await conn.close()
    return user_id, tenant, count


@cli.command()
def demo(ttl: int = typer.Option(86400, min=1, help="Token lifetime in seconds.")) -> None:
    """Load a demo tenant (2 garages, 3 vehicles, a year of timeline) and print a token for it."""
    from app.core.auth import issue_token

    rt = runtime()
    secret = rt.settings.supabase_jwt_secret
    if secret is None:
        typer.echo("no HS256 secret configured (SUPABASE_JWT_SECRET): cannot sign", err=True)
        raise typer.Exit(2)
    email = f"demo-{uuid.uuid4().hex[:8]}@example.com"
    user_id, tenant, count = asyncio.run(_demo(rt, email))
    typer.echo(f"demo tenant {tenant}: user {email}, {count} timeline events", err=True)
    typer.echo(
        issue_token(
            rt.settings,
            sub=user_id,
            role="authenticated",
            ttl=ttl,
            extra={"email": email, "tenant_id": tenant},
        )
    )


class GracefulServer(uvicorn.Server):
    """uvicorn, minus re-raising SIGTERM after the drain: a clean shutdown exits 0."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = {
            sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def main() -> None:
    cli()
