"""One PostgreSQL database per test session: the embedded server, or TEST_DATABASE_URL's server.

Every test makes its own tenants and users, so tests never collide and need no cleanup.
"""

import os
import secrets
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from app.core.config import Settings
from app.core.db import dsn_with
from app.database.embedded import start_embedded
from app.database.migrate import install
from app.database.roles import DEFAULT_API_ROLE
from tests.helpers import TEST_JWT_SECRET


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """A superuser URL to the server the suite runs against."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="motomind-test-") as tmp:
        server = start_embedded(Path(tmp), delete_on_exit=True)
        yield str(server.get_uri())


@pytest.fixture(scope="session")
async def database_url(server_url: str) -> AsyncIterator[str]:
    """A fresh database with the schema installed; dropped at the end of the session."""
    name = f"motomind_test_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'create database "{name}"')
    finally:
        await admin.close()
    url = dsn_with(server_url, database=name)
    conn = await asyncpg.connect(url)
    try:
        await install(conn)
    finally:
        await conn.close()
    yield url
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'drop database if exists "{name}" with (force)')
    finally:
        await admin.close()


@pytest.fixture(scope="session")
async def db(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """The owner's pool on the test database (bypasses nothing: tests switch role like the app)."""
    from app.core.db import _init_connection

    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=8, init=_init_connection)
    assert pool is not None
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
def app_database_url(database_url: str) -> Iterator[str]:
    """What the app logs in with: the API's login role (`motomind_api`, created by the install),
    directly or through a real PgBouncer in transaction mode when MOTOMIND_TEST_VIA_PGBOUNCER=1
    (needs a TCP TEST_DATABASE_URL)."""
    from app.cli import with_user

    direct = with_user(database_url, DEFAULT_API_ROLE)
    if os.environ.get("MOTOMIND_TEST_VIA_PGBOUNCER") != "1":
        yield direct
        return
    from tests.pgbouncer import pgbouncer, tcp_server

    server = tcp_server(database_url)
    if server is None:
        pytest.fail("MOTOMIND_TEST_VIA_PGBOUNCER=1 needs a TCP TEST_DATABASE_URL")
    with pgbouncer(server=server, users=[DEFAULT_API_ROLE, "postgres"], pool_size=2) as bouncer:
        parts = urlsplit(direct)
        yield urlunsplit(parts._replace(netloc=f"{DEFAULT_API_ROLE}@127.0.0.1:{bouncer.port}"))


@pytest.fixture(scope="session")
def settings(app_database_url: str) -> Settings:
    from pydantic import SecretStr

    via_bouncer = os.environ.get("MOTOMIND_TEST_VIA_PGBOUNCER") == "1"
    return Settings(
        database_url=app_database_url,
        supabase_jwt_secret=SecretStr(TEST_JWT_SECRET),
        supabase_url=None,
        jwt_issuer=None,
        db_pool_max=8,
        # Transaction-mode poolers cannot keep prepared statements.
        db_statement_cache_size=0 if via_bouncer else 100,
    )


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The real app, its lifespan run once for the session, logging in as `motomind_api`."""
    from asgi_lifespan import LifespanManager

    from app.main import create_app

    application = create_app(settings)
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c
