"""The timeline's rules as the database enforces them, whoever writes: immutability, payloads,
the odometer, corrections, concurrent appends, partitions on demand; plus the sign-up trigger and
the vehicle rules around them."""

import asyncio
import datetime as dt
import itertools
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest

from app.core.config import Settings
from app.core.db import set_request_context
from tests.helpers import User, as_user, claims_for, create_user

TODAY = dt.date.today()


def day(offset: int) -> dt.date:
    return TODAY + dt.timedelta(days=offset)


@asynccontextmanager
async def committed_as(db: asyncpg.Pool, user: User) -> AsyncIterator[asyncpg.Connection]:
    """Like helpers.as_user, but commits."""
    async with db.acquire() as conn, conn.transaction():
        await set_request_context(
            conn, role="authenticated", claims=claims_for(user), settings=Settings()
        )
        yield conn


async def expect(conn: asyncpg.Connection, sql: str, *args: Any) -> asyncpg.PostgresError:
    """Run `sql` in a savepoint and return the error it must raise."""
    try:
        async with conn.transaction():
            await conn.execute(sql, *args)
    except asyncpg.PostgresError as exc:
        return exc
    raise AssertionError(f"no error from {sql!r}")


async def make_vehicle(db: asyncpg.Pool, user: User, **cols: Any) -> uuid.UUID:
    cols = {"make": "Honda", **cols}
    names = ", ".join(cols)
    params = ", ".join(f"${i + 2}" for i in range(len(cols)))
    vid: uuid.UUID = await db.fetchval(
        f"insert into public.vehicles (tenant_id, {names}) values ($1, {params}) returning id",
        user.tenant_id,
        *cols.values(),
    )
    return vid


INSERT_EVENT = """insert into public.vehicle_events (vehicle_id, date, type, miles, payload)
                  values ($1, $2, $3, $4, $5) returning id"""


async def add_event(
    conn: asyncpg.Connection,
    vehicle: uuid.UUID | None,
    date: dt.date,
    type_: str = "odometer",
    miles: int | None = None,
    payload: dict[str, Any] | None = None,
) -> uuid.UUID:
    await conn.execute("select public.ensure_event_partition_for($1)", date)
    eid: uuid.UUID = await conn.fetchval(INSERT_EVENT, vehicle, date, type_, miles, payload or {})
    return eid


@pytest.fixture
async def user(db: asyncpg.Pool) -> User:
    return await create_user(db)


@pytest.fixture
async def vehicle(db: asyncpg.Pool, user: User) -> uuid.UUID:
    return await make_vehicle(db, user)


# Immutability -------------------------------------------------------------------------------


async def test_events_are_immutable_even_for_the_owner(
    db: asyncpg.Pool, user: User, vehicle: uuid.UUID
) -> None:
    async with committed_as(db, user) as conn:
        eid = await add_event(conn, vehicle, day(-1), miles=100)
    async with db.acquire() as conn, conn.transaction():
        for sql in [
            "update public.vehicle_events set notes = 'x' where id = $1",
            "delete from public.vehicle_events where id = $1",
        ]:
            err = await expect(conn, sql, eid)
            assert err.sqlstate == "MM003"
            assert "event_immutable" in str(err)
    async with db.acquire() as conn:  # twin: the maintenance flag
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.execute("set local motomind.maintenance = 'on'")
            assert (
                await conn.execute(
                    "update public.vehicle_events set notes = 'x' where id = $1", eid
                )
                == "UPDATE 1"
            )
        finally:
            await tx.rollback()


async def test_authenticated_cannot_turn_on_maintenance(
    db: asyncpg.Pool, user: User, vehicle: uuid.UUID
) -> None:
    async with as_user(db, user) as conn:
        eid = await add_event(conn, vehicle, day(-1), miles=100)
        await conn.execute("select set_config('motomind.maintenance', 'on', true)")
        err = await expect(conn, "delete from public.vehicle_events where id = $1", eid)
        assert isinstance(err, asyncpg.InsufficientPrivilegeError)


# Payloads -----------------------------------------------------------------------------------

