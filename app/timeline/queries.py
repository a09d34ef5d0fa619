"""SQL for the timeline. The schema enforces the rules (payloads, odometer, corrections,
immutability, reminders: sql/400_triggers.sql); these queries append and read.

Lists are keyset-paged on (date desc, created_at desc, id desc), the order of the indexes
(tenant_id[, vehicle_id], date desc, created_at desc, id desc), so a page is an index range scan
that stops after `limit` rows, never a sort of the whole history. Each combination of filters is
its own statement (no `$n is null or ...`), so a cached generic plan still uses the index.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

import asyncpg

from app.core.errors import ProblemError, not_found
from app.web import idempotency

# Years that always have a partition (created at install and kept by maintenance).
ALWAYS_PARTITIONED_YEARS = 2

RECORD_READING = """
insert into public.vehicle_events (vehicle_id, date, type, miles)
select id, (now() at time zone timezone)::date, 'odometer', $2
from public.vehicles where id = $1
"""

ENSURE_PARTITION = "select public.ensure_event_partition_for($1)"

# superseded_by of one event: the partial index of corrections (sql/680_timeline.sql), probed in
# every partition. A page looks its corrections up once instead (list_sql).
SUPERSEDED_BY = """(select c.id from public.vehicle_events c
 where c.tenant_id = e.tenant_id and c.payload ? 'correction_of'
   and (c.payload ->> 'correction_of') = e.id::text
 limit 1)"""


def event_doc(superseded_by: str) -> str:
    """`cross join lateral ... d` over an event `e`: `row_to_json(d)` is the event as the API shows
    it (schemas.Event, same key order), serialized by PostgreSQL, so reads hand the text through
    instead of decoding rows and encoding them again. created_at as pydantic writes it (UTC, `Z`,
    microseconds only when there are some), so every route writes it alike. The lateral is
    flattened: computed only for the rows the statement fetches."""
    return f"""cross join lateral (select
  e.id, e.vehicle_id, e.date, e.type, e.miles, e.payload, e.notes,
  to_char(e.created_at at time zone 'UTC',
          case when date_trunc('second', e.created_at) = e.created_at
               then 'YYYY-MM-DD"T"HH24:MI:SS"Z"'
               else 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"' end) as created_at,
  e.created_by, {superseded_by} as superseded_by) d"""


# An append is one statement: the insert's triggers (sql/400_triggers.sql) check the payload, the
# vehicle (yours, live), the date window and the odometer, and answer in their errors
# (`refusal`). The date defaults to today in the vehicle's timezone (UTC's without a vehicle, or
# for one that is not yours, which the trigger then refuses). The event comes back as the API
# shows it (schemas.Event), written by PostgreSQL.
_NEW_EVENT = """$1::uuid,
  coalesce($2::date,
           (select (now() at time zone v.timezone)::date from public.vehicles v
            where v.id = $1::uuid and v.deleted_at is null),
           (now() at time zone 'UTC')::date),
  $3::text, $4::int, $5::jsonb, $6::text"""
_INSERT = "insert into public.vehicle_events (vehicle_id, date, type, miles, payload, notes)"
APPEND = f"""
with event as (
  {_INSERT}
  values ({_NEW_EVENT})
  returning *
)
select e.id, row_to_json(d)::text as doc
from event e {event_doc("null::uuid")}
"""  # noqa: S608 - constant fragments only
# With an Idempotency-Key whose lock this transaction holds (app/web/idempotency.py LOCK): the
# response stored under the key if there is one, else the append and its response stored, in one
# statement. `prior` is that stored response (then nothing was appended), else `doc` the event.
APPEND_ONCE = f"""
with prior as (
  {idempotency.STORED_RESPONSE.format(user_id="$7::uuid", key="$8::text")}
), event as (
  {_INSERT}
  select {_NEW_EVENT}
  where not exists (select from prior)
  returning *
), response as (
  select e.id, row_to_json(d)::jsonb as doc
  from event e {event_doc("null::uuid")}
), stored as (
  insert into public.idempotency_keys
    (user_id, key, request_hash, status_code, response_body, response_headers, completed_at)
  select $7::uuid, $8::text, $9::text, 201, r.doc,
         jsonb_build_object('Location', '/v1/timeline/' || r.id), now()
  from response r
)
select r.id, r.doc::text as doc, (select to_jsonb(p) from prior p) as prior
from (select) as one left join response r on true
"""  # noqa: S608 - constant fragments only


# Events of a deleted vehicle go with it, as every deleted row vanishes from reads.
LIVE_VEHICLE = """(e.vehicle_id is null or exists (
  select 1 from public.vehicles v
  where v.tenant_id = e.tenant_id and v.id = e.vehicle_id and v.deleted_at is null))"""

GET = f"""
select row_to_json(d)::text
from public.vehicle_events e {event_doc(SUPERSEDED_BY)}
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


def date_out_of_range(detail: str | None = None) -> ProblemError:
    """The date window's answer (sql/400_triggers.sql), as a field error of the body's `date`."""
    detail = detail or "date must be between 1900-01-01 and tomorrow in the vehicle's timezone"
    return ProblemError(
        422,
        "validation_failed",
        "Validation failed",
        detail,
        errors=[{"loc": ["body", "date"], "msg": detail, "type": "date_out_of_range"}],
    )


def refusal(exc: asyncpg.PostgresError) -> ProblemError | None:
    """The append's answer to the database's refusals that name a field of the request rather
    than a rule of their own (those errors.py maps): a vehicle that is not yours or not live is a
    404, as on every route that takes it in the path; a date outside the window is the 422 the
    body's other fields get."""
    constraint = getattr(exc, "constraint_name", None)
    if constraint == "vehicle_events_vehicle_fkey":
        return not_found("The vehicle does not exist.")
    # The trigger's upper bound, the column's lower one, ensure_event_partition_for's window.
    own = exc.sqlstate in ("23514", "22023") and exc.message == "date_out_of_range"
    if own or constraint == "vehicle_events_date_check":
        return date_out_of_range(exc.detail if own else None)
    return None


def always_partitioned(day: date) -> bool:
    """The years whose partitions exist at install and are kept by maintenance (by this host's
    clock: near New Year a date may take the one round trip more, never one less)."""
    this_year = datetime.now(UTC).year
    return this_year <= day.year <= this_year + ALWAYS_PARTITIONED_YEARS


async def ensure_partition(conn: asyncpg.Connection, *, day: date) -> None:
    """Create the year's partition if it may be missing (history imports, e.g. 1950): a repair,
    as every accepted date has one from install on. Refuses a date outside the window."""
    try:
        await conn.execute(ENSURE_PARTITION, day)
    except asyncpg.PostgresError as exc:
        raise refusal(exc) or exc from None


@dataclass(frozen=True)
class NewEvent:
    vehicle_id: UUID | None
    day: date | None  # None: today in the vehicle's timezone
    type: str
    miles: int | None
    payload: dict[str, Any]
    notes: str | None


async def append(
    conn: asyncpg.Connection, *, event: NewEvent, once: tuple[UUID, str, str] | None = None
) -> asyncpg.Record:
    """Append one event: (id, doc) with the event's JSON. `once`: (user_id, key, fingerprint) of
    an Idempotency-Key this transaction holds; then also `prior`, the response stored under the
    key, if any (and nothing was appended)."""
    args = [event.vehicle_id, event.day, event.type, event.miles, event.payload, event.notes]
    try:
        if once is None:
            row = await conn.fetchrow(APPEND, *args)
        else:
            row = await conn.fetchrow(APPEND_ONCE, *args, *once)
    except asyncpg.PostgresError as exc:
        raise refusal(exc) or exc from None
    if row is None:  # pragma: no cover - one row always (an insert, or a left join)
        raise RuntimeError("append returned no row")
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
    fetch = param("limit", "int")
    order = "e.date desc, e.created_at desc, e.id desc"
    # The page (an ordered index scan that stops after `fetch` rows), then its corrections in one
    # lookup per partition, not one per row and partition. One row back (decoding 51 rows cost
    # the API more than the query): how many rows were fetched (`fetch` says there is a next
    # page), the first `fetch - 1` documents joined, and the sort key of the last of them.
    sql = f"""with page as (
  select e.id, e.vehicle_id, e.date, e.type, e.miles, e.payload, e.notes, e.created_at,
         e.created_by, row_number() over (order by {order}) as n
  from public.vehicle_events e
  where {" and ".join(where)}
  order by {order}
  limit {fetch}
), corrections as (
  select c.payload ->> 'correction_of' as target, min(c.id::text)::uuid as id
  from public.vehicle_events c
  where c.tenant_id = (select public.current_tenant_id()) and c.payload ? 'correction_of'
    and (c.payload ->> 'correction_of') = any (array(select p.id::text from page p))
  group by 1
)
select count(*)::int as fetched,
       coalesce(string_agg(row_to_json(d)::text, ',' order by e.n)
                  filter (where e.n < {fetch}), '') as docs,
       min(e.date) filter (where e.n = {fetch} - 1) as last_date,
       min(e.created_at) filter (where e.n = {fetch} - 1) as last_created_at,
       min(e.id::text) filter (where e.n = {fetch} - 1)::uuid as last_id
from page e left join corrections s on s.target = e.id::text
{event_doc("s.id")}"""  # noqa: S608 - constant fragments only
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
    # Run on a ListConn (sorting discouraged, app/core/db.py LIST_PLANNER): RLS's tenant_id =
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
