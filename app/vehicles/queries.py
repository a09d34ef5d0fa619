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

INSERT = f"""
insert into public.vehicles ({", ".join(INSERT_COLUMNS)})
values ({", ".join(f"${i}" for i in range(1, len(INSERT_COLUMNS) + 1))})
returning *
"""  # noqa: S608 - column names are the constants above

# Keyset: newest first; the cursor is the last row's (created_at, id). `$2` is an ILIKE pattern
# whose wildcards the caller has already escaped (backslash).
LIST = r"""
select * from public.vehicles
where deleted_at is null
  and ($1::uuid is null or garage_id = $1)
  and ($2::text is null
       or make ilike $2 escape '\' or model ilike $2 escape '\'
       or nickname ilike $2 escape '\' or vin ilike $2 escape '\'
       or license_plate ilike $2 escape '\')
  and ($3::timestamptz is null or (created_at, id) < ($3, $4::uuid))
order by created_at desc, id desc
limit $5
"""


def contains_pattern(text: str) -> str:
    """An ILIKE pattern matching `text` literally anywhere (`%`, `_` and `\\` escaped)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def insert_vehicle(conn: asyncpg.Connection, *, values: dict[str, Any]) -> asyncpg.Record:
    row = await conn.fetchrow(INSERT, *(values.get(col) for col in INSERT_COLUMNS))
    if row is None:  # pragma: no cover - RLS refusing an insert raises instead
        raise RuntimeError("insert returned no row")
    return row


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
