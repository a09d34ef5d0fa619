"""The API's own CPU per request, with no HTTP server, load generator or host noise in the way.

    .venv/bin/python -m bench.cpu                       # the GET cases, after `python -m bench.run`
    .venv/bin/python -m bench.cpu --profile 30 /v1/vehicles/{vehicle}/timeline
    .venv/bin/python -m bench.cpu --profile 30 --sort cumulative /v1/vehicles/{vehicle}

The real app (create_app, its lifespan, pool and middleware) is called as an ASGI application in
this process, with real tokens, against the seeded benchmark database; `{vehicle}` is replaced by
a random seeded vehicle of the token's tenant. What it prints is process CPU time per request
(time.process_time, so PostgreSQL's work is not in it), the best of three rounds: no HTTP server,
load generator or contention in it, for telling whether a change to the request path costs or
saves CPU. The host still drifts over minutes: compare old and new run alternately, a few times
each. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import random
import time
from typing import Any

from app.cli import with_user
from app.core.db import dsn_with
from bench.seed import BENCH_SECRET, DEFAULT_SERVER, OUT_DIR

CASES = ["/v1/vehicles/{vehicle}/timeline", "/v1/vehicles/{vehicle}", "/v1/vehicles"]


def _scope(target: str, token: str) -> dict[str, Any]:
    path, _, query = target.partition("?")
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"authorization", f"Bearer {token}".encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def measure(app: Any, tenants: list[dict[str, Any]], path: str, args: Any) -> list[float]:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def one() -> None:
        tenant = random.choice(tenants)
        vehicle = random.choice(tenant["vehicles"])["id"]
        status: list[int] = []

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await app(_scope(path.format(vehicle=vehicle), tenant["token"]), receive, send)
        if status != [200]:
            raise RuntimeError(f"{path}: status {status}")

    async def client(requests: int) -> None:
        for _ in range(requests):
            await one()

    per_client = max(1, args.requests // args.concurrency)
    await asyncio.gather(*(client(50) for _ in range(args.concurrency)))  # warm-up
    rounds = []
    for n in range(3):
        profile = cProfile.Profile() if args.profile and n == 2 else None
        started = time.process_time()
        if profile:
            profile.enable()
        await asyncio.gather(*(client(per_client) for _ in range(args.concurrency)))
        if profile:
            profile.disable()
        rounds.append((time.process_time() - started) / (per_client * args.concurrency) * 1e6)
        if profile:
            pstats.Stats(profile).sort_stats(args.sort).print_stats(args.profile)
    return rounds


async def run(args: argparse.Namespace) -> None:
    from asgi_lifespan import LifespanManager

    from app.core.config import get_settings
    from app.core.observability import configure_logging
    from app.main import create_app

    configure_logging(get_settings())  # as `motomind serve` does

    targets = json.loads((OUT_DIR / f"{args.database}.json").read_text())
    app = create_app()
    async with LifespanManager(app):
        for path in args.paths or CASES:
            rounds = await measure(app, targets["tenants"], path, args)
            each = ", ".join(f"{r:.0f}" for r in rounds)
            print(f"{path}: {min(rounds):.0f} us CPU per request (rounds {each})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", help=f"GET paths (default: {', '.join(CASES)})")
    parser.add_argument("--server", default=os.environ.get("BENCH_SERVER_URL", DEFAULT_SERVER))
    parser.add_argument("--database", default="motomind_bench")
    parser.add_argument("--requests", type=int, default=2000, help="per round")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight (pool)")
    parser.add_argument("--profile", type=int, default=0, help="print the top N of cProfile")
    parser.add_argument("--sort", default="tottime", help="cProfile's order (e.g. cumulative)")
    args = parser.parse_args()
    os.environ.update(
        DATABASE_URL=with_user(dsn_with(args.server, database=args.database), "authenticator"),
        SUPABASE_JWT_SECRET=BENCH_SECRET,
        MAINTENANCE_SCHEDULER="false",
        LOG_LEVEL="WARNING",
        DB_POOL_MIN=str(args.concurrency),
        DB_POOL_MAX=str(args.concurrency),
    )
    import uvloop  # what uvicorn runs the app on

    uvloop.run(run(args))


if __name__ == "__main__":
    main()