VALID = [
    ("fuel", 1000, {"volume": 10.5}),
    (
        "fuel",
        1000,
        {
            "volume": 12,
            "unit": "l",
            "total_cost": 40.1,
            "price_per_unit": 0,
            "currency": "EUR",
            "full_tank": False,
            "missed_previous": True,
            "station": "Shell",
            "fuel_type": "diesel",
        },
    ),
    ("maintenance", None, {"service": "oil_change"}),
    (
        "maintenance",
        1000,
        {
            "service": "brakes",
            "items": [{"name": "pads", "cost": 80}, {"name": "labour"}],
            "cost": 0,
            "currency": "USD",
            "shop": "Joe's",
        },
    ),
    ("odometer", 1000, {}),
    ("document", None, {"kind": "insurance"}),
    (
        "document",
        None,
        {
            "kind": "registration",
            "title": "Reg",
            "storage_url": "https://files.example.com/a.pdf",
            "expires_on": "2028-02-29",
        },
    ),
    ("document", None, {"kind": "manual", "storage_url": "tenant/docs/manual.pdf"}),
    ("inspection", None, {"kind": "safety", "result": "pass"}),
    (
        "inspection",
        1000,
        {"kind": "emissions", "result": "fail", "expires_on": "2027-01-31", "inspector": "DMV"},
    ),
    ("fuel", 1000, {"volume": 3, "unit": None}),  # null counts as absent
]

INVALID = [
    ("fuel", 1000, {}, "payload.volume"),
    ("fuel", 1000, {"volume": 0}, "payload.volume"),
    ("fuel", 1000, {"volume": -1}, "payload.volume"),
    ("fuel", 1000, {"volume": "10"}, "payload.volume"),
    ("fuel", None, {"volume": 10}, "miles"),
    ("fuel", 1000, {"volume": 10, "unit": "barrel"}, "payload.unit"),
    ("fuel", 1000, {"volume": 10, "total_cost": -1}, "payload.total_cost"),
    ("fuel", 1000, {"volume": 10, "price_per_unit": -0.01}, "payload.price_per_unit"),
    ("fuel", 1000, {"volume": 10, "currency": "usd"}, "payload.currency"),
    ("fuel", 1000, {"volume": 10, "currency": "DOLLAR"}, "payload.currency"),
    ("fuel", 1000, {"volume": 10, "full_tank": "yes"}, "payload.full_tank"),
    ("fuel", 1000, {"volume": 10, "missed_previous": 1}, "payload.missed_previous"),
    ("fuel", 1000, {"volume": 10, "station": 5}, "payload.station"),
    ("fuel", 1000, {"volume": 10, "station": "x" * 501}, "payload.station"),
    ("fuel", 1000, {"volume": 10, "service": "oil"}, "payload.service"),
    ("maintenance", None, {}, "payload.service"),
    ("maintenance", None, {"service": ""}, "payload.service"),
    ("maintenance", None, {"service": "oil", "cost": -5}, "payload.cost"),
    ("maintenance", None, {"service": "oil", "items": {"name": "x"}}, "payload.items"),
    ("maintenance", None, {"service": "oil", "items": [{"cost": 1}]}, "payload.items[0].name"),
    (
        "maintenance",
        None,
        {"service": "oil", "items": [{"name": "a"}, {"name": "b", "cost": -1}]},
        "payload.items[1].cost",
    ),
    (
        "maintenance",
        None,
        {"service": "oil", "items": [{"name": "a", "qty": 2}]},
        "payload.items[0].qty",
    ),
    ("maintenance", None, {"service": "oil", "volume": 3}, "payload.volume"),
    ("odometer", None, {}, "miles"),
    ("odometer", 10, {"note": "x"}, "payload.note"),
    ("document", None, {}, "payload.kind"),
    ("document", None, {"kind": "passport"}, "payload.kind"),
    ("document", None, {"kind": "other", "expires_on": "2027-02-30"}, "payload.expires_on"),
    ("document", None, {"kind": "other", "expires_on": "01/02/2027"}, "payload.expires_on"),
    (
        "document",
        None,
        {"kind": "other", "storage_url": "javascript:alert(1)"},
        "payload.storage_url",
    ),
    (
        "document",
        None,
        {"kind": "other", "storage_url": "file:///etc/passwd"},
        "payload.storage_url",
    ),
    ("document", None, {"kind": "other", "storage_url": "data:text/html,x"}, "payload.storage_url"),
    ("document", None, {"kind": "other", "storage_url": "../../secret"}, "payload.storage_url"),
    ("reminder", None, {"action": "completed"}, "payload.reminder_id"),
    ("reminder", None, {"reminder_id": "nope", "action": "completed"}, "payload.reminder_id"),
    (
        "reminder",
        None,
        {"reminder_id": str(uuid.uuid4()), "action": "deleted"},
        "payload.action",
    ),
    ("reminder", None, {"reminder_id": str(uuid.uuid4())}, "payload.action"),
    ("inspection", None, {"kind": "safety"}, "payload.result"),
    ("inspection", None, {"result": "pass"}, "payload.kind"),
    ("inspection", None, {"kind": "safety", "result": "maybe"}, "payload.result"),
    ("odometer", 10, {"correction_of": "not-a-uuid"}, "payload.correction_of"),
    # Only a bound against abuse: no payload of the API's shapes comes near it.
    ("document", None, {"kind": "other", "title": "x" * 300_000}, "payload"),
    ("maintenance", None, {"service": "\u3000\t"}, "payload.service"),
    ("maintenance", None, {"service": "x", "items": [{"name": "\xa0"}]}, "payload.items[0].name"),
    ("fuel", 10, {"volume": 10**400}, "payload.volume"),
    ("fuel", 10, {"volume": 1, "currency": "USD "}, "payload.currency"),
    ("odometer", 10, {"correction_of": uuid.UUID(int=1).hex}, "payload.correction_of"),
    (
        "document",
        None,
        {"kind": "other", "storage_url": "https://x.example/caf\xe9"},
        "payload.storage_url",
    ),
]


