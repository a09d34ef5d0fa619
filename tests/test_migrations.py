"""Versioned migrations: each applied once and recorded, a database of a newer release refused,
/readyz and `db status` saying applied vs expected, and the upgrade of a database installed by
the previous release (tests/upgrade/release_021e0e3: its sql/ as it was), with data in every
table, to this one: nothing lost, every row still readable through the API."""

import datetime as dt
import hashlib
import itertools
import secrets
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from pydantic import SecretStr

from app.cli import with_user
from app.core.config import Settings
from app.core.db import dsn_with
from app.database.migrate import (
    SCHEMA_VERSION,
    SchemaNewerError,
    install,
    migrations,
)
from app.database.roles import DEFAULT_API_ROLE
from app.main import create_app
from tests.helpers import TEST_JWT_SECRET, User, auth

RELEASE = Path(__file__).with_name("upgrade") / "release_021e0e3"
TABLES = [
    "public.tenants",
    "public.profiles",
    "public.garages",
    "public.vehicles",
    "public.vehicle_events",
    "public.vehicle_images",
    "public.reminders",
    "public.idempotency_keys",
    "auth.users",
    "private.app_secrets",
]


@pytest.fixture
async def fresh_database(server_url: str) -> AsyncIterator[str]:
    name = f"motomind_migrate_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f'create database "{name}"')
    try:
        yield dsn_with(server_url, database=name)
    finally:
        await admin.execute(f'drop database if exists "{name}" with (force)')
        await admin.close()


async def connect(url: str) -> asyncpg.Connection:
    from app.core.db import _init_connection as json_codecs  # the app's own jsonb codec, for tests

    conn = await asyncpg.connect(url)
    await json_codecs(conn)
    return conn


async def readyz(url: str) -> httpx.Response:
    settings = Settings(
        database_url=with_user(url, DEFAULT_API_ROLE),
        supabase_jwt_secret=SecretStr(TEST_JWT_SECRET),
        maintenance_scheduler=False,
    )
    app = create_app(settings)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.get("/readyz")


async def test_each_migration_is_applied_once_and_recorded(fresh_database: str) -> None:
    conn = await connect(fresh_database)
    try:
        applied = await install(conn)
        assert [m.version for m in applied] == [m.version for m in migrations()]
        assert await install(conn) == []
        rows = await conn.fetch(
            "select version, name, adopted from private.schema_migrations order by version"
        )
        assert [(r["version"], r["name"], r["adopted"]) for r in rows] == [
            (m.version, m.name, False) for m in migrations()
        ]
        assert await conn.fetchval("select public.schema_version()") == SCHEMA_VERSION
    finally:
        await conn.close()
    ready = await readyz(fresh_database)
    assert ready.status_code == 200, ready.text
    assert ready.json() == {
        "status": "ready",
        "schema_version": SCHEMA_VERSION,
        "expected": SCHEMA_VERSION,
    }


async def test_a_newer_release_s_database_is_refused(fresh_database: str) -> None:
    conn = await connect(fresh_database)
    try:
        await install(conn)
        await conn.execute(
            "insert into private.schema_migrations (version, name) values ('29991231000000', 'x')"
        )
        with pytest.raises(SchemaNewerError, match="29991231000000"):
            await install(conn)
    finally:
        await conn.close()
    ready = await readyz(fresh_database)
    assert ready.status_code == 503
    assert "ahead" in ready.json()["detail"]


async def test_a_database_behind_is_not_ready_until_db_init(fresh_database: str) -> None:
    """The previous release's database: /readyz waits for `db init`, which brings it up."""
    conn = await connect(fresh_database)
    try:
        await install_release(conn)
        behind = await readyz(fresh_database)
        assert behind.status_code == 503
        assert "behind" in behind.json()["detail"]
        await install(conn)
    finally:
        await conn.close()
    assert (await readyz(fresh_database)).status_code == 200


