"""The RLS matrix at SQL level: every public table x SELECT/INSERT/UPDATE/DELETE x who is asking.

`run_matrix` runs every cell against a database (the suite's, or a scratch one with a policy
dropped, for the mutation check) and returns what happened; the test compares it with EXPECTED.
Every statement targets tenant A's row (or inserts into tenant A), as A itself ("owner"), as tenant
B ("other"), as `authenticated` with no claims, as `anon`, and as `service_role`; each cell runs
in its own transaction, rolled back.

Outcomes: `rows` (the statement saw or changed A's row), `none` (it ran but RLS hid the row),
`denied` (42501: no privilege, or a WITH CHECK refusal).
"""

from typing import Any

import asyncpg

from tests.factories import KEY_COLUMN, Seed, seed
from tests.factories import TABLES as FACTORY_TABLES
from tests.helpers import as_role, claims_for

TABLES = tuple(FACTORY_TABLES)  # every table in public: the matrix has a row for each
COMMANDS = ("SELECT", "INSERT", "UPDATE", "DELETE")
ACTORS = ("owner", "other", "no_claims", "anon", "service_role")

# (table, command) -> {actor: outcome}. The whole contract of tenant isolation in one place.
_TENANT_TABLE = {
    "SELECT": {
        "owner": "rows",
        "other": "none",
        "no_claims": "none",
        "anon": "denied",
        "service_role": "denied",
    },
    "INSERT": {
        "owner": "rows",
        "other": "denied",
        "no_claims": "denied",
        "anon": "denied",
        "service_role": "denied",
    },
    "UPDATE": {
        "owner": "rows",
        "other": "none",
        "no_claims": "none",
        "anon": "denied",
        "service_role": "denied",
    },
    "DELETE": {
        "owner": "rows",
        "other": "none",
        "no_claims": "none",
        "anon": "denied",
        "service_role": "denied",
    },
}
_ONLY_BY_SIGN_UP = {  # tenants, profiles: created by the sign-up trigger, never deleted
    **_TENANT_TABLE,
    "INSERT": dict.fromkeys(ACTORS, "denied"),
    "DELETE": dict.fromkeys(ACTORS, "denied"),
}
_APPEND_ONLY = {  # vehicle_events: no update or delete for anyone
    **_TENANT_TABLE,
    "UPDATE": dict.fromkeys(ACTORS, "denied"),
    "DELETE": dict.fromkeys(ACTORS, "denied"),
}
EXPECTED: dict[str, dict[str, dict[str, str]]] = {
    "tenants": _ONLY_BY_SIGN_UP,
    "profiles": _ONLY_BY_SIGN_UP,
    "garages": _TENANT_TABLE,
    "vehicles": _TENANT_TABLE,
    "vehicle_events": _APPEND_ONLY,
    "vehicle_images": _TENANT_TABLE,
    "reminders": _TENANT_TABLE,
    "idempotency_keys": _TENANT_TABLE,
}

