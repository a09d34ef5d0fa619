from datetime import datetime
from uuid import UUID

import asyncpg

INSERT = """
insert into public.vehicle_images (vehicle_id, storage_url, thumbnail_url, caption)
values ($1, $2, $3, $4)
returning *
"""

# Keyset: newest first; the cursor is the last row's (created_at, id).
LIST = """
select * from public.vehicle_images
where deleted_at is null
  and ($1::uuid is null or vehicle_id = $1)
  and ($2::timestamptz is null or (created_at, id) < ($2, $3::uuid))
order by created_at desc, id desc
limit $4
"""


async def insert_image(
    conn: asyncpg.Connection,
    *,
    vehicle_id: UUID,
    storage_url: str,
    thumbnail_url: str | None,
    caption: str | None,
) -> asyncpg.Record:
    row = await conn.fetchrow(INSERT, vehicle_id, storage_url, thumbnail_url, caption)
    if row is None:  # pragma: no cover - RLS refusing an insert raises instead
        raise RuntimeError("insert returned no row")
    return row


async def list_images(
    conn: asyncpg.Connection,
    *,
    vehicle_id: UUID | None,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[asyncpg.Record]:
    created_at, last_id = after or (None, None)
    return await conn.fetch(LIST, vehicle_id, created_at, last_id, limit)
