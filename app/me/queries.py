"""SQL for /v1/me and /v1/tenant. Row Level Security scopes every statement to the caller."""

from uuid import UUID

import asyncpg

CURRENT_TENANT = "select public.current_tenant_id()"

GET_ME = """
select p.id, p.email, p.name, p.created_at, p.updated_at, t.id as tenant_id,
       t.name as tenant_name
from public.profiles p
join public.tenants t on t.id = p.tenant_id
where p.id = $1 and p.deleted_at is null
"""

UPDATE_ME_NAME = """
with p as (
    update public.profiles set name = $2
    where id = $1 and deleted_at is null
    returning *
)
select p.id, p.email, p.name, p.created_at, p.updated_at, t.id as tenant_id,
       t.name as tenant_name
from p
join public.tenants t on t.id = p.tenant_id
"""

GET_TENANT = """
select id, name, created_at, updated_at from public.tenants where id = $1
"""

UPDATE_TENANT_NAME = """
update public.tenants set name = $2
where id = $1
returning id, name, created_at, updated_at
"""


async def get_me(conn: asyncpg.Connection, *, user_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(GET_ME, user_id)


async def update_me_name(
    conn: asyncpg.Connection, *, user_id: UUID, name: str | None
) -> asyncpg.Record | None:
    return await conn.fetchrow(UPDATE_ME_NAME, user_id, name)


async def get_tenant(conn: asyncpg.Connection, *, tenant_id: UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(GET_TENANT, tenant_id)


async def update_tenant_name(
    conn: asyncpg.Connection, *, tenant_id: UUID, name: str
) -> asyncpg.Record | None:
    return await conn.fetchrow(UPDATE_TENANT_NAME, tenant_id, name)


async def current_tenant(conn: asyncpg.Connection) -> UUID | None:
    """The tenant the transaction runs as (claim, app_metadata or profile): the one RLS enforces."""
    value = await conn.fetchval(CURRENT_TENANT)
    return value if isinstance(value, UUID) else None
