"""One command: seed, start the API, and measure each request against pgbench running the same
SQL transaction; or, with --scale, the first page's latency and plan at several data sizes.

    .venv/bin/python -m bench.run                      # the side-by-side table
    .venv/bin/python -m bench.run --scale 100k,1m,10m  # first-page latency and plans by size

Loopback only (PostgreSQL at --server, the API on 127.0.0.1), bounded durations, stops by itself.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import psutil

from app.cli import with_user
from app.core.db import SET_LIST_CONTEXT, database_claims, dsn_with
from app.timeline import queries as timeline
from app.web.paging import encode_cursor
from bench import cases as bench_cases
from bench.seed import BENCH_SECRET, DEFAULT_SERVER, OUT_DIR, SCALES, Shape, seed

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = 50
SIDES = ("pgbench", "api")
EXPLAIN_RUNS = 21


# --- CPU and memory from /proc -------------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()  # fields from 3 (state) on


def proc_cpu_s(pid: int) -> float:
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / CLK_TCK if fields else 0.0


POSTMASTER = 0


def postgres_cpu_s() -> float:
    """The postmaster, its live children, and what it reaped (backends that exited). Only this
    server: another PostgreSQL on the machine (a test suite's embedded one) is not counted."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat(int(entry.name))
        if fields is None:
            continue
        pid = int(entry.name)
        if pid == POSTMASTER:
            total += sum(int(f) for f in fields[11:15]) / CLK_TCK
        elif int(fields[1]) == POSTMASTER:
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total


def machine_busy_s() -> float:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in fields]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / CLK_TCK


def api_pids(pid: int) -> list[int]:
    """`motomind serve` and, with --workers, its worker processes."""
    with contextlib.suppress(psutil.Error):
        return [pid, *(c.pid for c in psutil.Process(pid).children(recursive=True))]
    return [pid]


def api_cpu_s(pid: int) -> float:
    return sum(proc_cpu_s(p) for p in api_pids(pid))


def api_peak_rss_mb(pid: int) -> float:
    """The largest peak resident size among the API's processes."""
    return max(vm_kb(p, "VmHWM") for p in api_pids(pid)) / 1024


def vm_kb(pid: int, key: str) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def run_child(cmd: list[str], *, env: dict[str, str] | None = None) -> tuple[str, str, float]:
    """Run a load generator; its output and the CPU seconds it used (wait4's rusage)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): {stderr[-2000:]}")
    return stdout, stderr, usage.ru_utime + usage.ru_stime


def percentile_ms(histogram: Counter[int], p: float) -> float:
    """The p-th percentile of a latency histogram (microseconds -> count), in milliseconds."""
    total = histogram.total()
    if not total:
        return float("nan")
    rank = min(total, max(1, round(p / 100 * total)))
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return value / 1000
    raise AssertionError("unreachable")


@dataclass
class Result:
    case: str
    side: str  # pgbench | api
    requests: int
    seconds: float
    errors: int
    pg_cpu: float  # % of one core
    api_cpu: float
    gen_cpu: float
    machine_busy: float  # % of all cores
    # Every request's latency, in microseconds -> count: slices of one side merge exactly.
    latency_us: Counter[int] = field(default_factory=Counter, repr=False)
    api_rss_peak_mb: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def p50_ms(self) -> float:
        return percentile_ms(self.latency_us, 50)

    @property
    def p99_ms(self) -> float:
        return percentile_ms(self.latency_us, 99)

    def summary(self) -> dict[str, Any]:
        fields = {k: v for k, v in asdict(self).items() if k != "latency_us"}
        return {**fields, "rps": self.rps, "p50_ms": self.p50_ms, "p99_ms": self.p99_ms}


def merged(slices: list[Result]) -> Result:
    """One side of a case from its interleaved slices: requests and latencies summed, CPU shares
    weighted by each slice's length."""
    seconds = sum(r.seconds for r in slices)

    def weighted(name: str) -> float:
        return sum(getattr(r, name) * r.seconds for r in slices) / seconds

    latency: Counter[int] = Counter()
    for r in slices:
        latency.update(r.latency_us)
    return Result(
        case=slices[0].case,
        side=slices[0].side,
        requests=sum(r.requests for r in slices),
        seconds=seconds,
        errors=sum(r.errors for r in slices),
        pg_cpu=weighted("pg_cpu"),
        api_cpu=weighted("api_cpu"),
        gen_cpu=weighted("gen_cpu"),
        machine_busy=weighted("machine_busy"),
        latency_us=latency,
        api_rss_peak_mb=max(r.api_rss_peak_mb for r in slices),
        extra={"slices_rps": [round(r.rps, 1) for r in slices]},
    )


