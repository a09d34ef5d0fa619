from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

# The columns a client may set on create (current_mileage follows the timeline).
INSERT_COLUMNS = (
    "garage_id",
    "year",
    "make",
    "model",
    "trim",
    "color",
    "vin",
    "license_plate",
    "nickname",
    "timezone",
)


def _as_pydantic_writes(column: str) -> str:
    """A timestamptz as pydantic writes a UTC datetime: `Z`, microseconds only when there are
    some (the timeline's event_doc writes created_at the same way)."""
    return f"""to_char({column} at time zone 'UTC',
          case when date_trunc('second', {column}) = {column}
               then 'YYYY-MM-DD"T"HH24:MI:SS"Z"'
               else 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"' end)"""


# `cross join lateral ... d` over a vehicle `v`: `row_to_json(d)` is the vehicle as the API shows
# it (schemas.Vehicle: the same keys in the same order), written by PostgreSQL, so reads hand the
# text through instead of decoding the row, validating it and encoding it again
# (tests/vehicles/test_vehicle_json.py holds it to pydantic's text).
VEHICLE_DOC = f"""cross join lateral (select
  v.id, {_as_pydantic_writes("v.created_at")} as created_at,
  {_as_pydantic_writes("v.updated_at")} as updated_at, v.created_by, v.updated_by,
  v.garage_id, v.year, v.make, v.model, v.trim, v.color, v.vin, v.license_plate, v.nickname,
  v.timezone, v.current_mileage) d"""

# One live vehicle: its JSON, and what its ETag is made of.
GET = f"""
select row_to_json(d)::text as doc, v.id, v.updated_at
from public.vehicles v {VEHICLE_DOC}
where v.id = $1 and v.deleted_at is null
"""  # noqa: S608 - constant fragments only

INSERT = f"""
insert into public.vehicles ({", ".join(INSERT_COLUMNS)})
values ({", ".join(f"${i}" for i in range(1, len(INSERT_COLUMNS) + 1))})
returning *
"""  # noqa: S608 - column names are the constants above

# Keyset: newest first; the cursor is the last row's (created_at, id). `$2` is an ILIKE pattern
# whose wildcards the caller has already escaped (backslash). Each row: its JSON (VEHICLE_DOC).
LIST = (
    f"""
select v.created_at, v.id, row_to_json(d)::text as doc
from public.vehicles v {VEHICLE_DOC}
"""  # noqa: S608 - constant fragments only
    + r"""where v.deleted_at is null
  and ($1::uuid is null or v.garage_id = $1)
  and ($2::text is null
       or v.make ilike $2 escape '\' or v.model ilike $2 escape '\'
       or v.nickname ilike $2 escape '\' or v.vin ilike $2 escape '\'
       or v.license_plate ilike $2 escape '\')
  and ($3::timestamptz is null or (v.created_at, v.id) < ($3, $4::uuid))
order by v.created_at desc, v.id desc
limit $5
"""
)


def contains_pattern(text: str) -> str:
    """An ILIKE pattern matching `text` literally anywhere (`%`, `_` and `\\` escaped)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def insert_vehicle(conn: asyncpg.Connection, *, values: dict[str, Any]) -> asyncpg.Record:
    row = await conn.fetchrow(INSERT, *(values.get(col) for col in INSERT_COLUMNS))
    if row is None:  # pragma: no cover - RLS refusing an insert raises instead
        raise RuntimeError("insert returned no row")
    return row


async def get_vehicle(conn: asyncpg.Connection, *, vehicle_id: UUID) -> asyncpg.Record | None:
    """`doc` (the vehicle's JSON), `id` and `updated_at`; None if not visible, or deleted."""
    return await conn.fetchrow(GET, vehicle_id)


async def list_vehicles(
    conn: asyncpg.Connection,
    *,
    garage_id: UUID | None,
    q: str | None,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[asyncpg.Record]:
    created_at, last_id = after or (None, None)
    pattern = contains_pattern(q) if q else None
    return await conn.fetch(LIST, garage_id, pattern, created_at, last_id, limit)
