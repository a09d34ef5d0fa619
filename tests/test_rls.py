"""Tenant isolation for every table and command, with the claims set exactly as the app sets them.

Each deny has an allow twin: what tenant B cannot do to A's rows, A can.
"""

import datetime as dt
import uuid

import asyncpg
import pytest

from tests.factories import KEY_COLUMN, TABLES, Seed, seed
from tests.helpers import as_role, as_user, claims_for, create_user


@pytest.fixture
async def a(db: asyncpg.Pool) -> Seed:
    return await seed(db)


@pytest.fixture
async def b(db: asyncpg.Pool) -> Seed:
    return await seed(db)


async def count_row(conn: asyncpg.Connection, table: str, value: object) -> int:
    n: int = await conn.fetchval(
        f"select count(*) from public.{table} where {KEY_COLUMN[table]} = $1", value
    )
    return n


# SELECT -----------------------------------------------------------------------------------


@pytest.mark.parametrize("table", TABLES)
async def test_select_sees_only_own_tenant(db: asyncpg.Pool, a: Seed, b: Seed, table: str) -> None:
    async with as_user(db, a.user) as conn:
        assert await count_row(conn, table, a.row_id(table)) == 1
    async with as_user(db, b.user) as conn:
        assert await count_row(conn, table, a.row_id(table)) == 0
        assert await count_row(conn, table, b.row_id(table)) == 1
        column = "id" if table == "tenants" else "tenant_id"
        foreign = await conn.fetchval(
            f"select count(*) from public.{table} where {column} <> $1", b.user.tenant_id
        )
        assert foreign == 0


@pytest.mark.parametrize("table", TABLES)
async def test_no_claims_reads_nothing(db: asyncpg.Pool, a: Seed, table: str) -> None:
    async with as_role(db, "authenticated", None) as conn:
        assert await conn.fetchval(f"select count(*) from public.{table}") == 0
    async with as_user(db, a.user) as conn:  # twin
        assert await conn.fetchval(f"select count(*) from public.{table}") >= 1


@pytest.mark.parametrize("table", [*TABLES, "timeline_feed"])
async def test_anon_reads_nothing(db: asyncpg.Pool, a: Seed, table: str) -> None:
    async with as_role(db, "anon", None) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetchval(f"select count(*) from public.{table}")


async def test_claims_without_tenant_fall_back_to_the_profile(db: asyncpg.Pool, a: Seed) -> None:
    claims = {k: v for k, v in claims_for(a.user).items() if k != "tenant_id"}
    async with as_role(db, "authenticated", claims) as conn:
        assert await conn.fetchval("select public.current_tenant_id()") == a.user.tenant_id
        assert await count_row(conn, "vehicles", a.vehicle) == 1
    meta = claims | {"app_metadata": {"tenant_id": str(a.user.tenant_id)}, "sub": str(uuid.uuid4())}
    async with as_role(db, "authenticated", meta) as conn:
        assert await conn.fetchval("select public.current_tenant_id()") == a.user.tenant_id


@pytest.mark.parametrize("bad", ["not-a-uuid", "", 42])
async def test_invalid_tenant_claim_reads_nothing(db: asyncpg.Pool, a: Seed, bad: object) -> None:
    async with as_role(db, "authenticated", claims_for(a.user, tenant_id=bad)) as conn:
        assert await conn.fetchval("select public.current_tenant_id()") is None
        assert await count_row(conn, "vehicles", a.vehicle) == 0


async def test_user_metadata_is_never_read(db: asyncpg.Pool, a: Seed, b: Seed) -> None:
    claims = {k: v for k, v in claims_for(b.user).items() if k != "tenant_id"}
    claims["user_metadata"] = {"tenant_id": str(a.user.tenant_id)}
    async with as_role(db, "authenticated", claims) as conn:
        assert await conn.fetchval("select public.current_tenant_id()") == b.user.tenant_id


async def test_partitions_cannot_be_read_directly(db: asyncpg.Pool, a: Seed) -> None:
    year = dt.date.today().year
    async with as_user(db, a.user) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetchval(f"select count(*) from public.vehicle_events_{year}")
    async with as_user(db, a.user) as conn:
        assert await count_row(conn, "vehicle_events", a.event) == 1  # twin: via the parent


