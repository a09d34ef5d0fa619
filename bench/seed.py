"""Seed a benchmark database: N tenants x M vehicles x K events, loaded with COPY.

Users are created the API's way (insert into auth.users; the sign-up trigger makes the tenant and
the profile). Vehicles, reminders and events are bulk-loaded as the owner with
`session_replication_role = replica`, which skips the per-row triggers (validation, audit, the
odometer rule, foreign keys): the generator only makes rows those triggers would accept (payloads
valid for their type, odometer non-decreasing with date per vehicle, ids inside their tenant).
Derived state is then computed in one statement each (vehicles.current_mileage, the feed), and
everything is ANALYZEd.

Writes `<out>/<database>.json`: the tokens, tenants, vehicles and a cursor position per vehicle,
for the load generators.

    python -m bench.seed --tenants 100 --vehicles 10 --events 500 --database motomind_bench
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from pydantic import SecretStr

from app.core.auth import issue_token
from app.core.config import Settings
from app.core.db import dsn_with
from app.database.migrate import install

BENCH_SECRET = "bench-secret-" + "b" * 40
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
OUT_DIR = Path(__file__).resolve().parent / ".data"
YEARS = 6  # events spread over the last YEARS years

TYPES = ("fuel", "maintenance", "odometer", "document", "reminder", "inspection")
TYPE_WEIGHTS = (55, 14, 12, 7, 6, 6)
MAKES = (
    ("Toyota", ("Corolla", "Camry", "RAV4", "Tacoma")),
    ("Honda", ("Civic", "Accord", "CR-V")),
    ("Ford", ("F-150", "Focus", "Mustang")),
    ("Subaru", ("Outback", "Forester")),
    ("Volkswagen", ("Golf", "Passat")),
    ("Harley-Davidson", ("Sportster", "Fat Boy")),
)
ZONES = ("America/New_York", "America/Chicago", "America/Los_Angeles", "Europe/Berlin")
VIN_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
SERVICES = ("Oil change", "Tire rotation", "Brake pads", "Coolant flush", "Chain adjustment")
STATIONS = ("Shell", "Chevron", "BP", "Costco", "Aral")
DOC_KINDS = ("registration", "insurance", "receipt", "manual", "other")

EVENT_COLUMNS = (
    "id",
    "date",
    "tenant_id",
    "vehicle_id",
    "type",
    "miles",
    "payload",
    "notes",
    "created_at",
    "created_by",
)


@dataclass(frozen=True)
class Shape:
    tenants: int
    vehicles: int  # per tenant
    events: int  # per vehicle

    @property
    def total_events(self) -> int:
        return self.tenants * self.vehicles * self.events


# --scale presets: the same per-vehicle shape grows with the number of tenants and the history.
SCALES = {
    "100k": Shape(100, 10, 100),
    "1m": Shape(400, 10, 250),
    "10m": Shape(2000, 10, 500),
}


def _uuids(n: int) -> list[uuid.UUID]:
    raw = os.urandom(16 * n)
    return [uuid.UUID(bytes=raw[i : i + 16], version=4) for i in range(0, 16 * n, 16)]


def _vin(rng: random.Random) -> str:
    return "".join(rng.choice(VIN_CHARS) for _ in range(17))


def _payload(rng: random.Random, type_: str, day: date, reminder_id: uuid.UUID) -> str:
    if type_ == "fuel":
        volume = round(rng.uniform(3, 20), 2)
        price = round(rng.uniform(2.9, 5.2), 3)
        return json.dumps(
            {
                "volume": volume,
                "unit": "gal",
                "price_per_unit": price,
                "total_cost": round(volume * price, 2),
                "currency": "USD",
                "full_tank": rng.random() < 0.8,
                "station": rng.choice(STATIONS),
            }
        )
    if type_ == "maintenance":
        cost = round(rng.uniform(20, 900), 2)
        return json.dumps(
            {
                "service": rng.choice(SERVICES),
                "items": [{"name": "parts", "cost": round(cost * 0.4, 2)}],
                "cost": cost,
                "currency": "USD",
                "shop": "Main St Garage",
            }
        )
    if type_ == "odometer":
        return "{}"
    if type_ == "document":
        return json.dumps(
            {
                "kind": rng.choice(DOC_KINDS),
                "title": f"Document {day.year}",
                "storage_url": f"docs/{day.isoformat()}.pdf",
                "expires_on": (day + timedelta(days=365)).isoformat(),
            }
        )
    if type_ == "reminder":
        return json.dumps(
            {"reminder_id": str(reminder_id), "action": rng.choice(("created", "snoozed"))}
        )
    return json.dumps(
        {
            "kind": "state safety",
            "result": "pass" if rng.random() < 0.9 else "fail",
            "expires_on": (day + timedelta(days=365)).isoformat(),
            "inspector": "DMV",
        }
    )


def vehicle_events(
    rng: random.Random,
    *,
    tenant_id: uuid.UUID,
    vehicle_id: uuid.UUID,
    user_id: uuid.UUID,
    reminder_id: uuid.UUID,
    count: int,
    today: date,
) -> Iterator[tuple[Any, ...]]:
    """One vehicle's history: dates over up to YEARS years, odometer non-decreasing with date."""
    span = rng.randint(365, YEARS * 365 - 1)
    offsets = sorted(rng.randrange(span) for _ in range(count))
    start = today - timedelta(days=span)
    miles = rng.randint(0, 60_000)
    per_day = rng.uniform(10, 45)
    last = 0
    types = rng.choices(TYPES, TYPE_WEIGHTS, k=count)
    ids = _uuids(count)
    for i, offset in enumerate(offsets):
        miles += int((offset - last) * per_day)
        last = offset
        day = start + timedelta(days=offset)
        type_ = types[i]
        reading = miles if type_ in ("fuel", "odometer", "maintenance", "inspection") else None
        created_at = datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(
            seconds=rng.randrange(6 * 3600, 22 * 3600)
        )
        notes = "from the bench seed" if rng.random() < 0.1 else None
        yield (
            ids[i],
            day,
            tenant_id,
            vehicle_id,
            type_,
            reading,
            _payload(rng, type_, day, reminder_id),
            notes,
            created_at,
            user_id,
        )


