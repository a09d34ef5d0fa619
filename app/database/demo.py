"""`motomind demo`: a small, realistic tenant (2 garages, 3 vehicles, a year of timeline).

Everything is written as the demo user (role `authenticated`, its claims), so it goes through the
same RLS policies, triggers and payload checks as the API. Then the dashboard feed is refreshed
(as the service role, like the scheduler), so it is not empty for the first minutes.
"""

import asyncio
import json
import logging
import random
from datetime import date, timedelta
from typing import Any

import asyncpg

from app.core.config import Settings
from app.core.db import set_request_context

log = logging.getLogger("motomind.demo")

REFRESH_ATTEMPTS = 20
REFRESH_RETRY_S = 0.5

VEHICLES: list[dict[str, Any]] = [
    {
        "garage": 0,
        "year": 2019,
        "make": "Toyota",
        "model": "RAV4",
        "nickname": "Family hauler",
        "vin": "2T3W1RFV8KW012345",
        "license_plate": "MOTO-101",
        "miles": 41_000,
        "mpd": 38,
    },
    {
        "garage": 0,
        "year": 2015,
        "make": "Honda",
        "model": "Civic",
        "nickname": "Commuter",
        "vin": "19XFB2F59FE012345",
        "license_plate": "MOTO-102",
        "miles": 88_000,
        "mpd": 45,
    },
    {
        "garage": 1,
        "year": 1972,
        "make": "Ford",
        "model": "Bronco",
        "nickname": "Weekend toy",
        "vin": None,
        "license_plate": "CLASSIC",
        "miles": 112_000,
        "mpd": 4,
    },
]


def _events(start: date, miles: int, per_day: int, rng: random.Random) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    day = start
    while day <= date.today():
        miles += per_day * 14 + rng.randint(0, per_day * 4)
        volume = round(rng.uniform(8, 14), 2)
        price = round(rng.uniform(3.1, 4.2), 3)
        events.append(
            {
                "type": "fuel",
                "date": day,
                "miles": miles,
                "payload": {
                    "volume": volume,
                    "unit": "gal",
                    "price_per_unit": price,
                    "total_cost": round(volume * price, 2),
                    "currency": "USD",
                    "station": rng.choice(["Shell", "Costco", "Chevron"]),
                },
            }
        )
        if rng.random() < 0.15:
            events.append(
                {
                    "type": "maintenance",
                    "date": day,
                    "miles": miles,
                    "payload": {
                        "service": "oil_change",
                        "cost": 79.0,
                        "currency": "USD",
                        "shop": "Main St Auto",
                        "items": [
                            {"name": "5W-30 oil", "cost": 45.0},
                            {"name": "Filter", "cost": 12.0},
                        ],
                    },
                }
            )
        day += timedelta(days=14 + rng.randint(0, 6))
    return events


async def load_demo(
    conn: asyncpg.Connection, *, user_id: str, tenant_id: str, settings: Settings
) -> int:
    """Load the demo rows for the user's tenant; returns the number of timeline events."""
    rng = random.Random(7)  # noqa: S311 - demo data, not secrets
    claims = {"sub": user_id, "role": "authenticated", "tenant_id": tenant_id}
    count = 0
    async with conn.transaction():
        await set_request_context(conn, role="authenticated", claims=claims, settings=settings)
        # A bulk load, not a request: it may wait for a feed refresh or partition maintenance
        # that is running (the API's short lock timeout made it fail then).
        await conn.execute("set local statement_timeout = '60s'; set local lock_timeout = '30s'")
        garages = [
            await conn.fetchval(
                "insert into public.garages (name, description) values ($1, $2) returning id",
                name,
                description,
            )
            for name, description in (("Home", "The driveway"), ("Storage", "Rented unit"))
        ]
        start = date.today() - timedelta(days=365)
        await conn.execute("select public.ensure_event_partition_for($1)", start)
        for spec in VEHICLES:
            vehicle_id = await conn.fetchval(
                """insert into public.vehicles
                     (garage_id, year, make, model, nickname, vin, license_plate, timezone)
                   values ($1, $2, $3, $4, $5, $6, $7, 'America/New_York') returning id""",
                garages[spec["garage"]],
                spec["year"],
                spec["make"],
                spec["model"],
                spec["nickname"],
                spec["vin"],
                spec["license_plate"],
            )
            events = _events(start, spec["miles"], spec["mpd"], rng)
            events.append(
                {
                    "type": "inspection",
                    "date": start + timedelta(days=40),
                    "miles": None,
                    "payload": {
                        "kind": "safety",
                        "result": "pass",
                        "expires_on": str(start + timedelta(days=405)),
                    },
                }
            )
            events.append(
                {
                    "type": "document",
                    "date": start + timedelta(days=3),
                    "miles": None,
                    "payload": {
                        "kind": "insurance",
                        "title": "Policy 2026",
                        "expires_on": str(start + timedelta(days=368)),
                    },
                }
            )
            for event in sorted(events, key=lambda e: (e["date"], e["miles"] or 0)):
                await conn.execute(
                    """insert into public.vehicle_events (vehicle_id, date, type, miles, payload)
                       values ($1, $2, $3, $4, $5::jsonb)""",
                    vehicle_id,
                    event["date"],
                    event["type"],
                    event["miles"],
                    json.dumps(event["payload"]),
                )
                count += 1
            await conn.execute(
                """insert into public.reminders (vehicle_id, title, due_mileage, due_date)
                   values ($1, 'Oil change', $2, $3)""",
                vehicle_id,
                spec["miles"] + 5000 + spec["mpd"] * 400,
                date.today() + timedelta(days=45),
            )
    if not await refresh_feed(conn):
        log.warning("the feed stays empty until its next scheduled refresh (within 5 minutes)")
    return count


async def refresh_feed(conn: asyncpg.Connection) -> bool:
    """Refresh the dashboard feed now, as the maintenance scheduler does, so that
    `/v1/timeline/feed` shows the demo at once. False if it failed or stayed busy."""
    for _ in range(REFRESH_ATTEMPTS):
        async with conn.transaction():
            await conn.execute("select set_config('role', 'service_role', true)")
            result = await conn.fetchrow(
                "select r ->> 'skipped' = 'true' as skipped, r ->> 'error' as error"
                " from public.refresh_timeline() as r"
            )
        assert result is not None
        if result["error"]:
            log.warning("feed refresh failed: %s", result["error"])
            return False
        if not result["skipped"]:
            return True
        # A scheduled refresh holds the lock; it may have started before the demo's rows were
        # committed, so refresh again once it is done.
        await asyncio.sleep(REFRESH_RETRY_S)
    return False
