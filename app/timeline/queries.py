"""SQL for the timeline. The schema enforces the rules (payloads, odometer, corrections,
immutability, reminders: sql/400_triggers.sql); these queries append and read.

Lists are keyset-paged on (date desc, created_at desc, id desc), the order of the indexes
(tenant_id[, vehicle_id], date desc, created_at desc, id desc), so a page is an index range scan
that stops after `limit` rows, never a sort of the whole history. Each combination of filters is
its own statement (no `$n is null or ...`), so a cached generic plan still uses the index.
"""

from datetime import date, datetime
from typing import Any
from uuid import UUID

import asyncpg

# Years that always have a partition (created at install and kept by maintenance).
ALWAYS_PARTITIONED_YEARS = 2

# The vehicle an event is appended to: visible (RLS), live, and its "today".
VEHICLE_TODAY = """
select id, timezone, (now() at time zone timezone)::date as today
from public.vehicles
where id = $1 and deleted_at is null
"""
UTC_TODAY = "select (now() at time zone 'UTC')::date"

RECORD_READING = """
insert into public.vehicle_events (vehicle_id, date, type, miles)
select id, (now() at time zone timezone)::date, 'odometer', $2
from public.vehicles where id = $1
"""

ENSURE_PARTITION = "select public.ensure_event_partition_for($1)"

INSERT = """
insert into public.vehicle_events (vehicle_id, date, type, miles, payload, notes)
values ($1, $2, $3, $4, $5::jsonb, $6)
returning id, vehicle_id, date, type, miles, payload, notes, created_at, created_by,
          null::uuid as superseded_by
"""

# superseded_by: the partial index of corrections (sql/680_timeline.sql) makes this one probe.
SUPERSEDED_BY = """(select c.id from public.vehicle_events c
 where c.tenant_id = e.tenant_id and c.payload ? 'correction_of'
   and (c.payload ->> 'correction_of') = e.id::text
 limit 1)"""

# An event as the API shows it (schemas.Event, same key order), serialized by PostgreSQL: reads
# hand the text through instead of decoding rows and encoding them again. created_at as pydantic
# writes it (UTC, `Z`, microseconds only when there are some), so every route writes it alike.
# `select EVENT_DOC ... from EVENTS` (the lateral is flattened: computed only for returned rows).
EVENTS = f"""public.vehicle_events e cross join lateral (select
  e.id, e.vehicle_id, e.date, e.type, e.miles, e.payload, e.notes,
  to_char(e.created_at at time zone 'UTC',
          case when date_trunc('second', e.created_at) = e.created_at
               then 'YYYY-MM-DD"T"HH24:MI:SS"Z"'
               else 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"' end) as created_at,
  e.created_by, {SUPERSEDED_BY} as superseded_by) d"""
EVENT_DOC = "row_to_json(d)::text"

# Events of a deleted vehicle go with it, as every deleted row vanishes from reads.
LIVE_VEHICLE = """(e.vehicle_id is null or exists (
  select 1 from public.vehicles v
  where v.tenant_id = e.tenant_id and v.id = e.vehicle_id and v.deleted_at is null))"""

GET = f"""
select {EVENT_DOC}
from {EVENTS}
where e.tenant_id = (select public.current_tenant_id()) and e.id = $1 and {LIVE_VEHICLE}
"""  # noqa: S608 - constant fragments only

FEED = """
select vehicle_id, last_event_date, last_miles, event_count, fuel_count, maintenance_count,
       odometer_count, document_count, reminder_count, inspection_count, fuel_spend,
       maintenance_spend
from public.timeline_feed
order by last_event_date desc nulls last, vehicle_id
"""
FEED_REFRESHED_AT = "select refreshed_at from public.timeline_feed_freshness"


async def vehicle_today(conn: asyncpg.Connection, *, vehicle_id: UUID) -> date | None:
    """Today in the vehicle's timezone; None if the vehicle is not visible or deleted."""
    row = await conn.fetchrow(VEHICLE_TODAY, vehicle_id)
    if row is None:
        return None
    today: date = row["today"]
    return today


async def utc_today(conn: asyncpg.Connection) -> date:
    today: date = await conn.fetchval(UTC_TODAY)
    return today


async def ensure_partition(conn: asyncpg.Connection, *, day: date, today: date) -> None:
    """Create the year's partition if it may be missing (history imports, e.g. 1950)."""
    if today.year <= day.year <= today.year + ALWAYS_PARTITIONED_YEARS:
        return
    await conn.execute(ENSURE_PARTITION, day)


