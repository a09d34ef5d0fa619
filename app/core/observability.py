"""Logs (structlog: JSON in production, readable in a terminal), request ids, metrics."""

import logging
import os
import re
import sys
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import structlog
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.requests import Request
from starlette.responses import Response

from app.core.config import Settings

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

ACCESS_LOGGER_NAME = "motomind.access"
access_log = structlog.get_logger(ACCESS_LOGGER_NAME)

REQUESTS = Counter("motomind_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "motomind_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
# Summed over the live worker processes when there are several (`serve --workers`).
POOL_IN_USE = Gauge(
    "motomind_db_pool_in_use", "Database connections checked out", multiprocess_mode="livesum"
)
POOL_SIZE = Gauge("motomind_db_pool_size", "Database connections open", multiprocess_mode="livesum")
JWKS_FETCHES = Counter("motomind_jwks_fetches_total", "JWKS fetches", ["outcome"])
MAINTENANCE_RUNS = Counter(
    "motomind_maintenance_runs_total", "In-app maintenance runs", ["job", "outcome"]
)


def _add_request_id(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    request_id = request_id_var.get()
    if request_id is not None:
        event.setdefault("request_id", request_id)
    return event


def configure_logging(settings: Settings) -> None:
    """Route stdlib logging (ours, uvicorn's) and structlog through one renderer."""
    fmt = settings.log_format or ("console" if sys.stderr.isatty() else "json")
    # Tracebacks as plain text, without local variables: rendering the locals of a frame that
    # holds a large or deeply nested request body blocked the event loop for minutes, and
    # locals may hold secrets (tokens, bodies) that do not belong in logs.
    renderers: list[Any] = (
        [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
        if fmt == "json"
        else [
            structlog.dev.ConsoleRenderer(
                colors=False, exception_formatter=structlog.dev.plain_traceback
            )
        ]
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_request_id,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderers],
            foreign_pre_chain=shared,
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(settings.log_level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # our access line replaces it


def worker_metrics_dir() -> str | None:
    """Where the worker processes of `serve --workers N` write their metrics (None: one process)."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def forget_dead_workers() -> None:
    """At a worker's start: drop the live gauges of workers that died without shutting down
    (killed; the supervisor starts another), so the pool gauges sum live workers only."""
    directory = worker_metrics_dir()
    if directory is None:
        return
    for path in Path(directory).glob("gauge_live*_*.db"):
        pid = path.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            multiprocess.mark_process_dead(int(pid), directory)  # type: ignore[no-untyped-call]


def record_pool(pool: Any) -> None:
    POOL_SIZE.set(pool.get_size())
    POOL_IN_USE.set(pool.get_size() - pool.get_idle_size())


async def metrics_endpoint(request: Request) -> Response:
    pool = getattr(getattr(request.app.state, "motomind", None), "pool", None)
    if pool is not None:
        record_pool(pool)
    if worker_metrics_dir() is None:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