# --- The upgrade from the previous release, with data ----------------------------------------


async def install_release(conn: asyncpg.Connection) -> None:
    """As that release's `db init` did: every file in order, in one transaction."""
    async with conn.transaction():
        for path in sorted(RELEASE.glob("*.sql")):
            await conn.execute(path.read_text())


async def seed_release_data(conn: asyncpg.Connection) -> dict[str, Any]:
    """A row in every table, written as clients of that release could write them."""
    user_id = await conn.fetchval(
        "insert into auth.users (email) values ($1) returning id",
        f"upgrade-{uuid.uuid4().hex[:8]}@example.com",
    )
    tenant = await conn.fetchval("select tenant_id from public.profiles where id = $1", user_id)
    garage = await conn.fetchval(
        "insert into public.garages (tenant_id, name) values ($1, 'Home') returning id", tenant
    )
    vehicle = await conn.fetchval(
        """insert into public.vehicles (tenant_id, garage_id, make, model, year, timezone)
           values ($1, $2, 'Volvo', '240', 1988, 'Europe/Stockholm') returning id""",
        tenant,
        garage,
    )
    for day in (dt.date(1989, 6, 1), dt.date(2024, 5, 1)):  # years that release made on demand
        await conn.execute("select public.ensure_event_partition_for($1)", day)
    events = []
    for date, miles in ((dt.date(1989, 6, 1), 1000), (dt.date(2024, 5, 1), 90000)):
        events.append(
            await conn.fetchval(
                """insert into public.vehicle_events (tenant_id, vehicle_id, date, type, miles)
                   values ($1, $2, $3, 'odometer', $4) returning id""",
                tenant,
                vehicle,
                date,
                miles,
            )
        )
    # A correction spelled in upper case: the release accepted it from direct SQL.
    correction = await conn.fetchval(
        """insert into public.vehicle_events (tenant_id, vehicle_id, date, type, miles, payload)
           values ($1, $2, '2024-05-01', 'odometer', 9000, $3) returning id""",
        tenant,
        vehicle,
        {"correction_of": str(events[1]).upper()},
    )
    fuel = await conn.fetchval(
        """insert into public.vehicle_events (tenant_id, vehicle_id, date, type, miles, payload)
           values ($1, $2, current_date, 'fuel', 95000, '{"volume": 40, "unit": "l"}')
           returning id""",
        tenant,
        vehicle,
    )
    reminder = await conn.fetchval(
        """insert into public.reminders (tenant_id, vehicle_id, title, due_mileage)
           values ($1, $2, 'Timing belt', 100000) returning id""",
        tenant,
        vehicle,
    )
    image = await conn.fetchval(
        """insert into public.vehicle_images (tenant_id, vehicle_id, storage_url, caption)
           values ($1, $2, 'vehicles/240.jpg', 'In the snow') returning id""",
        tenant,
        vehicle,
    )
    await conn.execute(
        """insert into public.idempotency_keys (tenant_id, user_id, key, request_hash,
             status_code, response_body, response_headers, completed_at)
           values ($1, $2, 'release-key', 'hash', 201, '{}', '{}', now())""",
        tenant,
        user_id,
    )
    # A retryable create, stored as that release did: fingerprinted over the parsed model.
    release_hash = hashlib.sha256(
        b'POST /v1/garages\n{"description":null,"name":"Shop"}'
    ).hexdigest()
    await conn.execute(
        """insert into public.idempotency_keys (tenant_id, user_id, key, request_hash,
             status_code, response_body, response_headers, completed_at)
           values ($1, $2, 'release-garage', $3, 201, $4, $5, now())""",
        tenant,
        user_id,
        release_hash,
        {"id": str(garage), "name": "Shop"},
        {"Location": f"/v1/garages/{garage}"},
    )
    email = await conn.fetchval("select email from auth.users where id = $1", user_id)
    return {
        "user": User(id=user_id, email=email, tenant_id=tenant),
        "garage": garage,
        "vehicle": vehicle,
        "events": [*events, correction, fuel],
        "typo": events[1],
        "correction": correction,
        "reminder": reminder,
        "image": image,
    }


