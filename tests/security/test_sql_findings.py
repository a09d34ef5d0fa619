"""The security review's findings on the rules the database owns (issue 15, 5c-5e), each as the
attack that worked, done here as direct SQL in the client roles the API uses."""

import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest

from tests.helpers import User, claims_for, create_user

TODAY = dt.date.today()
INSERT_EVENT = """insert into public.vehicle_events (vehicle_id, date, type, miles, payload)
                  values ($1, $2, 'odometer', $3, $4) returning id"""
CONTEXT = """select set_config('role', 'authenticated', true),
                    set_config('request.jwt.claims', $1, true)"""


def day(offset: int) -> dt.date:
    return TODAY + dt.timedelta(days=offset)


@pytest.fixture
async def user(db: asyncpg.Pool) -> User:
    return await create_user(db)


@pytest.fixture
async def vehicle(db: asyncpg.Pool, user: User) -> uuid.UUID:
    vid: uuid.UUID = await db.fetchval(
        "insert into public.vehicles (tenant_id, make) values ($1, 'Honda') returning id",
        user.tenant_id,
    )
    return vid


@asynccontextmanager
async def transaction_as(
    db: asyncpg.Pool, user: User, *, isolation: str = "read_committed"
) -> AsyncIterator[asyncpg.Connection]:
    """A committing transaction as the user, at the given isolation level."""
    async with db.acquire() as conn, conn.transaction(isolation=isolation):  # type: ignore[arg-type]
        await conn.execute(CONTEXT, json.dumps(claims_for(user)))
        yield conn


async def readings(db: asyncpg.Pool, vehicle: uuid.UUID) -> list[tuple[dt.date, int]]:
    rows = await db.fetch(
        "select date, miles from public.vehicle_events where vehicle_id = $1 order by date, miles",
        vehicle,
    )
    return [(r["date"], r["miles"]) for r in rows]


# 5c: correction_of compared as text --------------------------------------------------------------


async def test_an_upper_case_correction_of_is_the_same_event(
    db: asyncpg.Pool, user: User, vehicle: uuid.UUID
) -> None:
    async with transaction_as(db, user) as conn:
        typo = await conn.fetchval(INSERT_EVENT, vehicle, day(-10), 90000, {})
        upper = {"correction_of": str(typo).upper()}
        fix = await conn.fetchval(INSERT_EVENT, vehicle, day(-10), 9000, upper)
        # Stored as PostgreSQL writes the uuid, so every lookup of corrections finds it.
        stored = await conn.fetchval(
            "select payload ->> 'correction_of' from public.vehicle_events where id = $1", fix
        )
        assert stored == str(typo)
        # The one-correction rule: a second correction, in either case, is refused.
        for spelling in (str(typo), str(typo).upper()):
            with pytest.raises(asyncpg.PostgresError, match="already_superseded"):
                async with conn.transaction():
                    await conn.execute(
                        INSERT_EVENT, vehicle, day(-9), 9100, {"correction_of": spelling}
                    )
        # The odometer rule: the superseded 90000 no longer blocks, the live 9000 still does.
        await conn.execute(INSERT_EVENT, vehicle, day(-5), 9500, {})
        with pytest.raises(asyncpg.PostgresError, match="odometer_rollback"):
            async with conn.transaction():
                await conn.execute(INSERT_EVENT, vehicle, day(-4), 8000, {})
    current = await db.fetchval(
        "select current_mileage from public.vehicles where id = $1", vehicle
    )
    assert current == 9500


# 5d: the odometer rule under every isolation level ------------------------------------------------


@pytest.mark.parametrize("isolation", ["repeatable_read", "serializable"])
async def test_a_stale_snapshot_cannot_store_a_rollback(
    db: asyncpg.Pool, user: User, vehicle: uuid.UUID, isolation: str
) -> None:
    """A back-dated reading (800, between 100 and 1000: the vehicle row does not change) commits
    after the second transaction took its snapshot. That one cannot see the 800, so its 900 dated
    before it looked fine: it must fail (serialization failure, which the API retries), not store
    a reading that rolls back."""
    async with transaction_as(db, user) as conn:
        await conn.execute(INSERT_EVENT, vehicle, day(-30), 100, {})
        await conn.execute(INSERT_EVENT, vehicle, day(-5), 1000, {})
    async with db.acquire() as stale:
        tx = stale.transaction(isolation=isolation)  # type: ignore[arg-type]
        await tx.start()
        try:
            await stale.execute(CONTEXT, json.dumps(claims_for(user)))  # the snapshot is taken
            async with transaction_as(db, user) as conn:
                await conn.execute(INSERT_EVENT, vehicle, day(-20), 800, {})
            with pytest.raises(asyncpg.SerializationError):
                await stale.execute(INSERT_EVENT, vehicle, day(-25), 900, {})
        finally:
            await tx.rollback()
    assert await readings(db, vehicle) == [(day(-30), 100), (day(-20), 800), (day(-5), 1000)]


