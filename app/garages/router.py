"""/v1/garages: named groups of vehicles."""

from uuid import UUID

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from app.core.auth import CurrentUser
from app.core.db import TenantConn
from app.garages import queries
from app.garages.schemas import Garage, GarageCreate, GarageUpdate
from app.web.crud import (
    Table,
    created,
    cursor_key,
    idempotent_create,
    newest_first_page,
    newest_first_position,
    patch_row,
    read_one,
    soft_delete,
    with_etag,
)
from app.web.etag import IfMatch
from app.web.idempotency import IdempotencyKey
from app.web.paging import Cursor, Limit, Page
from app.web.problem_docs import problem_responses

router = APIRouter(prefix="/v1/garages", tags=["garages"])
TABLE = Table.GARAGES


@router.post(
    "",
    status_code=201,
    response_model=Garage,
    summary="Create a garage",
    responses=problem_responses(401, 403, 409, 413, 422, 503),
)
async def create_garage(
    body: GarageCreate,
    request: Request,
    user: CurrentUser,
    conn: TenantConn,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Create a garage in your tenant. Answers 201 with `Location` and `ETag`.

    Send an `Idempotency-Key` so that a retry after a timeout cannot create a second garage.
    """

    async def create() -> JSONResponse:
        row = await queries.insert_garage(conn, name=body.name, description=body.description)
        return created(Garage, row, f"/v1/garages/{row['id']}")

    return await idempotent_create(
        request, conn, user_id=user.user_id, key=idempotency_key, body=body, create=create
    )


@router.get(
    "",
    response_model=Page[Garage],
    summary="List garages",
    responses=problem_responses(401, 403, 422, 503),
)
async def list_garages(
    request: Request, conn: TenantConn, limit: Limit = 50, cursor: Cursor = None
) -> Page[Garage]:
    """Your garages, newest first, `limit` per page; follow `next_cursor` for more."""
    scope = {"list": "garages"}
    key = cursor_key(request)
    after = newest_first_position(cursor, key, scope)
    rows = await queries.list_garages(conn, after=after, limit=limit + 1)
    return newest_first_page(rows, Garage, limit, key, scope)


@router.get(
    "/{garage_id}",
    response_model=Garage,
    summary="Get a garage",
    responses=problem_responses(401, 403, 404, 422, 503),
)
async def get_garage(garage_id: UUID, response: Response, conn: TenantConn) -> Garage:
    """One garage, with its `ETag` for a later conditional PATCH."""
    return await read_one(conn, TABLE, garage_id, response, Garage)


@router.patch(
    "/{garage_id}",
    response_model=Garage,
    summary="Update a garage",
    responses=problem_responses(401, 403, 404, 412, 413, 422, 503),
)
async def patch_garage(
    garage_id: UUID,
    body: GarageUpdate,
    response: Response,
    conn: TenantConn,
    if_match: IfMatch = None,
) -> Garage:
    """Change `name` and/or `description`. With `If-Match`, refused (412) if the garage changed."""
    row = await patch_row(conn, TABLE, garage_id, body.changes(), if_match)
    return with_etag(response, row, Garage)


@router.delete(
    "/{garage_id}",
    status_code=204,
    summary="Delete a garage",
    responses=problem_responses(401, 403, 404, 412, 503),
)
async def delete_garage(garage_id: UUID, conn: TenantConn, if_match: IfMatch = None) -> Response:
    """Soft-delete the garage. Its vehicles stay, with `garage_id` null."""
    await soft_delete(conn, TABLE, garage_id, if_match)
    return Response(status_code=204)