async def _ensure_database(server: str, database: str, *, fresh: bool) -> str:
    admin = await asyncpg.connect(server)
    try:
        exists = await admin.fetchval("select 1 from pg_database where datname = $1", database)
        if exists and fresh:
            await admin.execute(f'drop database "{database}" with (force)')
            exists = None
        if not exists:
            await admin.execute(f'create database "{database}"')
    finally:
        await admin.close()
    return dsn_with(server, database=database)


async def _seeded_shape(conn: asyncpg.Connection) -> dict[str, Any] | None:
    exists = await conn.fetchval("select to_regclass('bench.meta') is not null")
    if not exists:
        return None
    raw = await conn.fetchval("select shape from bench.meta")
    return json.loads(raw) if raw else None


async def seed(server: str, database: str, shape: Shape, *, seed_value: int = 7) -> Path:
    """Seed (unless the database already holds this shape) and write the targets file."""
    dsn = await _ensure_database(server, database, fresh=False)
    conn = await asyncpg.connect(dsn)
    want = {"tenants": shape.tenants, "vehicles": shape.vehicles, "events": shape.events}
    try:
        if await _seeded_shape(conn) != want:
            await conn.close()
            dsn = await _ensure_database(server, database, fresh=True)
            conn = await asyncpg.connect(dsn)
            await _load(conn, shape, seed_value)
            await conn.execute("create schema bench; create table bench.meta (shape text)")
            await conn.execute("insert into bench.meta values ($1)", json.dumps(want))
        return await _write_targets(conn, database)
    finally:
        await conn.close()


