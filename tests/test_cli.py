"""The motomind command as a user runs it: db init, db status, serve on the embedded server."""

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from app.core.db import dsn_with
from app.database.migrate import SCHEMA_VERSION

MOTOMIND = [sys.executable, "-m", "app"]


def run(
    args: list[str], env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        MOTOMIND + args,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "SUPABASE_"))}
    env.update(extra)
    return env


@pytest.fixture
async def new_database(server_url: str) -> AsyncIterator[str]:
    name = f"motomind_cli_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f'create database "{name}"')
    yield dsn_with(server_url, database=name)
    await admin.execute(f'drop database "{name}" with (force)')
    await admin.close()


async def test_db_init_twice_then_status(new_database: str) -> None:
    env = base_env(DATABASE_ADMIN_URL=new_database, DATABASE_URL=new_database)
    first = run(["db", "init"], env)
    assert first.returncode == 0, first.stderr
    second = run(["db", "init"], env)
    assert second.returncode == 0, second.stderr
    status = run(["db", "status"], env)
    assert status.returncode == 0, status.stderr
    assert f"schema version: {SCHEMA_VERSION}" in status.stdout
    assert "vehicle_events_" in status.stdout
    if os.environ.get("MOTOMIND_EXPECT_PG_CRON"):
        assert "pg_cron jobs scheduled" in first.stdout
        assert "motomind-refresh-timeline" in status.stdout
        assert "motomind-create-partitions" in status.stdout
        conn = await asyncpg.connect(dsn_with(new_database, database="postgres"))
        try:
            jobs = await conn.fetch(
                "select jobname from cron.job where database = $1",
                new_database.rsplit("/", 1)[-1].split("?")[0],
            )
            assert len(jobs) == 2  # scheduling twice did not duplicate the jobs
            await conn.execute(
                "select cron.unschedule(jobname) from cron.job where database = $1",
                new_database.rsplit("/", 1)[-1].split("?")[0],
            )
        finally:
            await conn.close()


async def test_db_init_installs_where_the_admin_url_points(
    new_database: str, tmp_path: Path
) -> None:
    """Only DATABASE_ADMIN_URL set: that server gets the schema, and no embedded server starts."""
    data_dir = tmp_path / "data"
    env = base_env(DATABASE_ADMIN_URL=new_database, MOTOMIND_DATA_DIR=str(data_dir))
    result = run(["db", "init"], env)
    assert result.returncode == 0, result.stderr
    assert "embedded" not in result.stdout
    database = new_database.rsplit("/", 1)[-1].split("?")[0]
    assert result.stdout.startswith(
        f"schema version {SCHEMA_VERSION} installed in database {database}"
    )
    assert not data_dir.exists()
    conn = await asyncpg.connect(new_database)
    try:
        assert await conn.fetchval("select public.schema_version()") == SCHEMA_VERSION
    finally:
        await conn.close()