@pytest.mark.parametrize(("type_", "miles", "payload"), VALID)
async def test_valid_payloads_are_accepted(
    db: asyncpg.Pool,
    user: User,
    vehicle: uuid.UUID,
    type_: str,
    miles: int | None,
    payload: dict[str, Any],
) -> None:
    async with as_user(db, user) as conn:
        eid = await add_event(conn, vehicle, day(-1), type_, miles, payload)
        stored = await conn.fetchval("select payload from public.vehicle_events where id = $1", eid)
        assert stored == payload


@pytest.mark.parametrize(("type_", "miles", "payload", "field"), INVALID)
async def test_invalid_payloads_are_refused(
    db: asyncpg.Pool,
    user: User,
    vehicle: uuid.UUID,
    type_: str,
    miles: int | None,
    payload: dict[str, Any],
    field: str,
) -> None:
    async with as_user(db, user) as conn:
        err = await expect(conn, INSERT_EVENT, vehicle, day(-1), type_, miles, payload)
        assert err.sqlstate == "MM002", err
        assert err.column_name == field
        assert field in (err.detail or "")


async def test_payload_rules_apply_to_the_owner_too(db: asyncpg.Pool, user: User) -> None:
    vid = await make_vehicle(db, user)
    async with db.acquire() as conn, conn.transaction():
        err = await expect(
            conn,
            """insert into public.vehicle_events (tenant_id, vehicle_id, date, type, miles, payload)
               values ($1, $2, current_date, 'fuel', 10, '{"volume": -1}')""",
            user.tenant_id,
            vid,
        )
        assert err.sqlstate == "MM002"


async def test_dates_are_bounded(db: asyncpg.Pool, user: User, vehicle: uuid.UUID) -> None:
    async with as_user(db, user) as conn:
        err = await expect(conn, INSERT_EVENT, vehicle, day(3), "odometer", 10, {})
        assert err.sqlstate == "23514"
        assert err.constraint_name == "vehicle_events_date_check"
        err = await expect(conn, INSERT_EVENT, vehicle, dt.date(1899, 12, 31), "odometer", 10, {})
        assert err.sqlstate == "23514"


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Pacific/Pago_Pago", None])
async def test_the_latest_date_is_tomorrow_in_the_vehicles_timezone(
    db: asyncpg.Pool, user: User, zone: str | None
) -> None:
    """The API's rule, for direct SQL too: UTC+14 and UTC-11 are up to two days apart; an
    event without a vehicle goes by UTC."""
    vehicle = await make_vehicle(db, user, timezone=zone) if zone else None
    today: dt.date = await db.fetchval("select (now() at time zone $1)::date", zone or "UTC")
    tomorrow = today + dt.timedelta(days=1)
    kind, payload = ("odometer", {}) if vehicle else ("document", {"kind": "insurance"})
    miles = 10 if vehicle else None
    async with as_user(db, user) as conn:
        err = await expect(
            conn, INSERT_EVENT, vehicle, tomorrow + dt.timedelta(days=1), kind, miles, payload
        )
        assert err.sqlstate == "23514" and err.message == "date_out_of_range"
        assert f"and {tomorrow.isoformat()} (tomorrow" in (err.detail or "")
        assert err.column_name == "date"
        await add_event(conn, vehicle, tomorrow, kind, miles, payload)


