"""/v1/timeline: the append-only event log, and the dashboard feed."""

from datetime import date, datetime
from typing import Annotated, Any, NoReturn
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Body, Query, Request, Response

from app.core.auth import CurrentUser
from app.core.db import ListConn, TenantConn
from app.core.errors import ProblemError, not_found
from app.timeline import queries
from app.timeline.schemas import (
    Event,
    EventCreate,
    EventType,
    Feed,
    FeedItem,
)
from app.web.crud import Table, cursor_key, get_live
from app.web.idempotency import (
    IdempotencyKey,
    claim,
    legacy_request_hash,
    replay,
    request_fingerprint,
)
from app.web.models import IsoDate
from app.web.paging import (
    DEFAULT_LIMIT,
    Cursor,
    Limit,
    Page,
    decode_cursor,
    decode_error,
    encode_cursor,
)
from app.web.problem_docs import DEFAULT_EXAMPLES, db_example, problem_responses

router = APIRouter(tags=["timeline"])

TypeFilter = Annotated[
    list[EventType] | None,
    Query(
        alias="type",
        description="Only these types; repeat for several (`?type=fuel&type=odometer`).",
    ),
]
FromDate = Annotated[IsoDate | None, Query(alias="from", description="On or after this date.")]
ToDate = Annotated[IsoDate | None, Query(alias="to", description="On or before this date.")]

_READ_ERRORS = problem_responses(401, 403, 404, 422, 503)