async def counts(conn: asyncpg.Connection) -> dict[str, int]:
    return {table: await conn.fetchval(f"select count(*) from {table}") for table in TABLES}


async def test_the_previous_release_upgrades_with_its_data(fresh_database: str) -> None:
    conn = await connect(fresh_database)
    try:
        await install_release(conn)
        seeded = await seed_release_data(conn)
        before = await counts(conn)
        key = await conn.fetchval("select value from private.app_secrets")
        applied = await install(conn)
        # The release's tables are the baseline: adopted, not run; the rest applied.
        assert [m.version for m in applied] == [m.version for m in migrations()[1:]]
        adopted = await conn.fetchval(
            "select adopted from private.schema_migrations where version = $1",
            migrations()[0].version,
        )
        assert adopted is True
        assert await counts(conn) == before
        assert await conn.fetchval("select value from private.app_secrets") == key
        # The year made on demand stays; history around it is covered again, gap by gap.
        ranges = await conn.fetch(
            "select partition::text, range_start, range_end from private.event_partition_ranges()"
        )
        assert "vehicle_events_1989" in [r["partition"] for r in ranges]
        assert ranges[0]["range_start"] == dt.date(1900, 1, 1)
        for earlier, later in itertools.pairwise(ranges):
            assert earlier["range_end"] == later["range_start"]
        # The upper-case correction is found again: the typo is superseded.
        assert (
            await conn.fetchval(
                "select current_mileage from public.vehicles where id = $1", seeded["vehicle"]
            )
            == 95000
        )
    finally:
        await conn.close()

    settings = Settings(
        database_url=with_user(fresh_database, DEFAULT_API_ROLE),
        supabase_jwt_secret=SecretStr(TEST_JWT_SECRET),
        maintenance_scheduler=False,
    )
    app = create_app(settings)
    user: User = seeded["user"]
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            headers = auth(user)
            assert (await client.get("/readyz")).status_code == 200
            for path in (
                f"/v1/garages/{seeded['garage']}",
                f"/v1/vehicles/{seeded['vehicle']}",
                f"/v1/reminders/{seeded['reminder']}",
                f"/v1/images/{seeded['image']}",
                *(f"/v1/timeline/{event}" for event in seeded["events"]),
                "/v1/me",
                "/v1/tenant",
            ):
                resp = await client.get(path, headers=headers)
                assert resp.status_code == 200, (path, resp.text)
            # An Idempotency-Key stored before the upgrade still replays after it.
            retry = await client.post(
                "/v1/garages",
                json={"name": "Shop"},
                headers=headers | {"Idempotency-Key": "release-garage"},
            )
            assert retry.status_code == 201, retry.text
            assert retry.headers["Idempotent-Replayed"] == "true"
            assert retry.json() == {"id": str(seeded["garage"]), "name": "Shop"}
            page = await client.get(f"/v1/vehicles/{seeded['vehicle']}/timeline", headers=headers)
            assert page.status_code == 200, page.text
            items = {item["id"]: item for item in page.json()["items"]}
            assert set(items) == {str(e) for e in seeded["events"]}
            assert items[str(seeded["typo"])]["superseded_by"] == str(seeded["correction"])
            # And the history keeps growing: a new reading, and one back in 1950.
            for body in (
                {"vehicle_id": str(seeded["vehicle"]), "type": "odometer", "miles": 96000},
                {
                    "vehicle_id": str(seeded["vehicle"]),
                    "type": "maintenance",
                    "date": "1950-01-01",
                    "payload": {"service": "restoration"},
                },
            ):
                resp = await client.post("/v1/timeline", json=body, headers=headers)
                assert resp.status_code == 201, resp.text
