"""/v1/vehicles: the vehicles of your tenant."""

import json
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from app.core.auth import CurrentUser
from app.core.db import TenantConn
from app.core.errors import ProblemError, not_found
from app.timeline.queries import record_reading
from app.vehicles import queries
from app.vehicles.schemas import (
    IDENTITY_ERROR,
    IDENTITY_FIELDS,
    IDENTITY_MESSAGE,
    Vehicle,
    VehicleCreate,
    VehicleUpdate,
    unidentified,
)
from app.web.crud import (
    Table,
    apply_changes,
    created,
    cursor_key,
    idempotent_create,
    locked_for_change,
    newest_first_position,
    soft_delete,
    with_etag,
)
from app.web.etag import IfMatch, etag_of
from app.web.idempotency import IdempotencyKey
from app.web.paging import Cursor, Limit, Page, page_of
from app.web.problem_docs import DEFAULT_EXAMPLES, db_example, problem_responses

router = APIRouter(prefix="/v1/vehicles", tags=["vehicles"])
TABLE = Table.VEHICLES


# The odometer rule (sql/400_triggers.sql), whoever writes: the same answer as the timeline's.
ODOMETER_ROLLBACK = db_example(
    "MM001", detail="conflicts with the reading of 52000 miles on 2026-05-01"
)
DUPLICATES = [
    db_example("23505", code="duplicate_vin", detail="A resource with this vin already exists."),
    db_example(
        "23505", code="duplicate_plate", detail="A resource with this plate already exists."
    ),
]
BAD_GARAGE = db_example("23503", field="garage_id")


