"""The feed: refreshed into private.timeline_feed, read through public.timeline_feed, which shows
only the caller's tenant; the refresh is logged and mv_freshness reports it."""

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from tests.helpers import User, as_role, as_user, create_user


def day(offset: int) -> dt.date:
    return dt.date.today() + dt.timedelta(days=offset)


async def add(
    db: asyncpg.Pool,
    user: User,
    vehicle: uuid.UUID,
    date: dt.date,
    type_: str,
    miles: int | None,
    payload: dict[str, Any],
) -> uuid.UUID:
    await db.execute("select public.ensure_event_partition_for($1)", date)
    eid: uuid.UUID = await db.fetchval(
        """insert into public.vehicle_events (tenant_id, vehicle_id, date, type, miles, payload)
           values ($1, $2, $3, $4, $5, $6) returning id""",
        user.tenant_id,
        vehicle,
        date,
        type_,
        miles,
        payload,
    )
    return eid


async def make_vehicle(db: asyncpg.Pool, user: User) -> uuid.UUID:
    vid: uuid.UUID = await db.fetchval(
        "insert into public.vehicles (tenant_id, make) values ($1, 'Mazda') returning id",
        user.tenant_id,
    )
    return vid


@pytest.fixture
async def world(db: asyncpg.Pool) -> dict[str, Any]:
    a, b = await create_user(db), await create_user(db)
    va, vb = await make_vehicle(db, a), await make_vehicle(db, b)
    await add(db, a, va, day(-10), "odometer", 1000, {})
    await add(db, a, va, day(-9), "fuel", 1100, {"volume": 10, "total_cost": 40})
    typo = await add(db, a, va, day(-8), "fuel", 1200, {"volume": 12, "total_cost": 999})
    await add(
        db,
        a,
        va,
        day(-8),
        "fuel",
        1200,
        {"volume": 12, "total_cost": 50, "correction_of": str(typo)},
    )
    await add(db, a, va, day(-7), "maintenance", None, {"service": "oil_change", "cost": 120.5})
    await add(db, b, vb, day(-3), "odometer", 7, {})
    result = await db.fetchval("select public.refresh_timeline()")
    assert result["ok"] is True, result
    return {"a": a, "b": b, "va": va, "vb": vb}


async def test_each_tenant_sees_only_its_own_feed(db: asyncpg.Pool, world: dict[str, Any]) -> None:
    async with as_user(db, world["b"]) as conn:
        rows = await conn.fetch("select * from public.timeline_feed")
        assert [r["vehicle_id"] for r in rows] == [world["vb"]]
        assert (
            await conn.fetchval(
                "select count(*) from public.timeline_feed where vehicle_id = $1", world["va"]
            )
            == 0
        )
    async with as_user(db, world["a"]) as conn:  # twin
        row = await conn.fetchrow(
            "select * from public.timeline_feed where vehicle_id = $1", world["va"]
        )
    assert row is not None
    assert row["tenant_id"] == world["a"].tenant_id
    assert row["event_count"] == 4  # the superseded typo is left out
    assert row["fuel_count"] == 2
    assert row["odometer_count"] == 1
    assert row["maintenance_count"] == 1
    assert row["fuel_spend"] == Decimal("90")
    assert row["maintenance_spend"] == Decimal("120.5")
    assert row["last_miles"] == 1200
    assert row["last_event_date"] == day(-7)


async def test_feed_without_claims_is_empty(db: asyncpg.Pool, world: dict[str, Any]) -> None:
    async with as_role(db, "authenticated", None) as conn:
        assert await conn.fetchval("select count(*) from public.timeline_feed") == 0


async def test_the_private_view_and_the_refresh_are_out_of_reach(
    db: asyncpg.Pool, world: dict[str, Any]
) -> None:
    for sql in [
        "select count(*) from private.timeline_feed",
        "select public.refresh_timeline()",
        "select * from public.mv_freshness",
    ]:
        async with as_user(db, world["a"]) as conn:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetchval(sql)


async def test_mv_freshness_shows_the_run(db: asyncpg.Pool, world: dict[str, Any]) -> None:
    async with as_role(db, "service_role") as conn:
        result = await conn.fetchval("select public.refresh_timeline()")
        assert result["ok"] is True and result["rows"] >= 2
        row = await conn.fetchrow("select * from public.mv_freshness")
    assert row is not None
    assert row["is_populated"] is True
    assert row["last_run_ok"] is True
    assert row["last_refreshed_at"] is not None
    assert row["last_rows"] >= 2
    assert row["last_duration_ms"] >= 0
    assert row["age"] < dt.timedelta(minutes=5)


async def test_scheduled_maintenance_for_service_role(db: asyncpg.Pool) -> None:
    async with as_role(db, "service_role") as conn:
        jobs = await conn.fetchval("select public.run_scheduled_maintenance()")
        assert [j["job"] for j in jobs] == ["create_next_year_partition", "refresh_timeline"]
        assert all(j["ok"] for j in jobs)
        health = await conn.fetch("select * from public.db_health_stats")
        assert "vehicles" in {r["table_name"] for r in health}
        coverage = await conn.fetch("select * from public.partition_coverage where required")
        assert len(coverage) == 3 and all(r["covered"] for r in coverage)
