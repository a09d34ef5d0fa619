"""What every mutable resource shares: get one, PATCH with If-Match, soft delete, list paging.

Table and column names here always come from this codebase (a domain's constants and its pydantic
model's field names), never from a request.
"""

import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar
from uuid import UUID

import asyncpg
from fastapi import Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.core.errors import ProblemError, not_found
from app.web.etag import check_if_match, etag_of
from app.web.idempotency import (
    legacy_request_hash,
    remember,
    replay_or_claim,
    request_fingerprint,
)
from app.web.paging import Page, decode_cursor, decode_error, page_of

M = TypeVar("M", bound=BaseModel)
Row = asyncpg.Record | Mapping[str, Any]


COLUMN = re.compile(r"[a-z][a-z0-9_]{0,62}")


class Table(StrEnum):
    """The tables the shared CRUD reads and writes: a closed set, so no string reaches its SQL."""

    GARAGES = "garages"
    VEHICLES = "vehicles"
    VEHICLE_IMAGES = "vehicle_images"
    REMINDERS = "reminders"


def cursor_key(request: Request) -> bytes:
    """The key every API process signs cursors with (loaded from the database at start-up)."""
    key: bytes = request.app.state.motomind.cursor_key
    if not key:  # the schema was installed after this process started; /readyz loads it
        raise ProblemError(
            503, "not_ready", "Not ready", "The API is starting up.", headers={"Retry-After": "1"}
        )
    return key


async def get_live(
    conn: asyncpg.Connection, table: Table, resource_id: UUID, *, lock: bool = False
) -> asyncpg.Record:
    """The row if it exists, is not deleted and RLS shows it; else 404 (another tenant's too)."""
    suffix = " for update" if lock else ""
    row = await conn.fetchrow(
        f"select * from public.{table} where id = $1 and deleted_at is null{suffix}",  # noqa: S608
        resource_id,
    )
    if row is None:
        raise not_found()
    return row


def set_etag(response: Response, row: Row) -> None:
    response.headers["ETag"] = etag_of(row["id"], row["updated_at"])


def with_etag(response: Response, row: Row, model: type[M]) -> M:
    """The response model of a single resource, its ETag set on the response."""
    set_etag(response, row)
    return model.model_validate(dict(row))


async def read_one(
    conn: asyncpg.Connection, table: Table, resource_id: UUID, response: Response, model: type[M]
) -> M:
    """GET of one live resource: the model, with its ETag; 404 for anything RLS hides."""
    return with_etag(response, await get_live(conn, table, resource_id), model)


async def locked_for_change(
    conn: asyncpg.Connection, table: Table, resource_id: UUID, if_match: str | None
) -> asyncpg.Record:
    """The live row, locked until the transaction ends, if it still matches If-Match (412)."""
    current = await get_live(conn, table, resource_id, lock=True)
    check_if_match(if_match, etag_of(current["id"], current["updated_at"]))
    return current


async def apply_changes(
    conn: asyncpg.Connection, table: Table, resource_id: UUID, changes: Mapping[str, Any]
) -> asyncpg.Record:
    """The fields the client sent, on a row this transaction has locked; the row as it is now
    (re-read when nothing changed: a trigger may have changed it meanwhile)."""
    if not changes:
        row = await conn.fetchrow(
            f"select * from public.{table} where id = $1",  # noqa: S608 - a Table member
            resource_id,
        )
    else:
        columns = list(changes)
        # Field names of a request model (extra="forbid"), never a client's string: held to that.
        if not all(COLUMN.fullmatch(column) for column in columns):
            raise ValueError(f"not a column name: {columns!r}")
        assignments = ", ".join(f"{col} = ${i}" for i, col in enumerate(columns, start=2))
        row = await conn.fetchrow(
            f"update public.{table} set {assignments} where id = $1 returning *",  # noqa: S608
            resource_id,
            *changes.values(),
        )
    assert row is not None  # locked by this transaction: still there
    return row


async def patch_row(
    conn: asyncpg.Connection,
    table: Table,
    resource_id: UUID,
    changes: Mapping[str, Any],
    if_match: str | None,
) -> asyncpg.Record:
    """Apply the fields the client sent, if the row still matches If-Match."""
    current = await locked_for_change(conn, table, resource_id, if_match)
    if not changes:
        return current
    return await apply_changes(conn, table, resource_id, changes)


async def soft_delete(
    conn: asyncpg.Connection, table: Table, resource_id: UUID, if_match: str | None
) -> None:
    await locked_for_change(conn, table, resource_id, if_match)
    await conn.execute(
        f"update public.{table} set deleted_at = now() where id = $1",  # noqa: S608
        resource_id,
    )


def created(model: type[BaseModel], row: Row, location: str) -> JSONResponse:
    """201 with Location and ETag: what every create answers."""
    body = model.model_validate(dict(row)).model_dump(mode="json")
    return JSONResponse(
        body,
        status_code=201,
        headers={"Location": location, "ETag": etag_of(row["id"], row["updated_at"])},
    )


async def idempotent_create(
    request: Request,
    conn: asyncpg.Connection,
    *,
    user_id: UUID,
    key: str | None,
    body: BaseModel,
    create: Callable[[], Awaitable[JSONResponse]],
) -> JSONResponse:
    """Run `create` once per Idempotency-Key; a retry gets the first response back."""
    if key is None:
        return await create()
    fingerprint = await request_fingerprint(request)
    replay = await replay_or_claim(
        conn,
        key=key,
        user_id=user_id,
        fingerprint=fingerprint,
        legacy=lambda: legacy_request_hash(request.method, request.url.path, body),
    )
    if replay is not None:
        return replay
    response = await create()
    return await remember(
        conn, key=key, user_id=user_id, fingerprint=fingerprint, response=response
    )


def newest_first_position(
    cursor: str | None, key: bytes, scope: dict[str, Any]
) -> tuple[datetime, UUID] | None:
    """Decode a (created_at, id) keyset cursor of a newest-first list."""
    if cursor is None:
        return None
    position = decode_cursor(key, scope, cursor)
    try:
        created_at, last_id = position
        return datetime.fromisoformat(created_at), UUID(last_id)
    except (TypeError, ValueError):
        raise decode_error() from None


def newest_first_page(
    rows: list[asyncpg.Record], model: type[M], limit: int, key: bytes, scope: dict[str, Any]
) -> Page[M]:
    items, next_cursor = page_of(
        rows, limit, key, scope, lambda r: [r["created_at"].isoformat(), str(r["id"])]
    )
    return Page[M](items=[model.model_validate(dict(r)) for r in items], next_cursor=next_cursor)