async def _load(conn: asyncpg.Connection, shape: Shape, seed_value: int) -> None:
    rng = random.Random(seed_value)
    t0 = time.perf_counter()
    await install(conn)
    today: date = await conn.fetchval("select current_date")
    for year in range(today.year - YEARS, today.year + 1):
        await conn.execute("select private.ensure_event_partition($1)", year)

    # Users, the API's way: the sign-up trigger creates tenant and profile.
    tenant_ids = _uuids(shape.tenants)
    user_ids = _uuids(shape.tenants)
    await conn.execute(
        """insert into auth.users (id, email, raw_app_meta_data)
           select u, 'bench-' || n || '@example.com', jsonb_build_object('tenant_id', t)
           from unnest($1::uuid[], $2::uuid[]) with ordinality as x(u, t, n)""",
        user_ids,
        tenant_ids,
    )
    print(f"  users+tenants: {shape.tenants} in {time.perf_counter() - t0:.1f}s", flush=True)

    vehicles: list[tuple[Any, ...]] = []
    reminders: list[tuple[Any, ...]] = []
    owners: list[tuple[uuid.UUID, uuid.UUID, uuid.UUID, uuid.UUID]] = []
    for tenant_id, user_id in zip(tenant_ids, user_ids, strict=True):
        for n, (vehicle_id, reminder_id) in enumerate(
            zip(_uuids(shape.vehicles), _uuids(shape.vehicles), strict=True)
        ):
            make, models = rng.choice(MAKES)
            created = datetime.now(UTC) - timedelta(days=YEARS * 365, minutes=n)
            vehicles.append(
                (
                    vehicle_id,
                    tenant_id,
                    rng.randint(1995, today.year),
                    make,
                    rng.choice(models),
                    _vin(rng),
                    f"BN{rng.randrange(10**6):06d}",
                    f"Car {n + 1}",
                    rng.choice(ZONES),
                    created,
                    created,
                    user_id,
                )
            )
            reminders.append((reminder_id, tenant_id, vehicle_id, "Oil change", 150_000, user_id))
            owners.append((tenant_id, vehicle_id, user_id, reminder_id))

    async with conn.transaction():
        await conn.execute("set local session_replication_role = replica")
        await conn.copy_records_to_table(
            "vehicles",
            schema_name="public",
            records=vehicles,
            columns=[
                "id",
                "tenant_id",
                "year",
                "make",
                "model",
                "vin",
                "license_plate",
                "nickname",
                "timezone",
                "created_at",
                "updated_at",
                "created_by",
            ],
        )
        await conn.copy_records_to_table(
            "reminders",
            schema_name="public",
            records=reminders,
            columns=["id", "tenant_id", "vehicle_id", "title", "due_mileage", "created_by"],
        )
    print(f"  vehicles: {len(vehicles)} in {time.perf_counter() - t0:.1f}s", flush=True)

    # Events: a generator streamed into COPY (Python generates while the server inserts).
    def records() -> Iterator[tuple[Any, ...]]:
        for tenant_id, vehicle_id, user_id, reminder_id in owners:
            yield from vehicle_events(
                rng,
                tenant_id=tenant_id,
                vehicle_id=vehicle_id,
                user_id=user_id,
                reminder_id=reminder_id,
                count=shape.events,
                today=today,
            )

    batch: list[tuple[Any, ...]] = []
    loaded = 0
    async with conn.transaction():
        await conn.execute("set local session_replication_role = replica")
        await conn.execute("set local maintenance_work_mem = '1GB'")
        # Secondary indexes are built once after the load (same definitions, from the catalog);
        # the constraint-backed ones (primary key, unique) stay and are checked row by row.
        secondary = await conn.fetch(
            """select c.relname, pg_get_indexdef(i.indexrelid) as def
               from pg_index i join pg_class c on c.oid = i.indexrelid
               where i.indrelid = 'public.vehicle_events'::regclass
                 and not exists (select 1 from pg_constraint k where k.conindid = i.indexrelid)"""
        )
        for index in secondary:
            await conn.execute(f'drop index public."{index["relname"]}"')
        for record in records():
            batch.append(record)
            if len(batch) >= 200_000:
                await conn.copy_records_to_table(
                    "vehicle_events", schema_name="public", records=batch, columns=EVENT_COLUMNS
                )
                loaded += len(batch)
                batch = []
                rate = loaded / (time.perf_counter() - t0)
                print(f"  events: {loaded:,} ({rate:,.0f}/s)", flush=True)
        if batch:
            await conn.copy_records_to_table(
                "vehicle_events", schema_name="public", records=batch, columns=EVENT_COLUMNS
            )
            loaded += len(batch)
        for index in secondary:
            await conn.execute(index["def"].replace(" ON ONLY ", " ON ", 1))
        print(f"  indexes rebuilt: {time.perf_counter() - t0:.1f}s", flush=True)
        # Derived state the after-insert trigger would have kept: one statement.
        await conn.execute(
            """update public.vehicles v set current_mileage = m.miles
               from (select vehicle_id, max(miles) as miles from public.vehicle_events
                     where miles is not null group by vehicle_id) m
               where v.id = m.vehicle_id"""
        )
    print(f"  events: {loaded:,} in {time.perf_counter() - t0:.1f}s", flush=True)
    await conn.execute("vacuum analyze")
    await conn.execute("select public.refresh_timeline()")
    print(f"  vacuum analyze + feed: {time.perf_counter() - t0:.1f}s", flush=True)


