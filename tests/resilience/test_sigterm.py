"""`motomind serve` gets SIGTERM with requests in flight: they finish, then it exits 0."""

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import httpx
import pytest

from app.cli import with_user
from tests.helpers import TEST_JWT_SECRET, auth, create_user
from tests.pgbouncer import free_port
from tests.resilience.support import (
    Outcome,
    describe,
    table_lock,
    timed,
    waiting_on_locks,
)

IN_FLIGHT = 6


def _tail(log: Path) -> str:
    return log.read_text()[-3000:]


def _start_serve(port: int, env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "app", "serve", "--port", str(port)],
            env=env,
            cwd=cwd,  # no stray .env
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"serve exited early:\n{_tail(log)}"
            try:
                if (await client.get(f"{url}/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"serve did not become ready:\n{_tail(log)}")


async def _not_serving_new_requests(url: str) -> str:
    """What a new client sees once shutdown began: a refused connection or a 503 from /readyz."""
    deadline = time.monotonic() + 15
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            try:
                resp = await client.get(f"{url}/readyz")
            except httpx.ConnectError:
                return "refused"
            except httpx.HTTPError:
                pass
            else:
                if resp.status_code == 503:
                    return "503"
            await asyncio.sleep(0.05)
    raise AssertionError("still accepting new requests 15 s after SIGTERM")


@pytest.mark.timeout(120)
async def test_sigterm_drains_requests_in_flight(
    database_url: str, db: asyncpg.Pool, tmp_path: Path
) -> None:
    user = await create_user(db)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "SUPABASE_", "DB_", "JWT_", "MOTOMIND_"))
    }
    env.update(
        DATABASE_URL=with_user(database_url, "authenticator"),
        SUPABASE_JWT_SECRET=TEST_JWT_SECRET,
        DB_LOCK_TIMEOUT_MS="10000",
        DB_STATEMENT_TIMEOUT_MS="20000",
        MAINTENANCE_SCHEDULER="false",
        LOG_FORMAT="json",
    )
    log = tmp_path / "serve.log"
    proc = _start_serve(port, env, tmp_path, log)
    try:
        await _wait_ready(url, proc, log)
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            async with table_lock(database_url, "public.garages") as owner:
                requests = [
                    asyncio.create_task(
                        timed(
                            client,
                            "POST",
                            "/v1/garages",
                            json={"name": f"g{i}"},
                            headers=auth(user),
                        )
                        if i % 2
                        else timed(client, "GET", "/v1/garages", headers=auth(user))
                    )
                    for i in range(IN_FLIGHT)
                ]
                # All of them are inside the database, waiting for the lock.
                deadline = time.monotonic() + 20
                while await waiting_on_locks(owner) < IN_FLIGHT:
                    assert time.monotonic() < deadline, "requests never reached the lock"
                    await asyncio.sleep(0.05)
                proc.send_signal(signal.SIGTERM)
                seen = await _not_serving_new_requests(url)
                assert seen in ("refused", "503")
                # Still draining: the in-flight requests keep the process alive.
                assert proc.poll() is None
                assert not any(r.done() for r in requests)
                await asyncio.sleep(0.5)
            # The lock is released: the in-flight requests complete.
            done: list[Outcome] = await asyncio.wait_for(asyncio.gather(*requests), timeout=30)
        assert sorted(o.status or 0 for o in done) == [200] * 3 + [201] * 3, describe(done)
        code = await asyncio.to_thread(proc.wait, 30)
        assert code == 0, _tail(log)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    created = {o.body["id"] for o in done if o.status == 201}
    rows = await db.fetch(
        "select id::text from public.garages where tenant_id = $1", user.tenant_id
    )
    assert {r["id"] for r in rows} == created
