"""Test helpers: users made through the sign-up trigger, connections that act as the app does."""

import datetime as dt
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg

from app.core.config import Settings
from app.core.db import set_request_context


@dataclass(frozen=True)
class User:
    id: uuid.UUID
    email: str
    tenant_id: uuid.UUID


async def create_user(
    db: asyncpg.Pool, *, email: str | None = None, tenant_id: uuid.UUID | None = None
) -> User:
    """Insert into auth.users; the sign-up trigger creates the profile (and tenant)."""
    email = email or f"user-{uuid.uuid4().hex[:12]}@example.com"
    meta = {"tenant_id": str(tenant_id)} if tenant_id else {}
    user_id = await db.fetchval(
        "insert into auth.users (id, email, raw_app_meta_data) values ($1, $2, $3) returning id",
        uuid.uuid4(),
        email,
        meta,
    )
    tenant = await db.fetchval("select tenant_id from public.profiles where id = $1", user_id)
    return User(id=user_id, email=email, tenant_id=tenant)


def claims_for(user: User, **extra: Any) -> dict[str, Any]:
    return {
        "sub": str(user.id),
        "role": "authenticated",
        "aud": "authenticated",
        "email": user.email,
        "tenant_id": str(user.tenant_id),
        **extra,
    }


@asynccontextmanager
async def as_role(
    db: asyncpg.Pool, role: str, claims: dict[str, Any] | None = None
) -> AsyncIterator[asyncpg.Connection]:
    """A connection in a transaction set up exactly as the app sets up a request; rolled back."""
    async with db.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            await set_request_context(conn, role=role, claims=claims, settings=Settings())
            yield conn
        finally:
            await tx.rollback()


@asynccontextmanager
async def as_user(db: asyncpg.Pool, user: User) -> AsyncIterator[asyncpg.Connection]:
    async with as_role(db, "authenticated", claims_for(user)) as conn:
        yield conn


TEST_JWT_SECRET = "test-secret-" + "x" * 40


def token_for(user: User, *, ttl: int = 600, **extra: Any) -> str:
    """A real HS256 access token for the user, signed as Supabase Auth would sign it."""
    from pydantic import SecretStr

    from app.core.auth import issue_token

    settings = Settings(supabase_jwt_secret=SecretStr(TEST_JWT_SECRET))
    claims = {"email": user.email, "tenant_id": str(user.tenant_id), **extra}
    return issue_token(settings, sub=str(user.id), role="authenticated", ttl=ttl, extra=claims)


def auth(user: User, **extra: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(user, **extra)}"}


def page_events(page: Any) -> tuple[list[dict[str, Any]], list[tuple[Any, ...]]]:
    """The events of a timeline list_sql row (its `docs`), and their sort keys, typed."""
    events: list[dict[str, Any]] = json.loads(f"[{page['docs']}]")
    keys = [
        (
            dt.date.fromisoformat(e["date"]),
            dt.datetime.fromisoformat(e["created_at"]),
            uuid.UUID(e["id"]),
        )
        for e in events
    ]
    return events, keys