def bench_settings() -> Settings:
    return Settings(supabase_jwt_secret=SecretStr(BENCH_SECRET), maintenance_scheduler=False)


async def _write_targets(conn: asyncpg.Connection, database: str) -> Path:
    """Per tenant: a token; per vehicle: the position after its first page (for cursor pages)."""
    settings = bench_settings()
    users = await conn.fetch(
        "select p.id, p.tenant_id, p.email from public.profiles p order by p.email"
    )
    rows = await conn.fetch(
        """select v.tenant_id, v.id,
                  p.date as after_date, p.created_at as after_created_at, p.id as after_id
           from public.vehicles v
           cross join lateral (
             select e.date, e.created_at, e.id from public.vehicle_events e
             where e.tenant_id = v.tenant_id and e.vehicle_id = v.id
             order by e.date desc, e.created_at desc, e.id desc offset 49 limit 1) p
           order by v.tenant_id, v.id"""
    )
    by_tenant: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        by_tenant.setdefault(str(r["tenant_id"]), []).append(
            {
                "id": str(r["id"]),
                "after_date": r["after_date"].isoformat(),
                "after_created_at": r["after_created_at"].isoformat(),
                "after_id": str(r["after_id"]),
            }
        )
    tenants = []
    for u in users:
        tenant = str(u["tenant_id"])
        claims = {"email": u["email"], "tenant_id": tenant}
        token = issue_token(
            settings, sub=str(u["id"]), role="authenticated", ttl=86400, extra=claims
        )
        tenants.append(
            {
                "user_id": str(u["id"]),
                "tenant_id": tenant,
                "email": u["email"],
                "token": token,
                "claims": {
                    "sub": str(u["id"]),
                    "role": "authenticated",
                    "aud": "authenticated",
                    **claims,
                },
                "vehicles": by_tenant.get(tenant, []),
            }
        )
    OUT_DIR.mkdir(exist_ok=True)
    path = OUT_DIR / f"{database}.json"
    path.write_text(json.dumps({"database": database, "tenants": tenants}))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default=os.environ.get("BENCH_SERVER_URL", DEFAULT_SERVER))
    parser.add_argument("--database", default="motomind_bench")
    parser.add_argument("--tenants", type=int, default=100)
    parser.add_argument("--vehicles", type=int, default=10)
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--scale", choices=sorted(SCALES), help="a preset shape instead")
    args = parser.parse_args()
    shape = SCALES[args.scale] if args.scale else Shape(args.tenants, args.vehicles, args.events)
    t0 = time.perf_counter()
    path = asyncio.run(seed(args.server, args.database, shape))
    print(f"{shape.total_events:,} events ready in {time.perf_counter() - t0:.1f}s; {path}")


if __name__ == "__main__":
    main()
