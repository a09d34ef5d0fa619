"""`motomind serve` as a real process, for the tests that need one (signals, workers)."""

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from app.cli import with_user
from app.database.roles import DEFAULT_API_ROLE
from tests.helpers import TEST_JWT_SECRET
from tests.pgbouncer import free_port


def serve_env(database_url: str, **extra: str) -> dict[str, str]:
    """This process's environment without our settings, pointed at the test database."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "SUPABASE_", "DB_", "JWT_", "MOTOMIND_", "WEB_"))
    }
    env.update(
        DATABASE_URL=with_user(database_url, DEFAULT_API_ROLE),
        SUPABASE_JWT_SECRET=TEST_JWT_SECRET,
        MAINTENANCE_SCHEDULER="false",
        LOG_FORMAT="json",
        **extra,
    )
    return env


def tail(log: Path) -> str:
    return log.read_text()[-3000:]


def start_serve(
    port: int, env: dict[str, str], cwd: Path, log: Path, *args: str
) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "app", "serve", "--port", str(port), *args],
            env=env,
            cwd=cwd,  # no stray .env
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"serve exited early:\n{tail(log)}"
            try:
                if (await client.get(f"{url}/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise AssertionError(f"serve did not become ready:\n{tail(log)}")


@dataclass(frozen=True)
class Serve:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path


@asynccontextmanager
async def running_serve(env: dict[str, str], cwd: Path, *args: str) -> AsyncIterator[Serve]:
    """A ready `motomind serve` on a free port; killed on the way out if still running."""
    port = free_port()
    log = cwd / "serve.log"
    proc = start_serve(port, env, cwd, log, *args)
    try:
        url = f"http://127.0.0.1:{port}"
        await wait_ready(url, proc, log)
        yield Serve(url, proc, log)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
