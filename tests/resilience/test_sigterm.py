"""`motomind serve` gets SIGTERM with requests in flight: they finish, then it exits 0."""

import asyncio
import signal
import time
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.helpers import auth, create_user
from tests.resilience.support import (
    Outcome,
    describe,
    table_lock,
    timed,
    waiting_on_locks,
)
from tests.serve_process import running_serve, serve_env, tail

IN_FLIGHT = 6


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
    env = serve_env(database_url, DB_LOCK_TIMEOUT_MS="10000", DB_STATEMENT_TIMEOUT_MS="20000")
    async with running_serve(env, tmp_path) as serve:
        url, proc, log = serve.url, serve.proc, serve.log
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
        assert code == 0, tail(log)
    created = {o.body["id"] for o in done if o.status == 201}
    rows = await db.fetch(
        "select id::text from public.garages where tenant_id = $1", user.tenant_id
    )
    assert {r["id"] for r in rows} == created
