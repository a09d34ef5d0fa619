"""Without pg_cron, two API processes on one database run each maintenance job once per period."""

import asyncio
import itertools
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from app.cli import with_user
from app.core.db import dsn_with
from app.database.migrate import install
from tests.helpers import TEST_JWT_SECRET
from tests.pgbouncer import free_port

INTERVAL_S = 2.0
WATCH_S = 12.0


@pytest.mark.timeout(120)
async def test_two_processes_run_each_job_once_per_period(server_url: str, tmp_path: Path) -> None:
    name = f"motomind_sched_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f'create database "{name}"')
    url = dsn_with(server_url, database=name)
    owner = await asyncpg.connect(url)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        await install(owner)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "SUPABASE_"))}
        env |= {
            "DATABASE_URL": with_user(url, "authenticator"),
            "SUPABASE_JWT_SECRET": TEST_JWT_SECRET,
            "MAINTENANCE_INTERVAL_S": str(INTERVAL_S),
            "LOG_LEVEL": "WARNING",
        }
        for i in range(2):
            log = (tmp_path / f"serve{i}.log").open("wb")
            with log:
                procs.append(
                    subprocess.Popen(  # noqa: ASYNC220 - starting, not waiting
                        [sys.executable, "-m", "app", "serve", "--port", str(free_port())],
                        env=env,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        await asyncio.sleep(WATCH_S)
        for proc in procs:
            assert proc.poll() is None, (tmp_path / "serve0.log").read_text()
        rows = await owner.fetch(
            """select job, started_at from private.maintenance_runs
               order by job, started_at"""
        )
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            assert proc.wait(timeout=30) == 0
        await owner.close()
        await admin.execute(f'drop database "{name}" with (force)')
        await admin.close()

    by_job: dict[str, list[float]] = {}
    for row in rows:
        by_job.setdefault(row["job"], []).append(row["started_at"].timestamp())
    assert set(by_job) == {"refresh_timeline", "create_next_year_partition"}
    for job, starts in by_job.items():
        # Two processes, each waking every ~INTERVAL_S: still about one run per period...
        assert 2 <= len(starts) <= WATCH_S / (INTERVAL_S * 0.9) + 1, (job, starts)
        # ...and never two runs of a job within one period.
        gaps = [b - a for a, b in itertools.pairwise(starts)]
        assert all(gap >= INTERVAL_S * 0.85 for gap in gaps), (job, gaps)
