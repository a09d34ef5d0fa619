"""/v1/ops: for operators holding a `service_role` token; tenant tokens get 403."""

from datetime import timedelta
from typing import Any

from fastapi import APIRouter
from fastapi.encoders import jsonable_encoder

from app.db import ServiceConn
from app.errors import problem_responses
from app.ops import queries

router = APIRouter(prefix="/v1/ops", tags=["ops"])
ERRORS = problem_responses(401, 403, 503)


def _json(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Intervals become seconds: easier to alert on than ISO 8601 durations.
    encoded: list[dict[str, Any]] = jsonable_encoder(
        rows, custom_encoder={timedelta: lambda d: d.total_seconds()}
    )
    return encoded


@router.get("/health", summary="Database health", responses=ERRORS)
async def health(conn: ServiceConn) -> list[dict[str, Any]]:
    """Per table: size, estimated rows, dead rows, last vacuum and analyze (`db_health_stats`)."""
    return _json(await queries.rows(conn, queries.HEALTH))


@router.get("/partitions", summary="Timeline partitions", responses=ERRORS)
async def partitions(conn: ServiceConn) -> list[dict[str, Any]]:
    """Every yearly partition of the timeline, and whether this year and the next two exist."""
    return _json(await queries.rows(conn, queries.PARTITIONS))


@router.get("/freshness", summary="Feed freshness", responses=ERRORS)
async def freshness(conn: ServiceConn) -> list[dict[str, Any]]:
    """When the dashboard feed was last refreshed, how long it took, and the last error if any."""
    return _json(await queries.rows(conn, queries.FRESHNESS))


@router.post("/maintenance", summary="Run maintenance now", responses=ERRORS)
async def maintenance(conn: ServiceConn) -> Any:
    """Create missing partitions (this year and two ahead) and refresh the feed, now.

    Each job's outcome is returned and recorded (see `/v1/ops/freshness`).
    """
    return await queries.run_maintenance(conn)