# INSERT -----------------------------------------------------------------------------------

INSERTS = {
    "garages": ("insert into public.garages (tenant_id, name) values ($1, 'G')", []),
    "vehicles": ("insert into public.vehicles (tenant_id, make) values ($1, 'VW')", []),
    "vehicle_events": (
        """insert into public.vehicle_events (tenant_id, vehicle_id, date, type, payload)
           values ($1, $2, current_date, 'document', '{"kind": "receipt"}')""",
        ["vehicle"],
    ),
    "vehicle_images": (
        """insert into public.vehicle_images (tenant_id, vehicle_id, storage_url)
           values ($1, $2, 'x/y.png')""",
        ["vehicle"],
    ),
    "reminders": (
        """insert into public.reminders (tenant_id, vehicle_id, title, due_date)
           values ($1, $2, 'Tires', current_date + 30)""",
        ["vehicle"],
    ),
    "idempotency_keys": (
        """insert into public.idempotency_keys (tenant_id, user_id, key, request_hash)
           values ($1, auth.uid(), 'k-' || gen_random_uuid(), 'h')""",
        [],
    ),
}


@pytest.mark.parametrize("table", sorted(INSERTS))
async def test_insert_only_into_own_tenant(db: asyncpg.Pool, a: Seed, b: Seed, table: str) -> None:
    sql, refs = INSERTS[table]
    args = [getattr(a, r) for r in refs]
    async with as_user(db, a.user) as conn:  # allow twin
        assert await conn.execute(sql, a.user.tenant_id, *args) == "INSERT 0 1"
    async with as_user(db, b.user) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(sql, a.user.tenant_id, *args)
    async with as_user(db, b.user) as conn:  # B into B with its own parents: allowed
        own = [getattr(b, r) for r in refs]
        assert await conn.execute(sql, b.user.tenant_id, *own) == "INSERT 0 1"


@pytest.mark.parametrize(
    "sql",
    [
        "insert into public.tenants (name) values ('mine')",
        "insert into public.profiles (id, tenant_id, email) values (auth.uid(), $1, 'x@y.z')",
    ],
)
async def test_tenants_and_profiles_are_created_only_by_sign_up(
    db: asyncpg.Pool, a: Seed, sql: str
) -> None:
    args = [a.user.tenant_id] if "$1" in sql else []
    async with as_user(db, a.user) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(sql, *args)
    # The allow path: the sign-up trigger (see test_timeline_rules::test_sign_up_*).


REFERENCES = {
    "reminders": (
        """insert into public.reminders (vehicle_id, title, due_mileage)
           values ($1, 'r', 10)""",
        "vehicle",
    ),
    "vehicle_images": (
        "insert into public.vehicle_images (vehicle_id, storage_url) values ($1, 'a.png')",
        "vehicle",
    ),
    "vehicle_events": (
        """insert into public.vehicle_events (vehicle_id, date, type, miles)
           values ($1, current_date, 'odometer', 5)""",
        "vehicle",
    ),
    "vehicles": ("insert into public.vehicles (garage_id) values ($1)", "garage"),
}


@pytest.mark.parametrize("table", sorted(REFERENCES))
async def test_references_to_another_tenant_look_like_missing_rows(
    db: asyncpg.Pool, a: Seed, b: Seed, table: str
) -> None:
    """B's own row pointing at A's parent fails exactly as for an id that does not exist."""
    sql, ref = REFERENCES[table]
    missing = uuid.uuid4()
    async with as_user(db, b.user) as conn:
        with pytest.raises(asyncpg.ForeignKeyViolationError) as theirs:
            await conn.execute(sql, getattr(a, ref))
    async with as_user(db, b.user) as conn:
        with pytest.raises(asyncpg.ForeignKeyViolationError) as nobody:
            await conn.execute(sql, missing)
    assert str(theirs.value).replace(str(getattr(a, ref)), "?") == str(nobody.value).replace(
        str(missing), "?"
    )
    async with as_user(db, b.user) as conn:  # twin: B's own parent
        assert await conn.execute(sql, getattr(b, ref)) == "INSERT 0 1"