# Odometer and corrections ------------------------------------------------------------------


async def test_rollback_is_refused_naming_the_conflicting_reading(
    db: asyncpg.Pool, user: User, vehicle: uuid.UUID
) -> None:
    async with as_user(db, user) as conn:
        first = await add_event(conn, vehicle, day(-30), miles=41200)
        err = await expect(conn, INSERT_EVENT, vehicle, day(-10), "odometer", 41000, {})
        assert err.sqlstate == "MM001"
        assert err.message == "odometer_rollback"
        assert err.detail == f"conflicts with the reading of 41200 miles on {day(-30).isoformat()}"
        assert err.hint == str(first)
        # Later date, higher reading: fine. Same date, lower reading: refused.
        await add_event(conn, vehicle, day(-10), miles=41300)
        err = await expect(conn, INSERT_EVENT, vehicle, day(-10), "odometer", 41250, {})
        assert err.sqlstate == "MM001"


async def test_back_dated_reading_must_fit_between_its_neighbours(
    db: asyncpg.Pool, user: User, vehicle: uuid.UUID
) -> None:
    async with as_user(db, user) as conn:
        await add_event(conn, vehicle, day(-40), miles=40000)
        later = await add_event(conn, vehicle, day(-10), miles=42000)
        await add_event(conn, vehicle, day(-20), miles=41000)  # fits
        err = await expect(conn, INSERT_EVENT, vehicle, day(-15), "odometer", 42500, {})
        assert err.sqlstate == "MM001"
        assert err.detail == f"conflicts with the reading of 42000 miles on {day(-10).isoformat()}"
        assert err.hint == str(later)
        # Events without miles never conflict.
        await add_event(conn, vehicle, day(-15), "maintenance", None, {"service": "wash"})
        assert (
            await conn.fetchval(
                "select current_mileage from public.vehicles where id = $1", vehicle
            )
            == 42000
        )


async def test_a_typo_blocks_until_corrected(
    db: asyncpg.Pool, user: User, vehicle: uuid.UUID
) -> None:
    async with as_user(db, user) as conn:
        await add_event(conn, vehicle, day(-30), miles=41200)
        typo = await add_event(conn, vehicle, day(-20), miles=99999)
        mileage = "select current_mileage from public.vehicles where id = $1"
        assert await conn.fetchval(mileage, vehicle) == 99999
        err = await expect(conn, INSERT_EVENT, vehicle, day(-1), "odometer", 41500, {})
        assert err.sqlstate == "MM001"
        assert "99999 miles" in (err.detail or "")
        fix = await add_event(
            conn, vehicle, day(-20), miles=41300, payload={"correction_of": str(typo)}
        )
        assert (
            await conn.fetchval(mileage, vehicle) == 41300
        )  # the superseded typo no longer counts
        await add_event(conn, vehicle, day(-1), miles=41500)
        assert await conn.fetchval(mileage, vehicle) == 41500
        # A second correction of the same event is refused; correcting the correction is not.
        err = await expect(
            conn,
            INSERT_EVENT,
            vehicle,
            day(-20),
            "odometer",
            41350,
            {"correction_of": str(typo)},
        )
        assert err.sqlstate == "MM006"
        assert err.hint == str(fix)
        await add_event(conn, vehicle, day(-20), miles=41350, payload={"correction_of": str(fix)})


async def test_corrections_stay_within_the_vehicle_and_tenant(
    db: asyncpg.Pool, user: User, vehicle: uuid.UUID
) -> None:
    other_vehicle = await make_vehicle(db, user)
    stranger = await create_user(db)
    stranger_vehicle = await make_vehicle(db, stranger)
    async with committed_as(db, stranger) as conn:
        theirs = await add_event(conn, stranger_vehicle, day(-5), miles=10)
    async with as_user(db, user) as conn:
        mine = await add_event(conn, other_vehicle, day(-5), miles=10)
        for target in [mine, theirs, uuid.uuid4()]:
            err = await expect(
                conn, INSERT_EVENT, vehicle, day(-5), "odometer", 10, {"correction_of": str(target)}
            )
            assert err.sqlstate == "MM005", target
        await add_event(
            conn, other_vehicle, day(-5), miles=11, payload={"correction_of": str(mine)}
        )