# --- Preparing the targets -----------------------------------------------------------------------


def _token_claims(token: str) -> dict[str, Any]:
    body = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    return claims


async def prepare_targets(dsn: str, targets_file: Path, work: Path) -> tuple[int, Path]:
    """bench.targets for pgbench, a Lua table for wrk; returns the number of targets."""
    data = json.loads(targets_file.read_text())  # noqa: ASYNC240 - before any I/O of ours
    conn = await asyncpg.connect(dsn)
    try:
        key = bytes(await conn.fetchval("select public.cursor_signing_key()"))
        rows = []
        lua = ["return {"]
        for tenant in data["tenants"]:
            # What the API passes to set_config: the verified claims it writes, tenant_id set.
            claims = database_claims(_token_claims(tenant["token"]))
            claims["tenant_id"] = tenant["tenant_id"]
            vehicles = []
            for v in tenant["vehicles"]:
                rows.append(
                    (
                        len(rows) + 1,
                        json.dumps(claims),
                        uuid.UUID(tenant["user_id"]),
                        uuid.UUID(v["id"]),
                        date.fromisoformat(v["after_date"]),
                        datetime.fromisoformat(v["after_created_at"]),
                        uuid.UUID(v["after_id"]),
                    )
                )
                scope = {
                    "list": "timeline",
                    "vehicle_id": v["id"],
                    "types": None,
                    "from": None,
                    "to": None,
                }
                position = [v["after_date"], v["after_created_at"], v["after_id"]]
                cursor = encode_cursor(key, scope, position)
                vehicles.append(f'{{id="{v["id"]}",cursor="{cursor}"}}')
            lua.append(f'{{token="{tenant["token"]}",v={{{",".join(vehicles)}}}}},')
        lua.append("}")
        await conn.execute(
            """create schema if not exists bench;
               drop table if exists bench.targets;
               create table bench.targets (n int primary key, claims text, user_id uuid,
                 vehicle_id uuid, after_date date, after_created_at timestamptz, after_id uuid);
               grant usage on schema bench to authenticator;
               grant select on bench.targets to authenticator;"""
        )
        await conn.copy_records_to_table("targets", schema_name="bench", records=rows)
        await conn.execute("analyze bench.targets")
    finally:
        await conn.close()
    path = work / "targets.lua"
    path.write_text("\n".join(lua))
    return len(rows), path


def first_target_vars(dsn: str) -> dict[str, str]:
    async def fetch() -> dict[str, str]:
        conn = await asyncpg.connect(dsn)
        try:
            row = await conn.fetchrow("select * from bench.targets where n = 1")
        finally:
            await conn.close()
        assert row is not None
        return {k: (v.isoformat() if hasattr(v, "isoformat") else str(v)) for k, v in row.items()}

    return asyncio.run(fetch())


# --- The API process -----------------------------------------------------------------------------


