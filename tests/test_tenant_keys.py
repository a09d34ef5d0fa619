"""Citus-ready keys (issue 16): every primary key, unique constraint, unique index and foreign key
of a tenant table (one with a tenant_id) includes tenant_id, so each table can be distributed by
tenant_id and every key and reference stays within one shard (docs/citus.md). The exceptions are
references to tables Citus keeps whole on every node (reference tables), each with its reason."""

from pathlib import Path

import asyncpg

CITUS_DOC = Path(__file__).resolve().parents[1] / "docs" / "citus.md"

# (table, constraint) -> why it may leave tenant_id out.
REFERENCE_TABLE_KEYS = {
    ("profiles", "profiles_id_fkey"): "auth.users is Supabase's: a reference table under Citus",
    ("timeline_feed", "timeline_feed_vehicle_id_key"): (
        "a materialized view over every tenant, replaced before distributing (docs/citus.md)"
    ),
}

KEYS_WITHOUT_TENANT = """
select t.relname as table_name, c.conname as key_name, c.contype::text as kind,
       pg_get_constraintdef(c.oid) as definition
from pg_constraint c join pg_class t on t.oid = c.conrelid
where t.relnamespace in ('public'::regnamespace, 'private'::regnamespace)
  and c.contype in ('p', 'u', 'f') and not t.relispartition
  and exists (select 1 from pg_attribute a where a.attrelid = t.oid and a.attname = 'tenant_id')
  and not exists (select 1 from pg_attribute a
                  where a.attrelid = t.oid and a.attname = 'tenant_id'
                    and a.attnum = any (c.conkey))
union all
select t.relname, i.relname, 'unique index', pg_get_indexdef(i.oid)
from pg_index x join pg_class i on i.oid = x.indexrelid join pg_class t on t.oid = x.indrelid
where t.relnamespace in ('public'::regnamespace, 'private'::regnamespace)
  and x.indisunique and not t.relispartition
  and exists (select 1 from pg_attribute a where a.attrelid = t.oid and a.attname = 'tenant_id')
  and not exists (select 1 from pg_attribute a
                  where a.attrelid = t.oid and a.attname = 'tenant_id'
                    and a.attnum = any (x.indkey::int2[]))
order by 1, 2
"""


async def test_every_key_of_a_tenant_table_includes_tenant_id(db: asyncpg.Pool) -> None:
    rows = await db.fetch(KEYS_WITHOUT_TENANT)
    loose = [
        (r["table_name"], r["key_name"], r["definition"])
        for r in rows
        if (r["table_name"], r["key_name"]) not in REFERENCE_TABLE_KEYS
    ]
    assert loose == []
    # Each exception is still there (else it needs no reason).
    found = {(r["table_name"], r["key_name"]) for r in rows}
    assert set(REFERENCE_TABLE_KEYS) <= found


async def test_tenant_tables_are_the_ones_docs_citus_distributes(db: asyncpg.Pool) -> None:
    """docs/citus.md names every table with a tenant_id; a new one must be added there."""
    doc = CITUS_DOC.read_text()
    tables = await db.fetch(
        """select n.nspname || '.' || t.relname as name
           from pg_class t join pg_namespace n on n.oid = t.relnamespace
           where n.nspname in ('public', 'private') and t.relkind in ('r', 'p')
             and not t.relispartition
             and exists (select 1 from pg_attribute a
                         where a.attrelid = t.oid and a.attname = 'tenant_id')"""
    )
    missing = [r["name"] for r in tables if f"'{r['name']}'" not in doc]
    assert missing == []
