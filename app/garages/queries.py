from datetime import datetime
from uuid import UUID

import asyncpg

INSERT = """
insert into public.garages (name, description) values ($1, $2) returning *
"""

# Keyset: newest first; the cursor is the last row's (created_at, id).
LIST = """
select * from public.garages
where deleted_at is null
  and ($1::timestamptz is null or (created_at, id) < ($1, $2::uuid))
order by created_at desc, id desc
limit $3
"""


async def insert_garage(
    conn: asyncpg.Connection, *, name: str, description: str | None
) -> asyncpg.Record:
    row = await conn.fetchrow(INSERT, name, description)
    assert row is not None
    return row


async def list_garages(
    conn: asyncpg.Connection, *, after: tuple[datetime, UUID] | None, limit: int
) -> list[asyncpg.Record]:
    created_at, last_id = after or (None, None)
    return await conn.fetch(LIST, created_at, last_id, limit)
