"""create_app() and the lifespan: pool, JWKS cache, scheduler; nothing else."""

import asyncio
import contextlib
import gc
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

import asyncpg
import httpx
from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from prometheus_client import multiprocess

from app.core.auth import TokenVerifier
from app.core.config import Settings, get_settings
from app.core.db import create_pool
from app.core.edge import EdgeMiddleware
from app.core.errors import install_error_handlers
from app.core.observability import forget_dead_workers, metrics_endpoint, worker_metrics_dir
from app.database import maintenance, migrate
from app.routers import OPENAPI_TAGS, register
from app.web.problem_docs import document_problems

log = logging.getLogger("motomind")

CORS_ALLOW_HEADERS = [
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "If-Match",
    "X-Request-ID",
]
# Requests allocate many short-lived objects and few reference cycles: the young generation is
# collected after 20,000 allocations instead of 700 (bench/README.md measures it).
GC_THRESHOLDS = (20_000, 20, 20)
DOCS_ASSETS = "/docs/static"
CORS_EXPOSE_HEADERS = ["ETag", "Location", "Retry-After", "Idempotent-Replayed", "X-Request-ID"]


@dataclass
class AppState:
    settings: Settings
    pool: asyncpg.Pool
    http: httpx.AsyncClient  # outbound calls (the JWKS)
    verifier: TokenVerifier
    cursor_key: bytes = b""  # shared by every API process: kept in the database
    shutting_down: bool = False


async def _warn_if_privileged(pool: asyncpg.Pool, api_role: str) -> None:
    row = await pool.fetchrow(
        "select rolsuper, rolbypassrls from pg_roles where rolname = current_user"
    )
    if row and (row["rolsuper"] or row["rolbypassrls"]):
        log.warning(
            "DATABASE_URL logs in as a role that %s: Row Level Security does not protect "
            "tenants against a bug in this process. Log in as %s (`motomind db init` creates it).",
            "is a superuser" if row["rolsuper"] else "bypasses RLS",
            api_role,
        )


async def _cursor_key(pool: asyncpg.Pool | asyncpg.Connection) -> bytes:
    try:
        return bytes(await pool.fetchval("select public.cursor_signing_key()"))
    except (asyncpg.UndefinedFunctionError, asyncpg.InsufficientPrivilegeError):
        # No schema yet, or one from before this login role existed: /readyz says so (and picks
        # the key up once `db init` has run); nothing can be listed before anyway.
        return b""


def create_app(
    settings: Settings | None = None,
    *,
    database_url: str | None = None,
    http_transport: httpx.AsyncBaseTransport | None = None,
) -> FastAPI:
    """The app; `http_transport` replaces the network for outbound calls (tests)."""
    settings = settings or get_settings()
    settings.check_secrets()
    dsn = database_url or settings.database_url
    if not dsn:
        raise RuntimeError("DATABASE_URL is not set (motomind serve starts an embedded server)")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        http = httpx.AsyncClient(transport=http_transport, follow_redirects=False)
        try:
            pool = await create_pool(dsn, settings)
        except BaseException:
            await http.aclose()
            raise
        await _warn_if_privileged(pool, settings.motomind_api_role)
        forget_dead_workers()
        cursor_key = await _cursor_key(pool)
        state = AppState(
            settings=settings,
            pool=pool,
            http=http,
            verifier=TokenVerifier(settings, http),
            cursor_key=cursor_key,
        )
        app.state.motomind = state
        # What start-up built lives as long as the process: out of every later collection's scan.
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        scheduler = (
            asyncio.create_task(maintenance.scheduler(pool, settings), name="maintenance")
            if settings.maintenance_scheduler
            else None
        )
        try:
            yield {"motomind": state}
        finally:
            state.shutting_down = True
            if scheduler is not None:
                scheduler.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await scheduler
            try:
                await pool.close()
            finally:
                await http.aclose()
                if worker_metrics_dir() is not None:  # this worker's gauges end with it
                    multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]

    # /docs and /redoc load Swagger UI and ReDoc from the app (DOCS_ASSETS), not from a CDN: they
    # work offline, behind a firewall, and a browser fetches nothing from a third party.
    app = FastAPIOffline(
        static_url=DOCS_ASSETS,
        title="MotoMind API",
        version="1.0.0",
        summary="The timeline of every fuel-up, service, reading, document and inspection.",
        openapi_tags=OPENAPI_TAGS,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    document_problems(app)
    # Each add_middleware wraps the previous ones: the edge (added last) is the outermost, so
    # every response (CORS preflights, 413s and errors included) carries X-Request-ID. The edge's
    # own answers get the CORS headers from the same options.
    cors = cors_options(settings)
    if cors is not None:
        app.add_middleware(CORSMiddleware, **cors)
    app.add_middleware(EdgeMiddleware, cors=cors)
    app.add_route("/metrics", metrics_endpoint, include_in_schema=False)
    register(app)  # flat: see app/routers.py

    @app.get("/healthz", tags=["health"], summary="Liveness")
    async def healthz() -> dict[str, str]:
        """Always 200 while the process runs. Never touches the database."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], summary="Readiness", responses={503: {}})
    async def readyz(request: Request) -> JSONResponse:
        """200 when the database answers and has exactly this build's migrations applied (503 when
        it is behind, e.g. before `db init`, or ahead: installed by a newer release)."""
        state: AppState = request.app.state.motomind
        if state.shutting_down:
            return _not_ready("shutting down")
        try:
            async with state.pool.acquire(timeout=2) as conn:
                version = await migrate.installed_version(cast(asyncpg.Connection, conn))
                if version is not None and not state.cursor_key:
                    # Started before `db init`: pick the key up now, once.
                    state.cursor_key = await _cursor_key(cast(asyncpg.Connection, conn))
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return _not_ready("database unreachable")
        expected = migrate.SCHEMA_VERSION
        if version is None:
            return _not_ready(f"no schema installed; expected {expected} migrations (db init)")
        if version < expected:
            return _not_ready(f"schema behind: {version} of {expected} migrations applied")
        if version > expected:
            return _not_ready(
                f"schema ahead: {version} migrations applied, this build knows {expected}"
            )
        return JSONResponse({"status": "ready", "schema_version": version, "expected": expected})

    return app


def cors_options(settings: Settings) -> dict[str, Any] | None:
    """CORSMiddleware's options for CORS_ALLOW_ORIGINS, or None when no origin is allowed."""
    if not settings.cors_origins:
        return None
    return {
        "allow_origins": settings.cors_origins,
        "allow_credentials": "*" not in settings.cors_origins,
        "allow_methods": ["GET", "POST", "PATCH", "DELETE", "OPTIONS"],
        "allow_headers": CORS_ALLOW_HEADERS,
        "expose_headers": CORS_EXPOSE_HEADERS,
    }


def _not_ready(reason: str) -> JSONResponse:
    return JSONResponse(
        {"status": "unavailable", "detail": reason},
        status_code=503,
        headers={"Retry-After": "5"},
    )
