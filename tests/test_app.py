"""Health routes: /healthz never touches the database, /readyz tells the truth about it."""

import json
import logging
import secrets

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager

from app.cli import with_user
from app.core.config import Settings
from app.core.db import dsn_with
from app.core.observability import configure_logging
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


async def test_one_access_line_per_request_at_info_and_none_below_it(
    client: httpx.AsyncClient, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        at_info = {"log_level": "INFO", "log_format": "json"}
        configure_logging(settings.model_copy(update=at_info))
        capsys.readouterr()
        await client.get("/healthz", headers={"X-Request-ID": "trace-1"})
        lines = [json.loads(x) for x in capsys.readouterr().err.splitlines()]
        access = [x for x in lines if x.get("event") == "request"]
        assert len(access) == 1, lines
        expected = {"route": "/healthz", "status": 200, "request_id": "trace-1"}
        assert access[0] | expected == access[0]

        configure_logging(settings.model_copy(update={**at_info, "log_level": "WARNING"}))
        capsys.readouterr()
        await client.get("/healthz")
        assert '"event": "request"' not in capsys.readouterr().err
    finally:
        logging.getLogger().handlers = []


@pytest.mark.parametrize("fmt", ["console", "json"])
def test_logged_tracebacks_never_render_local_variables(
    settings: Settings, capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    """Rendering locals is slow on a big request body (it blocked the event loop for minutes)
    and leaks what the frame held; the traceback itself is still logged."""

    def handler_with_a_body() -> None:
        body = {"token": "LOCAL-SECRET-VALUE", "nested": [[[[1]]]]}
        raise RuntimeError(f"failed on {len(body)} fields")

    try:
        configure_logging(settings.model_copy(update={"log_level": "INFO", "log_format": fmt}))
        capsys.readouterr()
        try:
            handler_with_a_body()
        except RuntimeError as exc:
            logging.getLogger("motomind.test").error("unhandled", exc_info=exc)
        err = capsys.readouterr().err
        assert "Traceback" in err and "RuntimeError: failed on 2 fields" in err
        assert "handler_with_a_body" in err
        assert "LOCAL-SECRET-VALUE" not in err
    finally:
        logging.getLogger().handlers = []