@pytest.mark.parametrize("isolation", ["repeatable_read", "serializable"])
async def test_appends_work_at_every_isolation_level(
    db: asyncpg.Pool, user: User, vehicle: uuid.UUID, isolation: str
) -> None:
    """The twin: without a concurrent append, the same transaction is accepted, and a rollback
    it would store is refused with the rule's own error."""
    async with transaction_as(db, user, isolation=isolation) as conn:
        await conn.execute(INSERT_EVENT, vehicle, day(-10), 1000, {})
        await conn.execute(INSERT_EVENT, vehicle, day(-5), 1200, {})
        with pytest.raises(asyncpg.PostgresError, match="odometer_rollback"):
            async with conn.transaction():
                await conn.execute(INSERT_EVENT, vehicle, day(-1), 500, {})
    assert await readings(db, vehicle) == [(day(-10), 1000), (day(-5), 1200)]


# 5e: immutability must not hang on a setting clients can set -------------------------------------


async def test_a_client_cannot_switch_immutability_off(
    db: asyncpg.Pool, user: User, vehicle: uuid.UUID
) -> None:
    """As `authenticated`: set the maintenance switch, then delete the vehicle, whose events
    would cascade away. Refused; the vehicle and its events stay."""
    async with transaction_as(db, user) as conn:
        await conn.execute(INSERT_EVENT, vehicle, day(-3), 100, {})
    async with db.acquire() as conn:
        for setting in (
            "set_config('motomind.maintenance', 'on', true)",
            "set_config('motomind.maintenance', 'on', false)",
        ):
            tx = conn.transaction()
            await tx.start()
            try:
                await conn.execute(CONTEXT, json.dumps(claims_for(user)))
                await conn.execute(f"select {setting}")
                with pytest.raises(asyncpg.PostgresError, match="event_immutable"):
                    await conn.execute("delete from public.vehicles where id = $1", vehicle)
            finally:
                await tx.rollback()
        await conn.execute("reset motomind.maintenance")
    assert await readings(db, vehicle) == [(day(-3), 100)]
    assert await db.fetchval("select count(*) from public.vehicles where id = $1", vehicle) == 1


async def test_the_api_login_cannot_switch_immutability_off(
    database_url: str, user: User, vehicle: uuid.UUID, db: asyncpg.Pool
) -> None:
    """Logged in as the API's role without any SET ROLE: still no way to delete events."""
    from app.cli import with_user
    from app.database.roles import DEFAULT_API_ROLE

    async with transaction_as(db, user) as conn:
        event = await conn.fetchval(INSERT_EVENT, vehicle, day(-3), 100, {})
    api = await asyncpg.connect(with_user(database_url, DEFAULT_API_ROLE))
    try:
        await api.execute("select set_config('motomind.maintenance', 'on', false)")
        with pytest.raises(asyncpg.PostgresError):
            await api.execute("delete from public.vehicle_events where id = $1", event)
    finally:
        await api.close()
    assert await readings(db, vehicle) == [(day(-3), 100)]


async def test_the_owner_may_still_run_maintenance(
    db: asyncpg.Pool, user: User, vehicle: uuid.UUID
) -> None:
    """The twin: the schema's owner, logged in as itself, deletes with the switch on (erasing a
    tenant), and not without it."""
    async with transaction_as(db, user) as conn:
        await conn.execute(INSERT_EVENT, vehicle, day(-3), 100, {})
    async with db.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            with pytest.raises(asyncpg.PostgresError, match="event_immutable"):
                async with conn.transaction():
                    await conn.execute("delete from public.vehicles where id = $1", vehicle)
            await conn.execute("set local motomind.maintenance = 'on'")
            assert await conn.execute("delete from public.vehicles where id = $1", vehicle) == (
                "DELETE 1"
            )
        finally:
            await tx.rollback()


async def test_an_upgrade_canonicalises_corrections_stored_before(
    db: asyncpg.Pool, user: User, vehicle: uuid.UUID
) -> None:
    """A correction stored upper-case before the fix (made here by the owner's maintenance
    switch, as the old schema accepted it) is found again after the install runs."""
    from app.database.migrate import install

    async with transaction_as(db, user) as conn:
        typo = await conn.fetchval(INSERT_EVENT, vehicle, day(-10), 50000, {})
        fix = await conn.fetchval(
            INSERT_EVENT, vehicle, day(-10), 5000, {"correction_of": str(typo)}
        )
    async with db.acquire() as conn, conn.transaction():
        await conn.execute("set local motomind.maintenance = 'on'")
        await conn.execute(
            """update public.vehicle_events
               set payload = jsonb_build_object('correction_of', upper(payload ->> 'correction_of'))
               where id = $1""",
            fix,
        )
        await conn.execute(
            "update public.vehicles set current_mileage = 50000 where id = $1", vehicle
        )
    async with db.acquire() as conn:
        await install(conn)
    stored = await db.fetchval(
        "select payload ->> 'correction_of' from public.vehicle_events where id = $1", fix
    )
    assert stored == str(typo)
    current = await db.fetchval(
        "select current_mileage from public.vehicles where id = $1", vehicle
    )
    assert current == 5000
    async with transaction_as(db, user) as conn:
        await conn.execute(INSERT_EVENT, vehicle, day(-1), 6000, {})  # not blocked by the typo