def test_db_init_without_a_url_says_it_uses_the_embedded_server(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    result = run(["db", "init"], base_env(MOTOMIND_DATA_DIR=str(data_dir)))
    assert result.returncode == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert "embedded PostgreSQL" in first and str(data_dir.resolve()) in first, result.stdout
    assert (data_dir / "pgdata").exists()


def test_serve_with_only_the_admin_url_refuses(new_database: str, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = base_env(DATABASE_ADMIN_URL=new_database, MOTOMIND_DATA_DIR=str(data_dir))
    result = run(["serve", "--port", "9"], env)
    assert result.returncode == 2
    assert "set DATABASE_URL" in result.stderr
    assert not data_dir.exists()


def test_db_status_on_an_empty_database_says_so(new_database: str) -> None:
    status = run(["db", "status"], base_env(DATABASE_URL=new_database))
    assert status.returncode == 1
    assert "not installed" in status.stdout


def _wait_ready(url: str, proc: subprocess.Popen[str], timeout: float = 90) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "serve exited early"
        try:
            resp = httpx.get(f"{url}/readyz", timeout=2)
            if resp.status_code == 200:
                return resp
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError("serve did not become ready")


def _serve(data_dir: Path, port: int) -> subprocess.Popen[str]:
    env = base_env(MOTOMIND_DATA_DIR=str(data_dir))
    log = (data_dir.parent / "serve.log").open("a")
    with log:  # the child keeps its own descriptor
        return subprocess.Popen(
            [*MOTOMIND, "serve", "--port", str(port)],
            env=env,
            text=True,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _stop(proc: subprocess.Popen[str], data_dir: Path) -> None:
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=60)
    assert code == 0, (data_dir.parent / "serve.log").read_text()[-3000:]


def _readme_block(heading: str) -> str:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split(heading, 1)[1]
    return section.split("```sh\n", 1)[1].split("```", 1)[0]


def _json_stream(text: str) -> list[Any]:
    """curl prints one JSON document per call, with no newline between them."""
    decoder, values, pos = json.JSONDecoder(), [], 0
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
            continue
        value, pos = decoder.raw_decode(text, pos)
        values.append(value)
    return values


def _run_readme_walkthrough(data_dir: Path, port: int) -> None:
    """The README's curl walkthrough, as written (only the port differs)."""
    script = _readme_block("## Walkthrough with curl").replace(
        "127.0.0.1:8000", f"127.0.0.1:{port}"
    )
    env = base_env(MOTOMIND_DATA_DIR=str(data_dir))
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    outputs = _json_stream(result.stdout)
    vehicle = outputs[-1]
    assert vehicle["current_mileage"] == 41900, result.stdout
    timeline = outputs[-2]
    assert [e["type"] for e in timeline["items"]] == ["odometer", "fuel"], result.stdout


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.timeout(300)
def test_serve_on_embedded_postgres_then_serve_again_reuses_the_data(tmp_path: Path) -> None:
    """The README's first command: no DATABASE_URL, an embedded server, a token that works."""
    data_dir = tmp_path / "data"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = _serve(data_dir, port)
    try:
        assert _wait_ready(url, proc).json()["schema_version"] == SCHEMA_VERSION
        assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}
        token = run(
            ["token", "--email", "me@example.com"], base_env(MOTOMIND_DATA_DIR=str(data_dir))
        )
        assert token.returncode == 0, token.stderr
        me = httpx.get(f"{url}/v1/me", headers={"Authorization": f"Bearer {token.stdout.strip()}"})
        assert me.status_code == 200, me.text
        assert me.json()["email"] == "me@example.com"
        first_id = me.json()["id"]
        _run_readme_walkthrough(data_dir, port)
    finally:
        _stop(proc, data_dir)
    # A second serve finds the same data: the user made above still exists.
    proc = _serve(data_dir, port)
    try:
        _wait_ready(url, proc)
        token = run(
            ["token", "--email", "me@example.com"], base_env(MOTOMIND_DATA_DIR=str(data_dir))
        )
        me = httpx.get(f"{url}/v1/me", headers={"Authorization": f"Bearer {token.stdout.strip()}"})
        assert me.status_code == 200
        assert me.json()["id"] == first_id
    finally:
        _stop(proc, data_dir)


async def test_demo_loads_a_tenant_and_prints_a_working_token(
    client: httpx.AsyncClient, database_url: str, db: asyncpg.Pool
) -> None:
    from tests.helpers import TEST_JWT_SECRET

    env = base_env(DATABASE_URL=database_url, SUPABASE_JWT_SECRET=TEST_JWT_SECRET)
    # In a thread: the session's app keeps serving (its maintenance run commits) meanwhile.
    result = await asyncio.to_thread(run, ["demo"], env)
    assert result.returncode == 0, result.stderr
    headers = {"Authorization": f"Bearer {result.stdout.strip()}"}
    me = (await client.get("/v1/me", headers=headers)).json()
    tenant = uuid.UUID(me["tenant"]["id"])
    assert len((await client.get("/v1/garages", headers=headers)).json()["items"]) == 2
    counts = await db.fetchrow(
        """select (select count(*) from public.vehicles where tenant_id = $1) as vehicles,
                  (select count(*) from public.vehicle_events where tenant_id = $1) as events,
                  (select min(date) from public.vehicle_events where tenant_id = $1) as first""",
        tenant,
    )
    assert counts["vehicles"] == 3
    assert counts["events"] > 60  # a year of fuel-ups for three vehicles
    assert (date.today() - counts["first"]).days >= 360
    # The dashboard feed shows the demo at once, not after the next scheduled refresh.
    feed = (await client.get("/v1/timeline/feed", headers=headers)).json()
    assert feed["refreshed_at"] is not None
    assert len(feed["items"]) == 3
    assert sum(item["event_count"] for item in feed["items"]) == counts["events"]


def test_token_refuses_without_a_secret(new_database: str) -> None:
    result = run(["token", "--email", "x@example.com"], base_env(DATABASE_URL=new_database))
    assert result.returncode == 2
    assert "no HS256 secret" in result.stderr
