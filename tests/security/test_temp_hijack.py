"""Finding 5a: a caller's temporary type must not hijack a cast inside a security-definer function.

PUBLIC may create temporary objects, and a function pinned to `search_path = ''` still looks up
types in the session's temporary schema first. The attack: a temp type named `uuid` with a cast
from text whose function, called inside public.current_tenant_id() (a definer function), runs
with the schema owner's rights and leaks every tenant's vehicles through its error message.
"""

import json
import uuid

import asyncpg

from tests.helpers import User, claims_for, create_user

ATTACK = [
    "create type pg_temp.uuid as (v text)",
    """create function pg_temp.leak(text) returns pg_temp.uuid language plpgsql as $$
       begin
         raise exception 'leaked: %', (select string_agg(id::text, ',') from public.vehicles);
       end $$""",
    "create cast (text as pg_temp.uuid) with function pg_temp.leak(text)",
]


async def test_a_temp_type_cannot_hijack_a_definer_cast(
    db: asyncpg.Pool, database_url: str
) -> None:
    victim = await create_user(db)
    victim_vehicle = await db.fetchval(
        "insert into public.vehicles (tenant_id, make) values ($1, 'Secret') returning id",
        victim.tenant_id,
    )
    attacker: User = await create_user(db)
    # A connection of its own: no plan of current_tenant_id() cached before the temp type exists.
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            await conn.execute(
                "select set_config('role', 'authenticated', true), "
                "set_config('request.jwt.claims', $1, true)",
                json.dumps(claims_for(attacker)),
            )
            for statement in ATTACK:
                await conn.execute(statement)
            try:
                tenant = await conn.fetchval("select public.current_tenant_id()")
            except asyncpg.PostgresError as exc:
                tenant = None
                assert str(victim_vehicle) not in str(exc), "the cast ran as the owner"
                raise AssertionError(f"current_tenant_id() failed: {exc}") from None
            assert tenant == attacker.tenant_id
            # And the victim's vehicle stays out of reach through every definer path.
            assert await conn.fetchval("select count(*) from public.vehicles") == 0
    finally:
        await conn.close()
    assert isinstance(victim_vehicle, uuid.UUID)
