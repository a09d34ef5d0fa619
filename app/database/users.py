"""Development users (`motomind token`, `motomind demo`): made as Supabase Auth would make them, by
an insert into auth.users, whose trigger gives them a profile and a tenant."""

import json
import uuid

import asyncpg

FIND_USER = "select id from auth.users where email = $1"
CREATE_USER = """insert into auth.users (email, raw_app_meta_data)
                 values ($1, $2::jsonb) returning id"""
PROFILE_TENANT = "select tenant_id from public.profiles where id = $1"


async def ensure_user(
    conn: asyncpg.Connection, *, email: str, tenant_id: uuid.UUID | None
) -> tuple[str, str]:
    """The user with `email` (made in `tenant_id`, else in a new tenant, when missing), and its
    tenant."""
    async with conn.transaction():
        user_id = await conn.fetchval(FIND_USER, email)
        if user_id is None:
            meta = json.dumps({"tenant_id": str(tenant_id)} if tenant_id else {})
            user_id = await conn.fetchval(CREATE_USER, email, meta)
        tenant = await conn.fetchval(PROFILE_TENANT, user_id)
    return str(user_id), str(tenant)
