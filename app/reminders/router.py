"""/v1/reminders: things to do by a date and/or a mileage, each with a computed `due_state`."""

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import StringConstraints

from app.core.auth import CurrentUser
from app.core.db import TenantConn
from app.core.errors import ProblemError, not_found
from app.reminders import queries
from app.reminders.due import DueState
from app.reminders.due import due_state as compute_due_state
from app.reminders.schemas import Reminder, ReminderCreate, ReminderUpdate, Status
from app.web.crud import (
    Table,
    apply_changes,
    created,
    cursor_key,
    idempotent_create,
    locked_for_change,
    newest_first_position,
    set_etag,
    soft_delete,
)
from app.web.etag import IfMatch
from app.web.idempotency import IdempotencyKey
from app.web.models import IsoDate
from app.web.paging import Cursor, Limit, Page, page_of
from app.web.problem_docs import db_example, problem_responses

router = APIRouter(prefix="/v1/reminders", tags=["reminders"])

_STATE = "|".join(state.value for state in DueState)
# One or more due states, comma-separated: each is checked here, so an unknown one is a 422.
DueStates = Annotated[str, StringConstraints(pattern=f"^({_STATE})(,({_STATE}))*$")]
TABLE = Table.REMINDERS


def _out(row: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The response fields of a reminder row joined with its vehicle."""
    state = compute_due_state(
        row,
        current_mileage=row["vehicle_current_mileage"],
        timezone=row["vehicle_timezone"],
        now=now,
    )
    return {**row, "due_state": state}


async def _read(conn: asyncpg.Connection, reminder_id: UUID) -> dict[str, Any]:
    row = await queries.get_reminder(conn, reminder_id=reminder_id)
    if row is None:
        raise not_found()
    return _out(dict(row), datetime.now(UTC))


def _needs_due_point() -> ProblemError:
    msg = "give due_date, due_mileage, or both"
    return ProblemError(
        422,
        "validation_failed",
        "Validation failed",
        "A reminder needs due_date or due_mileage; see `errors`.",
        errors=[
            {"loc": ["body", "due_date"], "msg": msg, "type": "missing_due"},
            {"loc": ["body", "due_mileage"], "msg": msg, "type": "missing_due"},
        ],
    )


@router.post(
    "",
    status_code=201,
    response_model=Reminder,
    summary="Create a reminder",
    responses=problem_responses(401, 403, 409, 413, 422, 503),
)
async def create_reminder(
    body: ReminderCreate,
    request: Request,
    user: CurrentUser,
    conn: TenantConn,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Create an `active` reminder. Answers 201 with `Location` and `ETag`.

    Give `due_date`, `due_mileage`, or both (whichever comes first makes it due). Attach it to
    one of your vehicles (`vehicle_id`), garages (`garage_id`), or neither; an id that is not
    yours is a 422 `vehicle_not_found` / `garage_not_found`. `soon_days` / `soon_miles` set how
    early this reminder turns `due_soon` (defaults 30 days, 500 miles).

    Send an `Idempotency-Key` so that a retry after a timeout cannot create a second reminder.
    """

    async def create() -> JSONResponse:
        reminder_id = await queries.insert_reminder(conn, values=body.model_dump())
        row = await _read(conn, reminder_id)
        return created(Reminder, row, f"/v1/reminders/{reminder_id}")

    return await idempotent_create(
        request, conn, user_id=user.user_id, key=idempotency_key, body=body, create=create
    )


@router.get(
    "",
    response_model=Page[Reminder],
    summary="List reminders",
    responses=problem_responses(401, 403, 422, 503),
)
async def list_reminders(
    request: Request,
    conn: TenantConn,
    vehicle_id: Annotated[UUID | None, Query(description="Only this vehicle's reminders.")] = None,
    garage_id: Annotated[
        UUID | None,
        Query(description="Only this garage's reminders and those of the vehicles in it."),
    ] = None,
    status: Annotated[Status | None, Query(description="Only reminders in this status.")] = None,
    due_before: Annotated[
        IsoDate | None,
        Query(description="Only reminders with a `due_date` on or before this date."),
    ] = None,
    due_state: Annotated[
        list[DueStates] | None,
        Query(
            description="Only reminders in these due states: `overdue`, `due_soon`, "
            "`upcoming`, `completed`, `dismissed`; comma-separated and/or repeated "
            "(`due_state=overdue,due_soon` is `due_state=overdue&due_state=due_soon`).",
        ),
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[Reminder]:
    """Your reminders, newest first, `limit` per page; follow `next_cursor` for more.

    Each carries `due_state`, computed at the time of the request; `due_state=` filters on it
    (e.g. `?due_state=overdue,due_soon` for what needs attention). A cursor is only valid with
    the same filters it was issued with.
    """
    due_states = sorted({s for value in due_state for s in value.split(",")}) if due_state else None
    scope: dict[str, Any] = {
        "list": "reminders",
        "vehicle_id": vehicle_id,
        "garage_id": garage_id,
        "status": status,
        "due_before": due_before,
    }
    if due_states:  # only then: cursors issued without the filter stay valid
        scope["due_state"] = due_states
    key = cursor_key(request)
    after = newest_first_position(cursor, key, scope)
    # One instant for the filter (in SQL) and the items' due_state (in Python): they agree.
    now = datetime.now(UTC)
    rows = await queries.list_reminders(
        conn,
        vehicle_id=vehicle_id,
        garage_id=garage_id,
        status=status.value if status else None,
        due_before=due_before,
        due_states=due_states,
        now=now,
        after=after,
        limit=limit + 1,
    )
    items, next_cursor = page_of(
        rows, limit, key, scope, lambda r: [r["created_at"].isoformat(), str(r["id"])]
    )
    return Page[Reminder](
        items=[Reminder.model_validate(_out(dict(r), now)) for r in items], next_cursor=next_cursor
    )


@router.get(
    "/{reminder_id}",
    response_model=Reminder,
    summary="Get a reminder",
    responses=problem_responses(401, 403, 404, 422, 503),
)
async def get_reminder(reminder_id: UUID, response: Response, conn: TenantConn) -> Reminder:
    """One reminder with its current `due_state`, and its `ETag` for a later conditional PATCH."""
    row = await _read(conn, reminder_id)
    set_etag(response, row)
    return Reminder.model_validate(row)


@router.patch(
    "/{reminder_id}",
    response_model=Reminder,
    summary="Update a reminder",
    responses=problem_responses(
        401,
        403,
        404,
        409,
        412,
        413,
        422,
        503,
        examples=[db_example("MM007", detail="a completed reminder cannot become active")],
    ),
)
async def patch_reminder(
    reminder_id: UUID,
    body: ReminderUpdate,
    response: Response,
    conn: TenantConn,
    if_match: IfMatch = None,
) -> Reminder:
    """Change the fields you send; `null` clears an optional one. With `If-Match`, 412 if it
    changed since you read it.

    `status`: an `active` reminder becomes `completed` or `dismissed`; a `dismissed` one may be
    made `active` again; a `completed` one is final (409 `invalid_status_transition`). The
    reminder must keep a `due_date` or a `due_mileage` (422 otherwise).
    """
    changes = body.changes()
    current = await locked_for_change(conn, TABLE, reminder_id, if_match)
    if "status" in changes:  # the database refuses a change a status cannot make (MM007)
        changes["status"] = Status(changes["status"]).value
    merged = {**dict(current), **changes}
    if merged["due_date"] is None and merged["due_mileage"] is None:
        raise _needs_due_point()
    if changes:
        await apply_changes(conn, TABLE, reminder_id, changes)
    row = await _read(conn, reminder_id)
    set_etag(response, row)
    return Reminder.model_validate(row)


@router.delete(
    "/{reminder_id}",
    status_code=204,
    summary="Delete a reminder",
    responses=problem_responses(401, 403, 404, 412, 422, 503),
)
async def delete_reminder(
    reminder_id: UUID, conn: TenantConn, if_match: IfMatch = None
) -> Response:
    """Soft-delete the reminder: it disappears from lists and reads (404)."""
    await soft_delete(conn, TABLE, reminder_id, if_match)
    return Response(status_code=204)