# What each statement does to A's row; $1 is always A's row key (or A's tenant, for INSERT).
SELECTS = {t: f"select count(*) from public.{t} where {KEY_COLUMN[t]} = $1" for t in TABLES}
INSERTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "tenants": ("insert into public.tenants (id, name) values ($1, 'x')", ("new_uuid",)),
    "profiles": (
        "insert into public.profiles (id, tenant_id, email) values ($2, $1, 'x@example.com')",
        ("tenant", "new_uuid"),
    ),
    "garages": ("insert into public.garages (tenant_id, name) values ($1, 'G')", ("tenant",)),
    "vehicles": ("insert into public.vehicles (tenant_id, make) values ($1, 'VW')", ("tenant",)),
    "vehicle_events": (
        """insert into public.vehicle_events (tenant_id, vehicle_id, date, type, payload)
           values ($1, $2, current_date, 'document', '{"kind": "receipt"}')""",
        ("tenant", "vehicle"),
    ),
    "vehicle_images": (
        """insert into public.vehicle_images (tenant_id, vehicle_id, storage_url)
           values ($1, $2, 'x/y.png')""",
        ("tenant", "vehicle"),
    ),
    "reminders": (
        """insert into public.reminders (tenant_id, vehicle_id, title, due_date)
           values ($1, $2, 'Tires', current_date + 30)""",
        ("tenant", "vehicle"),
    ),
    "idempotency_keys": (
        """insert into public.idempotency_keys (tenant_id, user_id, key, request_hash)
           values ($1, $2, 'k-' || gen_random_uuid(), 'h')""",
        ("tenant", "user"),
    ),
}
UPDATES = {
    "tenants": "update public.tenants set name = 'renamed' where id = $1",
    "profiles": "update public.profiles set name = 'renamed' where id = $1",
    "garages": "update public.garages set name = 'renamed' where id = $1",
    "vehicles": "update public.vehicles set nickname = 'renamed' where id = $1",
    "vehicle_events": "update public.vehicle_events set notes = 'renamed' where id = $1",
    "vehicle_images": "update public.vehicle_images set caption = 'renamed' where id = $1",
    "reminders": "update public.reminders set title = 'renamed' where id = $1",
    "idempotency_keys": "update public.idempotency_keys set status_code = 201 where key = $1",
}
DELETES = {t: f"delete from public.{t} where {KEY_COLUMN[t]} = $1" for t in TABLES}

Cell = tuple[str, str, str]


def _context(actor: str, a: Seed, b: Seed) -> tuple[str, dict[str, Any] | None]:
    if actor == "owner":
        return "authenticated", claims_for(a.user)
    if actor == "other":
        return "authenticated", claims_for(b.user)
    if actor == "no_claims":
        return "authenticated", None
    if actor == "anon":
        return "anon", {"role": "anon", "aud": "authenticated"}
    return "service_role", {"role": "service_role", "aud": "authenticated"}


def _args(table: str, command: str, a: Seed) -> tuple[str, list[Any]]:
    if command == "SELECT":
        return SELECTS[table], [a.row_id(table)]
    if command == "UPDATE":
        return UPDATES[table], [a.row_id(table)]
    if command == "DELETE":
        return DELETES[table], [a.row_id(table)]
    import uuid

    sql, names = INSERTS[table]
    values = {
        "tenant": a.user.tenant_id,
        "vehicle": a.vehicle,
        "user": a.user.id,
        "new_uuid": uuid.uuid4(),
    }
    return sql, [values[n] for n in names]


async def run_cell(pool: asyncpg.Pool, a: Seed, b: Seed, cell: Cell) -> str:
    table, command, actor = cell
    role, claims = _context(actor, a, b)
    sql, args = _args(table, command, a)
    async with as_role(pool, role, claims) as conn:
        try:
            if command == "SELECT":
                return "rows" if await conn.fetchval(sql, *args) else "none"
            status = await conn.execute(sql, *args)
        except asyncpg.InsufficientPrivilegeError:
            return "denied"
        except asyncpg.PostgresError as exc:  # anything else is a finding, shown as such
            return f"error {exc.sqlstate}"
    return "none" if status.endswith(" 0") else "rows"


async def run_matrix(pool: asyncpg.Pool) -> dict[Cell, str]:
    """Every cell's outcome on the database behind `pool` (an owner's pool)."""
    a, b = await seed(pool), await seed(pool)
    results: dict[Cell, str] = {}
    for table in TABLES:
        for command in COMMANDS:
            for actor in ACTORS:
                cell = (table, command, actor)
                results[cell] = await run_cell(pool, a, b, cell)
    return results


def mismatches(results: dict[Cell, str]) -> list[str]:
    return [
        f"{table} {command} as {actor}: expected {EXPECTED[table][command][actor]}, got {got}"
        for (table, command, actor), got in sorted(results.items())
        if got != EXPECTED[table][command][actor]
    ]