async def test_current_mileage_cannot_be_lowered_below_the_timeline(
    db: asyncpg.Pool, user: User, vehicle: uuid.UUID
) -> None:
    async with as_user(db, user) as conn:
        await add_event(conn, vehicle, day(-3), miles=5000)
        err = await expect(
            conn, "update public.vehicles set current_mileage = 4000 where id = $1", vehicle
        )
        assert err.sqlstate == "MM001"
        assert (
            await conn.execute(
                "update public.vehicles set current_mileage = 5100 where id = $1", vehicle
            )
            == "UPDATE 1"
        )


async def test_concurrent_appends_for_one_vehicle_serialize(
    db: asyncpg.Pool, user: User, vehicle: uuid.UUID
) -> None:
    """Each reading fits alone; pairs conflict. Unserialized, several would slip past the check."""
    async with committed_as(db, user) as conn:
        await add_event(conn, vehicle, day(-20), miles=1000)
    readings = [
        (day(-19 + i), miles) for i, miles in enumerate([2000, 1500, 2500, 1200, 3000, 1100])
    ]
    for date, _ in readings:
        await db.execute("select public.ensure_event_partition_for($1)", date)

    async def append(date: dt.date, miles: int) -> bool:
        try:
            async with committed_as(db, user) as conn:
                await conn.execute(INSERT_EVENT, vehicle, date, "odometer", miles, {})
                await conn.execute("select pg_sleep(0.05)")  # hold the lock a while
        except asyncpg.PostgresError as exc:
            assert exc.sqlstate == "MM001", exc
            return False
        return True

    results = await asyncio.gather(*(append(d, m) for d, m in readings))
    assert any(results) and not all(results)
    rows = await db.fetch(
        "select date, miles from public.vehicle_events where vehicle_id = $1 order by date, miles",
        vehicle,
    )
    assert len(rows) == 1 + sum(results)
    miles = [r["miles"] for r in rows]
    assert miles == sorted(miles)
    assert await db.fetchval(
        "select current_mileage from public.vehicles where id = $1", vehicle
    ) == max(miles)


# Partitions: history is accepted, and no tenant's dates add partitions (finding 5g) -----------

PARTITION_COUNT = """select count(*) from pg_inherits
                     where inhparent = 'public.vehicle_events'::regclass"""


async def test_history_back_to_1900_adds_no_partition(db: asyncpg.Pool, user: User) -> None:
    """One event per year from 1900 to today, as a tenant would post them: every one is accepted
    and the partition count, which every other tenant's lists pay for, does not move."""
    vid = await make_vehicle(db, user, year=1899)
    before = await db.fetchval(PARTITION_COUNT)
    years = range(1900, TODAY.year + 1)
    async with committed_as(db, user) as conn:
        for year in years:
            date = dt.date(year, 6, 1) if year < TODAY.year else TODAY
            await conn.fetchval("select public.ensure_event_partition_for($1)", date)
            await conn.execute(INSERT_EVENT, vid, date, "odometer", year - 1899, {})
    assert await db.fetchval(PARTITION_COUNT) == before
    assert await db.fetchval(
        "select count(*) from public.vehicle_events where vehicle_id = $1", vid
    ) == len(years)
    # History lives in partitions that are as closed to clients as the yearly ones.
    rows = await db.fetch(
        """select c.relname, c.relrowsecurity, c.relforcerowsecurity, c.relacl::text as acl
           from pg_inherits i join pg_class c on c.oid = i.inhrelid
           where i.inhparent = 'public.vehicle_events'::regclass
             and c.relname like 'vehicle_events_history_%'"""
    )
    assert rows
    for part in rows:
        assert part["relrowsecurity"] and part["relforcerowsecurity"], part["relname"]
        assert "authenticated" not in (part["acl"] or ""), part["relname"]


async def test_every_accepted_date_has_a_partition(db: asyncpg.Pool) -> None:
    """Covered from 1900-01-01 through the year after next, without a gap or an overlap."""
    ranges = await db.fetch(
        "select range_start, range_end from private.event_partition_ranges() order by range_start"
    )
    assert ranges[0]["range_start"] == dt.date(1900, 1, 1)
    for earlier, later in itertools.pairwise(ranges):
        assert earlier["range_end"] == later["range_start"]
    assert ranges[-1]["range_end"] >= dt.date(TODAY.year + 3, 1, 1)


