"""`motomind serve --workers N`: several processes on one port, one /metrics, a clean stop."""

import re
import signal
from pathlib import Path

import asyncpg
import httpx
import psutil
import pytest

from tests.helpers import auth, create_user
from tests.serve_process import running_serve, serve_env, tail

REQUESTS = 40


def _sample(metrics: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples that carry these labels."""
    total = 0.0
    for line in metrics.splitlines():
        found = re.match(rf"^{name}(?:\{{(.*)\}})? (\S+)$", line)
        if found and all(f'{k}="{v}"' in (found.group(1) or "") for k, v in labels.items()):
            total += float(found.group(2))
    return total


@pytest.mark.timeout(120)
async def test_two_workers_serve_one_port_count_together_and_stop_cleanly(
    database_url: str, db: asyncpg.Pool, tmp_path: Path
) -> None:
    user = await create_user(db)
    async with running_serve(serve_env(database_url), tmp_path, "--workers", "2") as serve:
        url, proc, log = serve.url, serve.proc, serve.log
        children = psutil.Process(proc.pid).children()
        # (multiprocessing may add a resource tracker beside the workers)
        workers = [c for c in children if "spawn_main" in " ".join(c.cmdline())]
        assert len(workers) == 2, (children, tail(log))

        # A new connection per request, so both workers take some.
        for _ in range(REQUESTS):
            async with httpx.AsyncClient(base_url=url, timeout=10) as client:
                resp = await client.get("/v1/garages", headers=auth(user))
                assert resp.status_code == 200, resp.text
        # Whichever worker answers /metrics, it counts every worker's requests.
        for _ in range(6):
            async with httpx.AsyncClient(base_url=url, timeout=10) as client:
                metrics = (await client.get("/metrics")).text
            served = _sample(
                metrics, "motomind_http_requests_total", route="/v1/garages", status="200"
            )
            assert served == REQUESTS, metrics
            # Each worker has its own pool: the gauge is their sum.
            assert _sample(metrics, "motomind_db_pool_size") >= 2, metrics

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=40) == 0, tail(log)
        assert not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)
