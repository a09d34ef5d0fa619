"""A real PgBouncer in transaction mode, for the resilience tests and for whole-suite runs
through it (MOTOMIND_TEST_VIA_PGBOUNCER=1, see conftest.py)."""

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

PGBOUNCER_CANDIDATES = ("pgbouncer", "/usr/sbin/pgbouncer")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