async def test_maintenance_repairs_a_gap_in_history(db: asyncpg.Pool) -> None:
    """A history partition gone (an operator detached it): the next maintenance run covers the
    gap again with one partition. Rolled back, so other tests keep the database as installed."""
    async with db.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            name = await conn.fetchval(
                """select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid
                   where i.inhparent = 'public.vehicle_events'::regclass
                     and c.relname like 'vehicle_events_history_%' order by 1 limit 1"""
            )
            await conn.execute(
                f'alter table public.vehicle_events detach partition public."{name}"'
            )
            await conn.execute(f'alter table public."{name}" rename to "detached_{name}"')
            assert await conn.fetchval("select private.ensure_history_partitions()") == 1
            assert await conn.fetchval("select private.ensure_history_partitions()") == 0
            assert await conn.fetchval("select to_regclass($1) is not null", f"public.{name}")
        finally:
            await tx.rollback()


@pytest.mark.parametrize("date", [dt.date(1899, 12, 31), day(3)])
async def test_partitions_only_for_accepted_dates(
    db: asyncpg.Pool, user: User, date: dt.date
) -> None:
    async with as_user(db, user) as conn:
        err = await expect(conn, "select public.ensure_event_partition_for($1)", date)
        assert err.sqlstate == "22023"


# Reminders through the timeline -----------------------------------------------------------


async def test_reminder_events_update_the_reminder(
    db: asyncpg.Pool, user: User, vehicle: uuid.UUID
) -> None:
    stranger = await create_user(db)
    theirs = await db.fetchval(
        "insert into public.reminders (tenant_id, title, due_mileage)"
        " values ($1, 't', 1) returning id",
        stranger.tenant_id,
    )
    async with as_user(db, user) as conn:
        rid = await conn.fetchval(
            """insert into public.reminders (vehicle_id, title, due_date)
               values ($1, 'Oil', current_date) returning id""",
            vehicle,
        )
        for target in [theirs, uuid.uuid4()]:
            err = await expect(
                conn,
                INSERT_EVENT,
                vehicle,
                day(0),
                "reminder",
                None,
                {"reminder_id": str(target), "action": "completed"},
            )
            assert err.sqlstate == "MM004"
        await add_event(
            conn,
            vehicle,
            day(0),
            "reminder",
            None,
            {"reminder_id": str(rid), "action": "completed"},
        )
        row = await conn.fetchrow(
            "select status, completed_at from public.reminders where id = $1", rid
        )
        assert row["status"] == "completed" and row["completed_at"] is not None
        # Completed is final, also for events (MM007), and the refusal changes nothing.
        err = await expect(
            conn,
            INSERT_EVENT,
            vehicle,
            day(0),
            "reminder",
            None,
            {"reminder_id": str(rid), "action": "dismissed"},
        )
        assert err.sqlstate == "MM007"
        row = await conn.fetchrow(
            "select status, completed_at from public.reminders where id = $1", rid
        )
        assert row["status"] == "completed" and row["completed_at"] is not None


# Vehicles, soft deletes ---------------------------------------------------------------------


async def test_vehicle_rules(db: asyncpg.Pool, user: User) -> None:
    other = await create_user(db)
    async with as_user(db, user) as conn:
        insert = (
            "insert into public.vehicles (vin, year, timezone) values ($1, $2, $3) returning vin"
        )
        assert (
            await conn.fetchval(insert, "1hgcm82633a004352", 2020, "Europe/Paris")
            == "1HGCM82633A004352"
        )
        err = await expect(conn, insert, "1HGCM82633A004352", 2021, "UTC")  # case-insensitive dup
        assert isinstance(err, asyncpg.UniqueViolationError)
        err = await expect(conn, insert, "1HGCM82633A00435I", 2021, "UTC")  # I is not a VIN letter
        assert err.constraint_name == "vehicles_vin_check"
        err = await expect(conn, insert, None, 1885, "UTC")
        assert err.constraint_name == "vehicles_year_check"
        err = await expect(conn, insert, None, TODAY.year + 2, "UTC")
        assert err.constraint_name == "vehicles_year_check"
        assert await conn.fetchval(insert, None, TODAY.year + 1, "UTC") is None
        err = await expect(conn, insert, None, 2020, "Mars/Olympus")
        assert err.constraint_name == "vehicles_timezone_check"
    async with as_user(db, other) as conn:  # the same VIN in another tenant is fine
        await conn.execute("insert into public.vehicles (vin) values ('1HGCM82633A004352')")


