"""Health routes: /healthz never touches the database, /readyz tells the truth about it."""

import secrets

import asyncpg
import httpx
from asgi_lifespan import LifespanManager

from app.cli import with_user
from app.config import Settings
from app.db import dsn_with
from app.main import create_app


async def test_healthz_and_readyz(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"


async def test_readyz_is_503_while_the_schema_is_missing(server_url: str) -> None:
    name = f"motomind_empty_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f'create database "{name}"')
    try:
        empty = Settings(database_url=with_user(dsn_with(server_url, database=name), "postgres"))
        app = create_app(empty)
        async with LifespanManager(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                assert (await c.get("/healthz")).status_code == 200
                resp = await c.get("/readyz")
                assert resp.status_code == 503
                assert "schema" in resp.json()["detail"]
    finally:
        await admin.execute(f'drop database "{name}" with (force)')
        await admin.close()