# UPDATE -----------------------------------------------------------------------------------

UPDATES = {
    "tenants": "update public.tenants set name = 'renamed' where id = $1",
    "profiles": "update public.profiles set name = 'renamed' where id = $1",
    "garages": "update public.garages set name = 'renamed' where id = $1",
    "vehicles": "update public.vehicles set nickname = 'renamed' where id = $1",
    "vehicle_images": "update public.vehicle_images set caption = 'renamed' where id = $1",
    "reminders": "update public.reminders set title = 'renamed' where id = $1",
    "idempotency_keys": "update public.idempotency_keys set status_code = 201 where key = $1",
}


@pytest.mark.parametrize("table", sorted(UPDATES))
async def test_update_only_own_tenant(db: asyncpg.Pool, a: Seed, b: Seed, table: str) -> None:
    sql = UPDATES[table]
    async with as_user(db, b.user) as conn:
        assert await conn.execute(sql, a.row_id(table)) == "UPDATE 0"
    async with as_user(db, a.user) as conn:  # allow twin
        assert await conn.execute(sql, a.row_id(table)) == "UPDATE 1"


async def test_profile_update_only_own_row(db: asyncpg.Pool, a: Seed) -> None:
    teammate = await create_user(db, tenant_id=a.user.tenant_id)
    async with as_user(db, a.user) as conn:
        assert await count_row(conn, "profiles", teammate.id) == 1  # visible...
        sql = UPDATES["profiles"]
        assert await conn.execute(sql, teammate.id) == "UPDATE 0"  # ...but not editable
        assert await conn.execute(sql, a.user.id) == "UPDATE 1"


async def test_update_cannot_move_a_row_to_another_tenant(
    db: asyncpg.Pool, a: Seed, b: Seed
) -> None:
    async with as_user(db, a.user) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(
                "update public.vehicles set tenant_id = $1 where id = $2",
                b.user.tenant_id,
                a.vehicle,
            )


@pytest.mark.parametrize("user", ["a", "b"])
async def test_events_cannot_be_updated_or_deleted(
    db: asyncpg.Pool, a: Seed, b: Seed, user: str
) -> None:
    who = a if user == "a" else b
    for sql in [
        "update public.vehicle_events set notes = 'x' where id = $1",
        "delete from public.vehicle_events where id = $1",
    ]:
        async with as_user(db, who.user) as conn:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(sql, a.event)
    assert (
        await db.fetchval("select notes from public.vehicle_events where id = $1", a.event) is None
    )


# DELETE -----------------------------------------------------------------------------------

DELETABLE = ["garages", "vehicles", "vehicle_images", "reminders", "idempotency_keys"]


@pytest.mark.parametrize("table", DELETABLE)
async def test_delete_only_own_tenant(db: asyncpg.Pool, a: Seed, b: Seed, table: str) -> None:
    sql = f"delete from public.{table} where {KEY_COLUMN[table]} = $1"
    async with as_user(db, b.user) as conn:
        assert await conn.execute(sql, a.row_id(table)) == "DELETE 0"
    assert await count_row(db, table, a.row_id(table)) == 1
    async with as_user(db, a.user) as conn:  # allow twin (rolled back)
        assert await conn.execute(sql, a.row_id(table)) == "DELETE 1"


@pytest.mark.parametrize("table", ["tenants", "profiles"])
async def test_tenants_and_profiles_cannot_be_deleted(
    db: asyncpg.Pool, a: Seed, table: str
) -> None:
    async with as_user(db, a.user) as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(f"delete from public.{table} where id = $1", a.row_id(table))


async def test_idempotency_keys_are_per_user(db: asyncpg.Pool, a: Seed) -> None:
    teammate = await create_user(db, tenant_id=a.user.tenant_id)
    async with as_user(db, teammate) as conn:
        assert await count_row(conn, "idempotency_keys", a.key) == 0
    async with as_user(db, a.user) as conn:
        assert await count_row(conn, "idempotency_keys", a.key) == 1