async def test_soft_deleting_a_vehicle(db: asyncpg.Pool, user: User, vehicle: uuid.UUID) -> None:
    async with as_user(db, user) as conn:
        rid = await conn.fetchval(
            "insert into public.reminders (vehicle_id, title, due_mileage)"
            " values ($1, 'r', 9) returning id",
            vehicle,
        )
        iid = await conn.fetchval(
            "insert into public.vehicle_images (vehicle_id, storage_url)"
            " values ($1, 'a.jpg') returning id",
            vehicle,
        )
        await conn.execute("update public.vehicles set deleted_at = now() where id = $1", vehicle)
        row = await conn.fetchrow(
            "select deleted_at, deleted_by from public.vehicles where id = $1", vehicle
        )
        assert row["deleted_at"] is not None and row["deleted_by"] == user.id
        for table, rowid in [("reminders", rid), ("vehicle_images", iid)]:
            assert await conn.fetchval(
                f"select deleted_at is not null from public.{table} where id = $1", rowid
            )
        for sql, args in [
            (INSERT_EVENT, (vehicle, day(0), "odometer", 5, {})),
            (
                "insert into public.reminders (vehicle_id, title, due_mileage) values ($1, 'r', 1)",
                (vehicle,),
            ),
            (
                "insert into public.vehicle_images (vehicle_id, storage_url) values ($1, 'b.jpg')",
                (vehicle,),
            ),
        ]:
            err = await expect(conn, sql, *args)
            assert isinstance(err, asyncpg.ForeignKeyViolationError), sql


async def test_soft_deleting_a_garage(db: asyncpg.Pool, user: User) -> None:
    async with as_user(db, user) as conn:
        gid = await conn.fetchval("insert into public.garages (name) values ('G') returning id")
        vid = await conn.fetchval(
            "insert into public.vehicles (garage_id) values ($1) returning id", gid
        )
        rid = await conn.fetchval(
            "insert into public.reminders (garage_id, title, due_mileage)"
            " values ($1, 'r', 1) returning id",
            gid,
        )
        await conn.execute("update public.garages set deleted_at = now() where id = $1", gid)
        assert (
            await conn.fetchval("select garage_id from public.vehicles where id = $1", vid) is None
        )
        assert await conn.fetchval(
            "select deleted_at is not null from public.reminders where id = $1", rid
        )
        err = await expect(
            conn, "update public.vehicles set garage_id = $1 where id = $2", gid, vid
        )
        assert isinstance(err, asyncpg.ForeignKeyViolationError)


async def test_audit_columns(db: asyncpg.Pool, user: User) -> None:
    async with as_user(db, user) as conn:
        gid = await conn.fetchval("insert into public.garages (name) values ('G') returning id")
        row = await conn.fetchrow("select * from public.garages where id = $1", gid)
        assert row["created_by"] == user.id and row["tenant_id"] == user.tenant_id
        await conn.execute("update public.garages set name = 'H' where id = $1", gid)
        row = await conn.fetchrow("select * from public.garages where id = $1", gid)
        assert row["updated_by"] == user.id and row["updated_at"] >= row["created_at"]
        eid = await add_event(conn, None, day(0), "document", None, {"kind": "other"})
        assert (
            await conn.fetchval("select created_by from public.vehicle_events where id = $1", eid)
            == user.id
        )


async def test_image_urls_must_be_safe(db: asyncpg.Pool, user: User, vehicle: uuid.UUID) -> None:
    sql = "insert into public.vehicle_images (vehicle_id, storage_url) values ($1, $2)"
    async with as_user(db, user) as conn:
        for bad in [
            "javascript:alert(1)",
            "data:image/png;base64,AAAA",
            "file:///etc/passwd",
            "//evil.example.com/x.png",
            "a/../../b.png",
            "JAVASCRIPT:x",
        ]:
            err = await expect(conn, sql, vehicle, bad)
            assert err.sqlstate == "23514", bad
        for good in [
            "https://cdn.example.com/v/1.jpg?x=1",
            "http://localhost:9000/a.png",
            "v/1/a.jpg",
        ]:
            await conn.execute(sql, vehicle, good)


# Sign-up -------------------------------------------------------------------------------------


