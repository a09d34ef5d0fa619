"""Fixtures for the security suite: a seeded tenant shared by the fuzzers."""

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from tests.helpers import create_user
from tests.security.support import World, seed_world


@pytest.fixture(scope="session")
async def world(app: FastAPI, db: asyncpg.Pool) -> AsyncIterator[World]:
    """A real tenant with one object of each kind (and spares that may be deleted)."""
    user = await create_user(db)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield await seed_world(client, user)


@pytest.fixture(scope="session")
async def constraint_names(db: asyncpg.Pool) -> frozenset[str]:
    """Every constraint and index name of the schema: none may appear in a response body."""
    rows = await db.fetch(
        """select conname as name from pg_constraint
           where connamespace in ('public'::regnamespace, 'private'::regnamespace)
           union select indexrelid::regclass::text from pg_index i
           join pg_class c on c.oid = i.indrelid
           where c.relnamespace in ('public'::regnamespace, 'private'::regnamespace)"""
    )
    # Short generic names (e.g. "id") would match ordinary words; ours all carry a table prefix.
    return frozenset(r["name"].split(".")[-1] for r in rows if "_" in r["name"])
