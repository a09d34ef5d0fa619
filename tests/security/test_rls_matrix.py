"""The RLS matrix (see rls_matrix.py for the table of expected outcomes), and its mutation check:
on a scratch database with one policy dropped, the same matrix must report failures."""

import secrets

import asyncpg

from app.core.db import _init_connection, dsn_with
from app.database.migrate import install
from tests.security.rls_matrix import ACTORS, COMMANDS, EXPECTED, TABLES, mismatches, run_matrix


def test_the_expected_table_is_complete() -> None:
    assert set(EXPECTED) == set(TABLES)
    for table in TABLES:
        assert set(EXPECTED[table]) == set(COMMANDS), table
        for command in COMMANDS:
            assert set(EXPECTED[table][command]) == set(ACTORS), (table, command)
    # Not vacuous: every table has allowed and refused cells.
    for table in TABLES:
        outcomes = {o for cmd in EXPECTED[table].values() for o in cmd.values()}
        assert {"rows", "denied"} <= outcomes, table


async def test_rls_matrix(db: asyncpg.Pool) -> None:
    results = await run_matrix(db)
    assert len(results) == len(TABLES) * len(COMMANDS) * len(ACTORS)
    assert mismatches(results) == []


async def _scratch_matrix(server_url: str, mutation: str) -> list[str]:
    """The matrix's mismatches on a fresh database with the schema installed, then `mutation`."""
    name = f"motomind_mutant_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'create database "{name}"')
        url = dsn_with(server_url, database=name)
        conn = await asyncpg.connect(url)
        try:
            await install(conn)
            await conn.execute(mutation)
        finally:
            await conn.close()
        pool = await asyncpg.create_pool(url, min_size=1, max_size=2, init=_init_connection)
        assert pool is not None
        try:
            return mismatches(await run_matrix(pool))
        finally:
            await pool.close()
    finally:
        await admin.execute(f'drop database if exists "{name}" with (force)')
        await admin.close()


async def test_matrix_fails_when_a_policy_is_dropped(server_url: str) -> None:
    """Supabase's rule: a test of a policy must fail when the policy is removed."""
    found = await _scratch_matrix(server_url, "drop policy garages_select on public.garages")
    # The allow twin catches it: the owner no longer sees its own garage.
    assert "garages SELECT as owner: expected rows, got none" in found, found


async def test_matrix_fails_when_a_policy_lets_everyone_in(server_url: str) -> None:
    found = await _scratch_matrix(
        server_url,
        """drop policy vehicles_select on public.vehicles;
           create policy vehicles_select on public.vehicles for select to authenticated
           using (true)""",
    )
    assert "vehicles SELECT as other: expected none, got rows" in found, found