async def test_sign_up_creates_a_tenant_and_profile(db: asyncpg.Pool) -> None:
    email = f"new-{uuid.uuid4().hex[:8]}@example.com"
    new = await create_user(db, email=email)
    assert new.tenant_id is not None
    assert (
        await db.fetchval("select name from public.tenants where id = $1", new.tenant_id) == email
    )
    assert await db.fetchval("select email from public.profiles where id = $1", new.id) == email


async def test_sign_up_joins_the_tenant_in_app_metadata(db: asyncpg.Pool, user: User) -> None:
    teammate = await create_user(db, tenant_id=user.tenant_id)
    assert teammate.tenant_id == user.tenant_id
    fresh = uuid.uuid4()  # a tenant id that does not exist yet is created
    newcomer = await create_user(db, tenant_id=fresh)
    assert newcomer.tenant_id == fresh
    assert await db.fetchval("select count(*) from public.tenants where id = $1", fresh) == 1


async def test_user_metadata_does_not_choose_the_tenant(db: asyncpg.Pool, user: User) -> None:
    uid = await db.fetchval(
        """insert into auth.users (email, raw_user_meta_data) values ($1, $2) returning id""",
        f"x-{uuid.uuid4().hex[:8]}@example.com",
        {"tenant_id": str(user.tenant_id)},
    )
    tenant = await db.fetchval("select tenant_id from public.profiles where id = $1", uid)
    assert tenant != user.tenant_id


async def profile_tenant(db: asyncpg.Pool, user_id: uuid.UUID) -> uuid.UUID:
    tenant: uuid.UUID = await db.fetchval(
        "select tenant_id from public.profiles where id = $1", user_id
    )
    return tenant


async def test_app_metadata_set_after_sign_up_moves_the_user(db: asyncpg.Pool, user: User) -> None:
    """Supabase Auth's admin API: insert the user, then set raw_app_meta_data by UPDATE."""
    uid = await db.fetchval(
        """insert into auth.users (email, raw_app_meta_data) values ($1, $2) returning id""",
        f"admin-{uuid.uuid4().hex[:8]}@example.com",
        {"provider": "email", "providers": ["email"]},
    )
    assert await profile_tenant(db, uid) != user.tenant_id
    await db.execute(
        "update auth.users set raw_app_meta_data = raw_app_meta_data || $2 where id = $1",
        uid,
        {"tenant_id": str(user.tenant_id)},
    )
    assert await profile_tenant(db, uid) == user.tenant_id
    # Changed again later: moves again.
    other = await create_user(db)
    await db.execute(
        "update auth.users set raw_app_meta_data = $2 where id = $1",
        uid,
        {"provider": "email", "tenant_id": str(other.tenant_id)},
    )
    assert await profile_tenant(db, uid) == other.tenant_id


@pytest.mark.parametrize("claimed", [str(uuid.uuid4()), "not-a-uuid"])
async def test_app_metadata_naming_no_tenant_is_refused(
    db: asyncpg.Pool, user: User, claimed: str
) -> None:
    with pytest.raises(asyncpg.PostgresError, match="tenant_not_found"):
        await db.execute(
            "update auth.users set raw_app_meta_data = $2 where id = $1",
            user.id,
            {"provider": "email", "tenant_id": claimed},
        )
    assert await profile_tenant(db, user.id) == user.tenant_id
    meta = await db.fetchval("select raw_app_meta_data from auth.users where id = $1", user.id)
    assert "tenant_id" not in meta or meta["tenant_id"] != claimed


async def test_user_metadata_set_after_sign_up_moves_nobody(db: asyncpg.Pool, user: User) -> None:
    other = await create_user(db)
    await db.execute(
        "update auth.users set raw_user_meta_data = $2 where id = $1",
        user.id,
        {"tenant_id": str(other.tenant_id)},
    )
    assert await profile_tenant(db, user.id) == user.tenant_id


async def test_email_change_is_copied_to_the_profile(db: asyncpg.Pool, user: User) -> None:
    email = f"changed-{uuid.uuid4().hex[:8]}@example.com"
    await db.execute("update auth.users set email = $1 where id = $2", email, user.id)
    assert await db.fetchval("select email from public.profiles where id = $1", user.id) == email


async def test_deleting_a_user_removes_the_profile(db: asyncpg.Pool) -> None:
    gone = await create_user(db)
    await db.execute("delete from auth.users where id = $1", gone.id)
    assert await db.fetchval("select count(*) from public.profiles where id = $1", gone.id) == 0


def test_payload_fixtures_are_json() -> None:
    for case in [*VALID, *INVALID]:
        json.dumps(case[2])
