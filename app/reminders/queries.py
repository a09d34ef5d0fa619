from datetime import date, datetime
from typing import Any
from uuid import UUID

import asyncpg

INSERT_COLUMNS = (
    "vehicle_id",
    "garage_id",
    "title",
    "description",
    "due_date",
    "due_mileage",
    "soon_days",
    "soon_miles",
)

INSERT = f"""
insert into public.reminders ({", ".join(INSERT_COLUMNS)})
values ({", ".join(f"${i}" for i in range(1, len(INSERT_COLUMNS) + 1))})
returning id
"""  # noqa: S608 - column names are the constants above

# Every read joins the vehicle: due_state needs its current_mileage and timezone.
_SELECT = """
select r.*, v.current_mileage as vehicle_current_mileage, v.timezone as vehicle_timezone
from public.reminders r
left join public.vehicles v on v.tenant_id = r.tenant_id and v.id = r.vehicle_id
"""

GET = _SELECT + "where r.id = $1 and r.deleted_at is null"

# app/reminders/due.py's rules in SQL, at the instant $8, for the `due_state` filter (a test holds
# the two to the same answers). "Today" is $8's date in the vehicle's time zone, UTC without one.
_TODAY = "($8::timestamptz at time zone coalesce(v.timezone, 'UTC'))::date"
DUE_STATE = f"""
case
  when r.status in ('completed', 'dismissed') then r.status
  when r.due_date < {_TODAY} or r.due_mileage < v.current_mileage then 'overdue'
  when r.due_date - {_TODAY} <= r.soon_days
    or r.due_mileage - v.current_mileage <= r.soon_miles then 'due_soon'
  else 'upcoming'
end"""

# Keyset: newest first; the cursor is the last row's (created_at, id). A garage's reminders are
# its own and those of the vehicles in it. Every filter is in the WHERE, before the LIMIT, so
# pages stay full and cursors exact.
LIST = (
    _SELECT
    + f"""
where r.deleted_at is null
  and ($1::uuid is null or r.vehicle_id = $1)
  and ($2::uuid is null or r.garage_id = $2 or v.garage_id = $2)
  and ($3::text is null or r.status = $3)
  and ($4::date is null or r.due_date <= $4)
  and ($9::text[] is null or ({DUE_STATE}) = any($9))
  and ($5::timestamptz is null or (r.created_at, r.id) < ($5, $6::uuid))
order by r.created_at desc, r.id desc
limit $7
"""
)


async def insert_reminder(conn: asyncpg.Connection, *, values: dict[str, Any]) -> UUID:
    reminder_id: UUID = await conn.fetchval(INSERT, *(values.get(c) for c in INSERT_COLUMNS))
    return reminder_id


async def get_reminder(conn: asyncpg.Connection, *, reminder_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(GET, reminder_id)


async def list_reminders(
    conn: asyncpg.Connection,
    *,
    vehicle_id: UUID | None,
    garage_id: UUID | None,
    status: str | None,
    due_before: date | None,
    due_states: list[str] | None,
    now: datetime,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> list[asyncpg.Record]:
    created_at, last_id = after or (None, None)
    return await conn.fetch(
        LIST, vehicle_id, garage_id, status, due_before, created_at, last_id, limit, now, due_states
    )