@router.post(
    "",
    status_code=201,
    response_model=Vehicle,
    summary="Create a vehicle",
    responses=problem_responses(
        401, 403, 409, 413, 422, 503, examples=[*DUPLICATES, *DEFAULT_EXAMPLES[422], BAD_GARAGE]
    ),
)
async def create_vehicle(
    body: VehicleCreate,
    request: Request,
    user: CurrentUser,
    conn: TenantConn,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Add a vehicle to your tenant. Answers 201 with `Location` and `ETag`.

    - Give at least one of `make`, `model`, `nickname`, `vin`, `license_plate`, so that the
      vehicle can be told apart (422, error type `missing_identity`, otherwise).
    - `vin` is upper-cased; a VIN or `license_plate` already used by one of your live vehicles
      is a 409 `duplicate_vin` / `duplicate_plate` (other tenants' vehicles never conflict).
    - `garage_id` must be one of your garages: anything else is a 422 `garage_not_found`.
    - `timezone` defaults to `America/New_York`; `current_mileage` starts empty and follows the
      odometer readings you append to the timeline.

    Send an `Idempotency-Key` so that a retry after a timeout cannot create a second vehicle.
    """

    async def create() -> JSONResponse:
        row = await queries.insert_vehicle(conn, values=body.model_dump())
        return created(Vehicle, dict(row), f"/v1/vehicles/{row['id']}")

    return await idempotent_create(
        request, conn, user_id=user.user_id, key=idempotency_key, body=body, create=create
    )


@router.get(
    "",
    response_model=Page[Vehicle],
    summary="List vehicles",
    responses=problem_responses(401, 403, 422, 503),
)
async def list_vehicles(
    request: Request,
    conn: TenantConn,
    garage_id: Annotated[
        UUID | None, Query(description="Only the vehicles in this garage.")
    ] = None,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=100,
            description="Case-insensitive text contained in make, model, nickname, VIN or plate.",
        ),
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Response:
    """Your vehicles, newest first, `limit` per page; follow `next_cursor` for more.

    A cursor is only valid with the same filters it was issued with.
    """
    scope = {"list": "vehicles", "garage_id": garage_id, "q": q}
    key = cursor_key(request)
    after = newest_first_position(cursor, key, scope)
    rows = await queries.list_vehicles(conn, garage_id=garage_id, q=q, after=after, limit=limit + 1)
    items, next_cursor = page_of(
        rows, limit, key, scope, lambda r: [r["created_at"].isoformat(), str(r["id"])]
    )
    # The vehicles' JSON, written by PostgreSQL (queries.VEHICLE_DOC): passed through.
    docs = ",".join(r["doc"] for r in items)
    body = f'{{"items":[{docs}],"next_cursor":{json.dumps(next_cursor)}}}'
    return Response(body, media_type="application/json")


@router.get(
    "/{vehicle_id}",
    response_model=Vehicle,
    summary="Get a vehicle",
    responses=problem_responses(401, 403, 404, 422, 503),
)
async def get_vehicle(vehicle_id: UUID, conn: TenantConn) -> Response:
    """One vehicle, with its `ETag` for a later conditional PATCH or DELETE."""
    row = await queries.get_vehicle(conn, vehicle_id=vehicle_id)
    if row is None:
        raise not_found()
    # The vehicle's JSON, written by PostgreSQL (queries.VEHICLE_DOC): passed through.
    response = Response(row["doc"], media_type="application/json")
    response.headers["ETag"] = etag_of(row["id"], row["updated_at"])
    return response


@router.patch(
    "/{vehicle_id}",
    response_model=Vehicle,
    summary="Update a vehicle",
    responses=problem_responses(
        401,
        403,
        404,
        409,
        412,
        413,
        422,
        503,
        examples=[*DUPLICATES, ODOMETER_ROLLBACK, *DEFAULT_EXAMPLES[422], BAD_GARAGE],
    ),
)
async def patch_vehicle(
    vehicle_id: UUID,
    body: VehicleUpdate,
    response: Response,
    conn: TenantConn,
    if_match: IfMatch = None,
) -> Vehicle:
    """Change the fields you send; `null` clears one. With `If-Match`, 412 if it changed.

    A vehicle keeps at least one of `make`, `model`, `nickname`, `vin`, `license_plate`: clearing
    the last one is a 422 (error type `missing_identity`).

    `current_mileage` is derived from the timeline: raising it records an `odometer` reading
    dated today (vehicle's timezone) on the timeline; a value below a reading on the timeline is a
    409 `odometer_rollback` naming that reading, as on the timeline (correct a wrong reading there
    instead).
    Duplicate VIN or plate → 409; a `garage_id` that is not one of your garages → 422.
    """
    changes = body.changes()
    current = await locked_for_change(conn, TABLE, vehicle_id, if_match)
    if set(changes) & set(IDENTITY_FIELDS) and unidentified({**dict(current), **changes}):
        raise ProblemError(
            422,
            "validation_failed",
            "Validation failed",
            "A vehicle keeps at least one identifying field; see `errors`.",
            errors=[{"loc": ["body"], "msg": IDENTITY_MESSAGE, "type": IDENTITY_ERROR}],
        )
    # The database owns the odometer rule: a lower value than a reading is refused by the update
    # (MM001, 409 odometer_rollback), a higher one is recorded as a reading, which the rule checks
    # against later readings.
    mileage: int | None = changes.get("current_mileage")  # never null (VehicleUpdate.not_null)
    if mileage is not None and mileage == current["current_mileage"]:
        del changes["current_mileage"]
        mileage = None
    row = await apply_changes(conn, TABLE, vehicle_id, changes)
    if mileage is not None:
        await record_reading(conn, vehicle_id=vehicle_id, miles=mileage)
    return with_etag(response, row, Vehicle)


@router.delete(
    "/{vehicle_id}",
    status_code=204,
    summary="Delete a vehicle",
    responses=problem_responses(401, 403, 404, 412, 422, 503),
)
async def delete_vehicle(vehicle_id: UUID, conn: TenantConn, if_match: IfMatch = None) -> Response:
    """Soft-delete the vehicle, and with it its reminders and images. Its VIN and plate are
    free again for a new vehicle. The timeline keeps its events."""
    await soft_delete(conn, TABLE, vehicle_id, if_match)
    return Response(status_code=204)
