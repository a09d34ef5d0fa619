"""/v1/images: photos of your vehicles, registered by their storage URL."""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from app.core.auth import CurrentUser
from app.core.db import TenantConn
from app.images import queries
from app.images.schemas import Image, ImageCreate, ImageUpdate
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

router = APIRouter(prefix="/v1/images", tags=["images"])
TABLE = Table.VEHICLE_IMAGES


@router.post(
    "",
    status_code=201,
    response_model=Image,
    summary="Register an image",
    responses=problem_responses(401, 403, 409, 413, 422, 503),
)
async def create_image(
    body: ImageCreate,
    request: Request,
    user: CurrentUser,
    conn: TenantConn,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Register an image you have uploaded to storage. Answers 201 with `Location` and `ETag`.

    `storage_url` (and the optional `thumbnail_url`) is a relative path in your storage bucket
    or an `http(s)://` URL; other schemes (`javascript:`, `data:`, `file:`) are a 422.
    `vehicle_id` must be one of your vehicles (422 `vehicle_not_found` otherwise).

    Send an `Idempotency-Key` so that a retry after a timeout cannot register it twice.
    """

    async def create() -> JSONResponse:
        row = await queries.insert_image(
            conn,
            vehicle_id=body.vehicle_id,
            storage_url=body.storage_url,
            thumbnail_url=body.thumbnail_url,
            caption=body.caption,
        )
        return created(Image, dict(row), f"/v1/images/{row['id']}")

    return await idempotent_create(
        request, conn, user_id=user.user_id, key=idempotency_key, body=body, create=create
    )


@router.get(
    "",
    response_model=Page[Image],
    summary="List images",
    responses=problem_responses(401, 403, 422, 503),
)
async def list_images(
    request: Request,
    conn: TenantConn,
    vehicle_id: Annotated[UUID | None, Query(description="Only this vehicle's images.")] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Page[Image]:
    """Your images, newest first, `limit` per page; follow `next_cursor` for more.

    A cursor is only valid with the same filter it was issued with.
    """
    scope = {"list": "images", "vehicle_id": vehicle_id}
    key = cursor_key(request)
    after = newest_first_position(cursor, key, scope)
    rows = await queries.list_images(conn, vehicle_id=vehicle_id, after=after, limit=limit + 1)
    return newest_first_page(rows, Image, limit, key, scope)


@router.get(
    "/{image_id}",
    response_model=Image,
    summary="Get an image",
    responses=problem_responses(401, 403, 404, 422, 503),
)
async def get_image(image_id: UUID, response: Response, conn: TenantConn) -> Image:
    """One image, with its `ETag` for a later conditional PATCH or DELETE."""
    return await read_one(conn, TABLE, image_id, response, Image)


@router.patch(
    "/{image_id}",
    response_model=Image,
    summary="Change an image's caption",
    responses=problem_responses(401, 403, 404, 412, 413, 422, 503),
)
async def patch_image(
    image_id: UUID,
    body: ImageUpdate,
    response: Response,
    conn: TenantConn,
    if_match: IfMatch = None,
) -> Image:
    """Set or clear (`null`) the caption; nothing else of an image changes. With `If-Match`,
    412 if it changed since you read it."""
    row = await patch_row(conn, TABLE, image_id, body.changes(), if_match)
    return with_etag(response, row, Image)


@router.delete(
    "/{image_id}",
    status_code=204,
    summary="Delete an image",
    responses=problem_responses(401, 403, 404, 412, 422, 503),
)
async def delete_image(image_id: UUID, conn: TenantConn, if_match: IfMatch = None) -> Response:
    """Soft-delete the image record (the file in storage is yours to remove)."""
    await soft_delete(conn, TABLE, image_id, if_match)
    return Response(status_code=204)