@contextlib.contextmanager
def api_server(
    dsn: str, port: int, pool: int, workers: int, extra_env: dict[str, str]
) -> Iterator[subprocess.Popen[bytes]]:
    """`motomind serve` with `workers` processes sharing `pool` connections."""
    env = {
        **os.environ,
        "DATABASE_URL": with_user(dsn, "authenticator"),
        "SUPABASE_JWT_SECRET": BENCH_SECRET,
        "MAINTENANCE_SCHEDULER": "false",
        # Access lines are INFO: at WARNING they are not written (not measured).
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "json",
        "WEB_CONCURRENCY": str(workers),
        "DB_POOL_MIN": str(max(1, pool // workers)),
        "DB_POOL_MAX": str(max(1, pool // workers)),
        **extra_env,
    }
    env.pop("SUPABASE_URL", None)
    proc = subprocess.Popen(
        [str(VENV_BIN / "motomind"), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        cwd=tempfile.gettempdir(),  # no .env of the work tree
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the API did not become ready")
            time.sleep(0.2)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- The two sides -------------------------------------------------------------------------------


def pgbench_vars(first: dict[str, str], ntargets: int) -> dict[str, str]:
    return {
        "targets": str(ntargets),
        "role": "authenticated",
        "statement_timeout": "5000ms",
        "lock_timeout": "2000ms",
        "limit": str(PAGE_SIZE + 1),
        "etype": "maintenance",
        "payload": bench_cases.APPEND_PAYLOAD,
        "fingerprint": "sent1:" + "f" * 64,
        "ikey": "0",
        **{k: first[k] for k in ("claims", "user_id", "vehicle_id", "after_date")},
        "after_created_at": first["after_created_at"],
        "after_id": first["after_id"],
    }


def run_pgbench(
    case: bench_cases.Case,
    dsn: str,
    variables: dict[str, str],
    *,
    clients: int,
    seconds: int,
    warmup: int,
    work: Path,
    api_pid: int | None,
) -> Result:
    script = work / f"{case.name}.sql"
    script.write_text(case.pgbench_script())
    conninfo = with_user(dsn, "authenticator")
    base = ["pgbench", "-n", "-M", "prepared", "-c", str(clients), "-j", "1", "-f", str(script)]
    for k, v in variables.items():
        base += ["-D", f"{k}={v}"]
    if warmup:
        run_child([*base, "-T", str(warmup), conninfo])
        time.sleep(1)  # the warm-up's backends are reaped before the CPU sample
    logdir = work / f"pgbench-{case.name}"
    shutil.rmtree(logdir, ignore_errors=True)
    logdir.mkdir()
    before = _sample(api_pid)
    stdout, _, gen_cpu = run_child(
        [*base, "-T", str(seconds), "--log", f"--log-prefix={logdir}/tx", conninfo]
    )
    after = _sample(api_pid)
    latency: Counter[int] = Counter()
    failed = 0
    for log in logdir.iterdir():
        for line in log.read_text().splitlines():
            fields = line.split()
            if fields[2] == "failed":
                failed += 1
                continue
            latency[int(fields[2])] += 1  # microseconds
    elapsed = after["t"] - before["t"]
    return Result(
        case=case.name,
        side="pgbench",
        requests=latency.total(),
        seconds=float(seconds),
        latency_us=latency,
        errors=failed,
        pg_cpu=100 * (after["pg"] - before["pg"]) / elapsed,
        api_cpu=100 * (after["api"] - before["api"]) / elapsed,
        gen_cpu=100 * gen_cpu / elapsed,
        machine_busy=100 * (after["busy"] - before["busy"]) / elapsed / (os.cpu_count() or 1),
        extra={"tps_line": next((x for x in stdout.splitlines() if x.startswith("tps")), "")},
    )


WRK_SCRIPT = r"""
local data = dofile("%(targets)s")
local case = "%(case)s"
local body = '%(body)s'
local counter = 0
math.randomseed(os.time() + %(seed)d)

request = function()
  local t = data[math.random(#data)]
  local v = t.v[math.random(#t.v)]
  local headers = {["Authorization"] = "Bearer " .. t.token}
  if case == "timeline_first" then
    return wrk.format("GET", "/v1/vehicles/" .. v.id .. "/timeline", headers)
  elseif case == "timeline_cursor" then
    return wrk.format("GET", "/v1/vehicles/" .. v.id .. "/timeline?cursor=" .. v.cursor, headers)
  elseif case == "vehicle_get" then
    return wrk.format("GET", "/v1/vehicles/" .. v.id, headers)
  elseif case == "vehicle_list" then
    return wrk.format("GET", "/v1/vehicles", headers)
  end
  counter = counter + 1
  headers["Content-Type"] = "application/json"
  headers["Idempotency-Key"] = string.format(
    "wrk-%%d-%%d-%%d", %(seed)d, math.random(1000000000), counter)
  return wrk.format("POST", "/v1/timeline", headers, string.format(body, v.id))
end

done = function(summary, latency, requests)
  local e = summary.errors
  -- The whole latency histogram (distinct microsecond values and their counts), so that slices
  -- of a run merge exactly.
  local histogram = {}
  for i = 1, #latency do
    local value, count = latency(i)
    histogram[#histogram + 1] = string.format('[%%d,%%d]', value, count)
  end
  io.write(string.format(
    'BENCHJSON {"requests": %%d, "duration_us": %%d, "latency_us": [%%s], ' ..
    '"status_errors": %%d, "socket_errors": %%d}\n',
    summary.requests, summary.duration, table.concat(histogram, ','),
    e.status, e.connect + e.read + e.write + e.timeout))
end
"""


def run_wrk(
    case: bench_cases.Case,
    port: int,
    targets_lua: Path,
    *,
    clients: int,
    seconds: int,
    warmup: int,
    work: Path,
    api_pid: int,
) -> Result:
    script = work / f"{case.name}.lua"
    script.write_text(
        WRK_SCRIPT
        % {
            "targets": targets_lua,
            "case": case.name,
            "body": bench_cases.APPEND_BODY,
            "seed": int(time.time()) % 100000,
        }
    )
    base = ["wrk", "-t", "1", "-c", str(clients), "-s", str(script), f"http://127.0.0.1:{port}"]
    if warmup:
        run_child([*base, "-d", f"{warmup}s"])
    before = _sample(api_pid)
    stdout, _, gen_cpu = run_child([*base, "-d", f"{seconds}s", "--timeout", "10s"])
    after = _sample(api_pid)
    line = next(x for x in stdout.splitlines() if x.startswith("BENCHJSON "))
    stats = json.loads(line.removeprefix("BENCHJSON "))
    elapsed = after["t"] - before["t"]
    return Result(
        case=case.name,
        side="api",
        requests=stats["requests"],
        seconds=stats["duration_us"] / 1e6,
        latency_us=Counter({value: count for value, count in stats["latency_us"]}),
        errors=stats["status_errors"] + stats["socket_errors"],
        pg_cpu=100 * (after["pg"] - before["pg"]) / elapsed,
        api_cpu=100 * (after["api"] - before["api"]) / elapsed,
        gen_cpu=100 * gen_cpu / elapsed,
        machine_busy=100 * (after["busy"] - before["busy"]) / elapsed / (os.cpu_count() or 1),
        api_rss_peak_mb=api_peak_rss_mb(api_pid),
    )


def _sample(api_pid: int | None) -> dict[str, float]:
    return {
        "t": time.monotonic(),
        "pg": postgres_cpu_s(),
        "api": api_cpu_s(api_pid) if api_pid else 0.0,
        "busy": machine_busy_s(),
    }


# --- Output --------------------------------------------------------------------------------------


def table(results: list[Result]) -> str:
    head = (
        "| case | side | req/s | p50 ms | p99 ms | x pgbench req/s | rounds' x, min-max "
        "| p99 / pgbench p99 | PG cpu | API cpu | loadgen cpu | machine busy | API peak RSS "
        "| errors |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    lines = [head]
    limits = {r.case: r for r in results if r.side == "pgbench"}
    for r in results:
        base = limits.get(r.case)
        ratio = f"{r.rps / base.rps:.2f}" if base and r.side == "api" and base.rps else ""
        p99 = f"{r.p99_ms / base.p99_ms:.2f}" if base and r.side == "api" and base.p99_ms else ""
        rss = f"{r.api_rss_peak_mb:.0f} MB" if r.side == "api" else ""
        spread = ""
        if base and r.side == "api" and "slices_rps" in r.extra:
            pairs = zip(r.extra["slices_rps"], base.extra["slices_rps"], strict=True)
            each = [a / b for a, b in pairs if b]
            spread = f"{min(each):.2f}-{max(each):.2f}" if each else ""
        lines.append(
            f"| {r.case} | {r.side} | {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {ratio} "
            f"| {spread} | {p99} | {r.pg_cpu:.0f}% | {r.api_cpu:.0f}% | {r.gen_cpu:.0f}% "
            f"| {r.machine_busy:.0f}% | {rss} | {r.errors} |"
        )
    return "\n".join(lines)


def machine() -> str:
    version = subprocess.run(
        ["psql", "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return f"nproc {os.cpu_count()}, {version}, Python {sys.version.split()[0]}"


# --- Commands ------------------------------------------------------------------------------------


def side_by_side(args: argparse.Namespace, work: Path) -> None:
    shape = Shape(args.tenants, args.vehicles, args.events)
    print(f"seeding {args.database}: {shape.total_events:,} events", flush=True)
    targets_file = asyncio.run(seed(args.server, args.database, shape))
    dsn = dsn_with(args.server, database=args.database)
    ntargets, targets_lua = asyncio.run(prepare_targets(dsn, targets_file, work))
    variables = pgbench_vars(first_target_vars(dsn), ntargets)
    wanted = args.cases.split(",") if args.cases else None
    selected = [c for c in bench_cases.cases() if wanted is None or c.name in wanted]
    results: list[Result] = []
    extra_env = dict(kv.split("=", 1) for kv in args.api_env)
    rounds = max(1, args.rounds)
    slice_s = max(1, round(args.duration / rounds))
    with api_server(dsn, args.port, args.pool, args.workers, extra_env) as api:

        def measure(case: bench_cases.Case, side: str, seconds: int, warmup: int) -> Result:
            common = {"clients": args.connections, "seconds": seconds, "warmup": warmup}
            if side == "pgbench":
                return run_pgbench(case, dsn, variables, **common, work=work, api_pid=api.pid)
            return run_wrk(case, args.port, targets_lua, **common, work=work, api_pid=api.pid)

        for case in selected:
            print(f"== {case.title}: {rounds} rounds of {slice_s}s per side", flush=True)
            for side in SIDES:
                measure(case, side, args.warmup, 0)
            slices: dict[str, list[Result]] = {side: [] for side in SIDES}
            for n in range(rounds):
                # The sides take turns (ABBA order), so the host's minute-to-minute swings fall
                # on both alike; each round's ratio shows how much it swung.
                for side in SIDES if n % 2 == 0 else SIDES[::-1]:
                    slices[side].append(measure(case, side, slice_s, 0))
                limit, api_slice = slices["pgbench"][-1].rps, slices["api"][-1].rps
                print(
                    f"   round {n + 1}: pgbench {limit:7,.0f} req/s  api {api_slice:7,.0f} req/s"
                    f"  ratio {api_slice / limit if limit else float('nan'):.2f}",
                    flush=True,
                )
            for side in SIDES:
                r = merged(slices[side])
                results.append(r)
                print(
                    f"   {side:8} {r.rps:9,.0f} req/s  p50 {r.p50_ms:6.2f} ms  "
                    f"p99 {r.p99_ms:6.2f} ms  errors {r.errors}",
                    flush=True,
                )
        rss = api_peak_rss_mb(api.pid)
    print()
    print(
        f"machine: {machine()}; {shape.total_events:,} events ({shape}); concurrency "
        f"{args.connections}; {args.duration}s per side in {rounds} alternating rounds; "
        f"API {args.workers} worker(s), pool {args.pool} in all; "
        f"API peak RSS {rss:.0f} MB"
    )
    print(table(results))
    out = OUT_DIR / f"results-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"args": vars(args), "results": [r.summary() for r in results]}))
    print(f"\n(saved {out})")


async def explain_first_page(dsn: str, n: int) -> tuple[str, float]:
    """EXPLAIN (ANALYZE, BUFFERS) of the first page, in the API's transaction setup: the plan of
    the last run, and the median execution time of EXPLAIN_RUNS (a single run is noise)."""
    conn = await asyncpg.connect(with_user(dsn, "authenticator"))
    try:
        target = await conn.fetchrow("select * from bench.targets where n = $1", n)
        assert target is not None
        sql, names = timeline.list_sql(
            vehicle=True, types=False, from_=False, to=False, after=False
        )
        values = {"vehicle_id": target["vehicle_id"], "limit": PAGE_SIZE + 1}
        plan, took = "", []
        for _ in range(EXPLAIN_RUNS):
            async with conn.transaction():
                await conn.execute(
                    SET_LIST_CONTEXT, "authenticated", target["claims"], "5000ms", "2000ms"
                )
                rows = await conn.fetch(
                    f"explain (analyze, buffers) {sql}", *(values[k] for k in names)
                )
                plan = "\n".join(r[0] for r in rows)
            took.append(float(plan.rsplit("Execution Time: ", 1)[1].split()[0]))
        return plan, statistics.median(took)
    finally:
        await conn.close()


def scale(args: argparse.Namespace, work: Path) -> None:
    first = next(c for c in bench_cases.cases() if c.name == "timeline_first")
    rows = []
    for name in args.scale.split(","):
        shape = SCALES[name]
        database = f"motomind_bench_s{name}"
        print(f"== {name}: {shape.total_events:,} events in {database}", flush=True)
        t0 = time.perf_counter()
        targets_file = asyncio.run(seed(args.server, database, shape))
        seeded = time.perf_counter() - t0
        dsn = dsn_with(args.server, database=database)
        ntargets, targets_lua = asyncio.run(prepare_targets(dsn, targets_file, work))
        variables = pgbench_vars(first_target_vars(dsn), ntargets)
        plan, took = asyncio.run(explain_first_page(dsn, ntargets // 2))
        (OUT_DIR / f"plan-{name}.txt").write_text(plan)
        print(plan, flush=True)
        # One client needs one worker, whose token cache prime_tokens then fills.
        with api_server(dsn, args.port, args.pool, 1, {}) as api:
            prime_tokens(args.port, targets_file)
            pg1 = run_pgbench(
                first,
                dsn,
                variables,
                clients=1,
                seconds=args.duration,
                warmup=args.warmup,
                work=work,
                api_pid=api.pid,
            )
            api1 = run_wrk(
                first,
                args.port,
                targets_lua,
                clients=1,
                seconds=args.duration,
                warmup=args.warmup,
                work=work,
                api_pid=api.pid,
            )
        rows.append((name, shape, seeded, took, pg1, api1))
    print()
    print(f"machine: {machine()}; one client; {args.duration}s each")
    print(
        "| events | shape (tenants x vehicles x events) | seed s | EXPLAIN ANALYZE ms (median) "
        "| pgbench p50 / p99 ms | API p50 / p99 ms |"
    )
    print("|---:|---|---:|---:|---:|---:|")
    for name, shape, seeded, took, pg1, api1 in rows:
        print(
            f"| {name} ({shape.total_events:,}) | {shape.tenants} x {shape.vehicles} x "
            f"{shape.events} | {seeded:.0f} | {took:.3f} | {pg1.p50_ms:.2f} / {pg1.p99_ms:.2f} "
            f"| {api1.p50_ms:.2f} / {api1.p99_ms:.2f} |"
        )


def prime_tokens(port: int, targets_file: Path) -> None:
    """One request per tenant's token before measuring: a real client verifies its token once and
    reuses it for its lifetime, so first verifications (2,000 tokens at 10 M) are not measured."""
    for tenant in json.loads(targets_file.read_text())["tenants"]:
        vehicle = tenant["vehicles"][0]["id"]
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/vehicles/{vehicle}/timeline",
            headers={"Authorization": f"Bearer {tenant['token']}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            response.read()


async def _postmaster(server: str) -> int:
    conn = await asyncpg.connect(server)
    try:
        fields = _stat(await conn.fetchval("select pg_backend_pid()"))
    finally:
        await conn.close()
    assert fields is not None, "the benchmark must run on the database server's machine"
    return int(fields[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default=os.environ.get("BENCH_SERVER_URL", DEFAULT_SERVER))
    parser.add_argument("--database", default="motomind_bench")
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--vehicles", type=int, default=10)
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--duration", type=int, default=20, help="seconds per side and case")
    parser.add_argument(
        "--rounds", type=int, default=5, help="alternating slices per side (side by side)"
    )
    parser.add_argument("--warmup", type=int, default=3, help="seconds before each measurement")
    parser.add_argument("--connections", type=int, default=8, help="concurrency of both sides")
    parser.add_argument("--pool", type=int, default=8, help="the API's connections, in all")
    parser.add_argument(
        "--workers", type=int, default=2, help="API worker processes (one per core here)"
    )
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--cases", help="comma-separated subset of the cases")
    parser.add_argument("--api-env", action="append", default=[], help="KEY=VALUE for the API")
    parser.add_argument("--scale", help="comma-separated presets (100k,1m,10m): scale mode")
    args = parser.parse_args()
    for tool in ("pgbench", "wrk"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing: apt-get install postgresql-contrib wrk")
    resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
    global POSTMASTER
    POSTMASTER = asyncio.run(_postmaster(args.server))
    OUT_DIR.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="motomind-bench-") as tmp:
        if args.scale:
            scale(args, Path(tmp))
        else:
            side_by_side(args, Path(tmp))


if __name__ == "__main__":
    main()