@router.post(
    "/v1/timeline",
    status_code=201,
    response_model=Event,
    summary="Append an event",
    responses=problem_responses(
        401,
        403,
        404,
        409,
        413,
        422,
        503,
        examples=[
            not_found("The vehicle does not exist."),
            db_example("MM001", detail="conflicts with the reading of 52000 miles on 2026-05-01"),
            db_example(
                "MM006",
                detail="event 0b5b8f52-3f1e-4c1a-9a53-6f3d2f8f9c10 is already corrected by event "
                "6f3d2f8f-9c10-4c1a-9a53-0b5b8f523f1e",
            ),
            *DEFAULT_EXAMPLES[422],
            db_example(
                "MM002",
                detail="payload.volume must be a number greater than 0",
                field="payload.volume",
            ),
        ],
    ),
)
async def append_event(
    body: Annotated[EventCreate, Body()],
    request: Request,
    user: CurrentUser,
    conn: TenantConn,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Append one event to the timeline. Answers 201 with `Location`. Events are immutable: to fix
    one, append a correction (`payload.correction_of` = its id), which supersedes it.

    - `type` selects the payload schema (fuel, maintenance, odometer, document, reminder,
      inspection); unknown payload keys are refused (422).
    - `date` defaults to today in the vehicle's timezone (UTC without a vehicle); accepted from
      1900-01-01 to tomorrow, so history can be imported. Outside: 422 `validation_failed`, error
      type `date_out_of_range` at `date`.
    - Odometer: among events that are not superseded, `miles` never decreases with `date`. A reading
      that breaks this is a 409 `odometer_rollback` whose `detail` names the conflicting reading.
    - A vehicle that is not yours, or deleted, is a 404.
    - Send an `Idempotency-Key`: a retry after a timeout replays the first response instead of
      appending a second event.
    """

    # The database checks the vehicle, the date window, the payload and the odometer as it
    # inserts (queries.refusal maps what it refuses): one statement, two with a key.
    event = queries.NewEvent(
        vehicle_id=body.vehicle_id,
        day=body.date,
        type=body.type,
        miles=body.miles,
        payload=body.payload_json(),
        notes=body.notes,
    )
    once = None
    if idempotency_key is not None:
        fingerprint = await request_fingerprint(request)
        await claim(conn, key=idempotency_key, user_id=user.user_id)
        once = (user.user_id, idempotency_key, fingerprint)
    if body.date is not None and not queries.always_partitioned(body.date):
        await queries.ensure_partition(conn, day=body.date)
    row = await queries.append(conn, event=event, once=once)
    if once is not None and row["prior"] is not None:
        return replay(
            row["prior"],
            fingerprint=once[2],
            legacy=lambda: legacy_request_hash(request.method, request.url.path, body),
        )
    return Response(
        row["doc"],
        status_code=201,
        media_type="application/json",
        headers={"Location": f"/v1/timeline/{row['id']}"},
    )


def _position(cursor: str | None, key: bytes, scope: dict[str, Any]) -> queries.Position | None:
    if cursor is None:
        return None
    position = decode_cursor(key, scope, cursor)
    try:
        day, created_at, last_id = position
        return date.fromisoformat(day), datetime.fromisoformat(created_at), UUID(last_id)
    except (TypeError, ValueError):
        raise decode_error() from None


async def _page(
    request: Request,
    conn: asyncpg.Connection,
    *,
    vehicle_id: UUID | None,
    limit: int,
    cursor: str | None,
    types: list[EventType] | None = None,
    from_: date | None = None,
    to: date | None = None,
    vehicle_must_exist: bool = False,
) -> Response:
    type_list = sorted(set(types)) if types else None
    # The cursor is valid only for the list and filters that issued it.
    scope = {
        "list": "timeline",
        "vehicle_id": str(vehicle_id) if vehicle_id else None,
        "types": type_list,
        "from": from_.isoformat() if from_ else None,
        "to": to.isoformat() if to else None,
    }
    key = cursor_key(request)
    page = await queries.list_events(
        conn,
        vehicle_id=vehicle_id,
        types=list(type_list) if type_list else None,
        from_=from_,
        to=to,
        after=_position(cursor, key, scope),
        limit=limit + 1,  # the extra row only says whether there is a next page
    )
    if page["fetched"] == 0 and vehicle_must_exist and vehicle_id is not None:
        # Events are listed only while their vehicle is live (queries.LIVE_VEHICLE): an empty
        # page is the one case that must ask whether the vehicle is there (404) or just has none.
        await get_live(conn, Table.VEHICLES, vehicle_id)
    next_cursor = "null"
    if page["fetched"] > limit:
        position = [page["last_date"].isoformat(), page["last_created_at"].isoformat()]
        next_cursor = f'"{encode_cursor(key, scope, [*position, str(page["last_id"])])}"'
    # The events' JSON, written and joined by PostgreSQL (queries.list_sql): passed through.
    body = f'{{"items":[{page["docs"]}],"next_cursor":{next_cursor}}}'
    return Response(body, media_type="application/json")


@router.get(
    "/v1/vehicles/{vehicle_id}/timeline",
    response_model=Page[Event],
    summary="A vehicle's events",
    tags=["vehicles"],
    responses=_READ_ERRORS,
)
async def vehicle_timeline(
    vehicle_id: UUID,
    request: Request,
    conn: ListConn,
    types: TypeFilter = None,
    from_: FromDate = None,
    to: ToDate = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Response:
    """The vehicle's events, newest first, with the same filters and paging as
    `GET /v1/timeline`. 404 if the vehicle is not yours or deleted."""
    return await _page(
        request,
        conn,
        vehicle_id=vehicle_id,
        types=types,
        from_=from_,
        to=to,
        limit=limit,
        cursor=cursor,
        vehicle_must_exist=True,
    )


@router.get(
    "/v1/timeline",
    response_model=Page[Event],
    summary="List events",
    responses=_READ_ERRORS,
)
async def list_events(
    request: Request,
    conn: ListConn,
    vehicle_id: Annotated[UUID | None, Query(description="Only this vehicle's events.")] = None,
    types: TypeFilter = None,
    from_: FromDate = None,
    to: ToDate = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Response:
    """Your tenant's events, newest first (by `date`, then when they were recorded).

    Follow `next_cursor` for more: paging is by position, so events appended meanwhile never
    make a page repeat or skip an event.
    """
    return await _page(
        request,
        conn,
        vehicle_id=vehicle_id,
        types=types,
        from_=from_,
        to=to,
        limit=limit,
        cursor=cursor,
    )


@router.get(
    "/v1/timeline/feed",
    response_model=Feed,
    summary="The dashboard feed",
    responses=problem_responses(401, 403, 503),
)
async def get_feed(conn: TenantConn) -> Feed:
    """Per vehicle: the last event's date, the highest reading, counts per type and spend, over
    events that are not superseded. Precomputed: `refreshed_at` says as of when (null if never)."""
    rows, refreshed_at = await queries.feed(conn)
    return Feed(items=[FeedItem.model_validate(dict(r)) for r in rows], refreshed_at=refreshed_at)


@router.get(
    "/v1/timeline/{event_id}",
    response_model=Event,
    summary="Get an event",
    responses=_READ_ERRORS,
)
async def get_event(event_id: UUID, conn: TenantConn) -> Response:
    """One event, with `superseded_by` if a correction replaced it."""
    doc = await queries.get_event(conn, event_id=event_id)
    if doc is None:
        raise not_found()
    return Response(doc, media_type="application/json")


async def refuse_change(event_id: str) -> NoReturn:
    """Always 405 with `Allow: GET`: events are immutable; append a correction
    (`payload.correction_of`) that supersedes the event instead."""
    raise ProblemError(
        405,
        "method_not_allowed",
        "Method not allowed",
        "Timeline events are immutable: append a correction (`payload.correction_of`) instead.",
        headers={"Allow": "GET"},
    )


# Declared (rather than left to the router's 405) so the OpenAPI document says why.
for _method in ("PUT", "PATCH", "DELETE"):
    router.add_api_route(
        "/v1/timeline/{event_id}",
        refuse_change,
        methods=[_method],
        name=f"{_method.lower()}_event",
        summary="Not allowed: events are immutable",
        responses=problem_responses(405),
        status_code=405,
        response_model=None,
    )
