"""/v1/ops: for operators holding a `service_role` token; tenant tokens get 403."""

from datetime import timedelta
from typing import Any

from fastapi import APIRouter
from fastapi.encoders import jsonable_encoder

from app.core.db import ServiceConn
from app.core.errors import ProblemError
from app.ops import queries
from app.web.problem_docs import problem_responses

router = APIRouter(prefix="/v1/ops", tags=["ops"])
ERRORS = problem_responses(
    401,
    403,
    503,
    examples=[
        ProblemError(
            403, "forbidden", "Forbidden", "This route needs a token with role service_role."
        )
    ],
)


def _example(value: Any) -> dict[int | str, dict[str, Any]]:
    return {200: {"content": {"application/json": {"example": value}}}, **ERRORS}


HEALTH_EXAMPLE = [
    {
        "table_name": "vehicle_events",
        "total_bytes": 48234496,
        "row_estimate": 120000,
        "dead_rows": 12,
        "last_autovacuum": "2026-11-25T09:12:00Z",
        "last_autoanalyze": "2026-11-25T09:12:01Z",
    }
]
PARTITIONS_EXAMPLE = [
    {
        "year": 2026,
        "partition_name": "vehicle_events_2026",
        "range_start": "2026-01-01",
        "range_end": "2027-01-01",
        "row_estimate": 120000,
        "required": True,
        "covered": True,
    }
]
FRESHNESS_EXAMPLE = [
    {
        "view_name": "private.timeline_feed",
        "is_populated": True,
        "last_refreshed_at": "2026-11-25T10:05:00Z",
        "age": 42.0,
        "last_duration_ms": 180,
        "last_rows": 3120,
        "last_run_at": "2026-11-25T10:05:00Z",
        "last_run_ok": True,
        "last_error": None,
        "last_error_at": None,
    }
]
MAINTENANCE_EXAMPLE = [
    {
        "job": "create_next_year_partition",
        "ok": True,
        "created": 0,
        "duration_ms": 3,
        "error": None,
    },
    {"job": "refresh_timeline", "ok": True, "rows": 3120, "duration_ms": 180, "error": None},
]


def _json(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Intervals become seconds: easier to alert on than ISO 8601 durations.
    encoded: list[dict[str, Any]] = jsonable_encoder(
        rows, custom_encoder={timedelta: lambda d: d.total_seconds()}
    )
    return encoded


@router.get("/health", summary="Database health", responses=_example(HEALTH_EXAMPLE))
async def health(conn: ServiceConn) -> list[dict[str, Any]]:
    """Per table: size, estimated rows, dead rows, last vacuum and analyze (`db_health_stats`)."""
    return _json(await queries.rows(conn, queries.HEALTH))


@router.get("/partitions", summary="Timeline partitions", responses=_example(PARTITIONS_EXAMPLE))
async def partitions(conn: ServiceConn) -> list[dict[str, Any]]:
    """Every yearly partition of the timeline, and whether this year and the next two exist."""
    return _json(await queries.rows(conn, queries.PARTITIONS))


@router.get("/freshness", summary="Feed freshness", responses=_example(FRESHNESS_EXAMPLE))
async def freshness(conn: ServiceConn) -> list[dict[str, Any]]:
    """When the dashboard feed was last refreshed, how long it took, and the last error if any."""
    return _json(await queries.rows(conn, queries.FRESHNESS))


@router.post("/maintenance", summary="Run maintenance now", responses=_example(MAINTENANCE_EXAMPLE))
async def maintenance(conn: ServiceConn) -> Any:
    """Create missing partitions (this year and two ahead) and refresh the feed, now.

    Each job's outcome is returned and recorded (see `/v1/ops/freshness`).
    """
    return await queries.run_maintenance(conn)
