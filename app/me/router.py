"""GET/PATCH /v1/me and /v1/tenant: the caller's own profile and tenant."""

from typing import Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Response

from app.core.auth import CurrentUser
from app.core.db import TenantConn
from app.core.errors import not_found
from app.me import queries
from app.me.schemas import MeOut, MePatch, TenantFull, TenantOut, TenantPatch
from app.web.crud import set_etag
from app.web.etag import IfMatch, check_if_match, etag_of
from app.web.problem_docs import problem_responses

router = APIRouter(prefix="/v1", tags=["me"])

ERRORS = problem_responses(401, 403, 503)
WRITE_ERRORS = problem_responses(401, 403, 422, 503)


def _me(row: asyncpg.Record | None, response: Response) -> MeOut:
    if row is None:
        raise not_found("No profile for this user.")
    set_etag(response, row)
    data: dict[str, Any] = {
        "id": row["id"],
        "email": row["email"],
        "name": row["name"],
        "created_at": row["created_at"],
        "tenant": TenantOut(id=row["tenant_id"], name=row["tenant_name"]),
    }
    return MeOut(**data)


async def _tenant_id(conn: asyncpg.Connection) -> UUID:
    # The tenant the transaction runs as (claim, app_metadata or profile), resolved by the
    # dependency and visible to the database: the one RLS enforces.
    value = await queries.current_tenant(conn)
    if value is None:  # pragma: no cover - the dependency already refused this
        raise not_found()
    return value


@router.get("/me", summary="Your profile", response_model=MeOut, responses=ERRORS)
async def get_me(user: CurrentUser, conn: TenantConn, response: Response) -> MeOut:
    """Your profile (from the token's `sub`) and the tenant it belongs to, with its `ETag`."""
    return _me(await queries.get_me(conn, user_id=user.user_id), response)


@router.patch(
    "/me",
    summary="Rename yourself",
    response_model=MeOut,
    responses={**WRITE_ERRORS, **problem_responses(404, 412)},
)
async def patch_me(
    body: MePatch, user: CurrentUser, conn: TenantConn, response: Response, if_match: IfMatch = None
) -> MeOut:
    """Change your display `name` (1-200 characters, trimmed; `null` clears it).

    Any other field, including server-owned ones such as `id`, `email` or `tenant_id`, is a 422.
    An empty body changes nothing. With `If-Match`, refused (412) if the profile changed.
    """
    current = await queries.get_me(conn, user_id=user.user_id)
    if current is not None:
        check_if_match(if_match, etag_of(current["id"], current["updated_at"]))
    if "name" not in body.model_fields_set:
        return _me(current, response)
    return _me(await queries.update_me_name(conn, user_id=user.user_id, name=body.name), response)


@router.get("/tenant", summary="Your tenant", response_model=TenantFull, responses=ERRORS)
async def get_tenant(conn: TenantConn, response: Response) -> TenantFull:
    """The tenant the caller belongs to (a household or a fleet), with its `ETag`."""
    row = await queries.get_tenant(conn, tenant_id=await _tenant_id(conn))
    if row is None:
        raise not_found()
    set_etag(response, row)
    return TenantFull(**dict(row))


@router.patch(
    "/tenant",
    summary="Rename your tenant",
    response_model=TenantFull,
    responses={**WRITE_ERRORS, **problem_responses(404, 412)},
)
async def patch_tenant(
    body: TenantPatch, conn: TenantConn, response: Response, if_match: IfMatch = None
) -> TenantFull:
    """Change the tenant's `name` (1-200 characters, trimmed). Any other field is a 422.

    With `If-Match`, refused (412) if the tenant changed since you read it.
    """
    tenant_id = await _tenant_id(conn)
    current = await queries.get_tenant(conn, tenant_id=tenant_id)
    if current is None:
        raise not_found()
    check_if_match(if_match, etag_of(current["id"], current["updated_at"]))
    row = await queries.update_tenant_name(conn, tenant_id=tenant_id, name=body.name)
    if row is None:
        raise not_found()
    set_etag(response, row)
    return TenantFull(**dict(row))