async def insert_event(
    conn: asyncpg.Connection,
    *,
    vehicle_id: UUID | None,
    day: date,
    type_: str,
    miles: int | None,
    payload: dict[str, Any],
    notes: str | None,
) -> asyncpg.Record:
    row = await conn.fetchrow(INSERT, vehicle_id, day, type_, miles, payload, notes)
    if row is None:  # pragma: no cover - an insert returning nothing would be a bug
        raise RuntimeError("insert returned no row")
    return row


async def record_reading(conn: asyncpg.Connection, *, vehicle_id: UUID, miles: int) -> None:
    """An odometer reading dated today in the vehicle's timezone (the odometer rule applies)."""
    await conn.execute(RECORD_READING, vehicle_id, miles)


async def get_event(conn: asyncpg.Connection, *, event_id: UUID) -> str | None:
    """The event's JSON (schemas.Event), or None."""
    doc: str | None = await conn.fetchval(GET, event_id)
    return doc


Position = tuple[date, datetime, UUID]


def list_sql(
    *, vehicle: bool, types: bool, from_: bool, to: bool, after: bool
) -> tuple[str, list[str]]:
    """The statement for one combination of filters, and the order of its parameters."""
    where = ["e.tenant_id = (select public.current_tenant_id())"]
    params: list[str] = []

    def param(name: str, cast: str) -> str:
        params.append(name)
        return f"${len(params)}::{cast}"

    if vehicle:
        where.append(f"e.vehicle_id = {param('vehicle_id', 'uuid')}")
    if types:
        where.append(f"e.type = any({param('types', 'text[]')})")
    if from_:
        where.append(f"e.date >= {param('from', 'date')}")
    if to:
        where.append(f"e.date <= {param('to', 'date')}")
    if after:
        where.append(
            f"(e.date, e.created_at, e.id) < ({param('after_date', 'date')}, "
            f"{param('after_created_at', 'timestamptz')}, {param('after_id', 'uuid')})"
        )
    where.append(LIVE_VEHICLE)
    # One row back (decoding 51 rows costs the API more than the query): how many rows were
    # fetched (limit + 1 says there is a next page), the first `limit` documents joined, and the
    # sort key of the last of them (the cursor's position).
    fetch = param("limit", "int")
    order = "e.date desc, e.created_at desc, e.id desc"
    sql = (
        f"select count(*)::int as fetched,"  # noqa: S608 - constant fragments only
        f" coalesce(string_agg(p.doc, ',' order by p.n) filter (where p.n < {fetch}), '') as docs,"
        f" min(p.date) filter (where p.n = {fetch} - 1) as last_date,"
        f" min(p.created_at) filter (where p.n = {fetch} - 1) as last_created_at,"
        f" min(p.id::text) filter (where p.n = {fetch} - 1)::uuid as last_id"
        f" from (select e.date, e.created_at, e.id, row_number() over (order by {order}) as n,"
        f" {EVENT_DOC} as doc from {EVENTS} where "
        + " and ".join(where)
        + f" order by {order} limit {fetch}) p"
    )
    return sql, params


async def list_events(
    conn: asyncpg.Connection,
    *,
    vehicle_id: UUID | None,
    types: list[str] | None,
    from_: date | None,
    to: date | None,
    after: Position | None,
    limit: int,
) -> asyncpg.Record:
    """One page as list_sql's single row; `limit` rows are fetched, `limit - 1` served."""
    sql, names = list_sql(
        vehicle=vehicle_id is not None,
        types=bool(types),
        from_=from_ is not None,
        to=to is not None,
        after=after is not None,
    )
    values: dict[str, Any] = {
        "vehicle_id": vehicle_id,
        "types": types,
        "from": from_,
        "to": to,
        "limit": limit,
    }
    if after is not None:
        values["after_date"], values["after_created_at"], values["after_id"] = after
    # Run on a ListConn (sorting discouraged, app/db.py LIST_PLANNER): RLS's tenant_id =
    # current_tenant_id() is estimated as if independent of vehicle_id, and old yearly partitions
    # are tiny, so the planner may think a vehicle has a handful of rows and sort them all; a
    # vehicle's history can be long. The ordered index scan is always right here.
    page = await conn.fetchrow(sql, *(values[name] for name in names))
    assert page is not None  # an aggregate always answers one row
    return page


async def feed(conn: asyncpg.Connection) -> tuple[list[asyncpg.Record], datetime | None]:
    rows = await conn.fetch(FEED)
    refreshed_at: datetime | None = await conn.fetchval(FEED_REFRESHED_AT)
    return rows, refreshed_at
