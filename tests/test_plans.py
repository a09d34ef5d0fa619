"""The plans of the list queries, pinned (not timings): the real statements the app runs, on data
made and ANALYZEd so that the index plan is the right plan (several years of one vehicle's
history, other vehicles and another tenant beside it).

- a page is an ordered index range scan: no Sort node over a vehicle's (or tenant's) history;
- only the partitions needed are read: a from/to filter prunes the others, and a first page
  never executes the scans of old years;
- RLS's tenant predicate is an InitPlan (evaluated once per statement), never a per-row filter;
- no list query uses OFFSET.
"""

import datetime as dt
import importlib
import pkgutil
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

import app
from app.core.db import LIST_PLANNER
from app.timeline.queries import list_sql
from tests.helpers import User, as_user, create_user, page_events

TODAY = dt.date.today()
YEARS = range(TODAY.year - 4, TODAY.year + 1)
PAGE = 51  # the API fetches limit + 1
HISTORY = f"vehicle_events_history_1900_{TODAY.year - 1}"  # made by the install
CURRENT_YEARS = {f"vehicle_events_{year}" for year in range(TODAY.year, TODAY.year + 3)}
LIST_ALIAS = r" e(?:_\d+)?\b"  # the list's `vehicle_events e` (and its partitions e_1, ...)
# An InitPlan's value: `$3` up to PostgreSQL 15, `(InitPlan 1).col1` from 16 on.
INITPLAN_VALUE = r"(?:\$\d+|\(InitPlan \d+\)\.col\d+)"


@dataclass(frozen=True)
class History:
    user: User
    vehicle: uuid.UUID  # the long history
    others: list[uuid.UUID]


@pytest.fixture(scope="module")
async def history(db: asyncpg.Pool) -> History:
    user = await create_user(db)
    other_tenant = await create_user(db)
    vehicles = []
    for owner in (user, user, user, user, other_tenant, other_tenant):
        vehicles.append(
            await db.fetchval(
                "insert into public.vehicles (tenant_id, make) values ($1, 'Plan') returning id",
                owner.tenant_id,
            )
        )
    start = dt.date(YEARS[0], 1, 1)
    span = (TODAY - start).days
    # One vehicle with 3,000 events over the years (a few hundred in the current one), three
    # more of the tenant's and two of another tenant with 500 each.
    for vehicle, tenant, count in [
        (vehicles[0], user.tenant_id, 3000),
        *((v, user.tenant_id, 500) for v in vehicles[1:4]),
        *((v, other_tenant.tenant_id, 500) for v in vehicles[4:]),
    ]:
        await db.execute(
            """insert into public.vehicle_events (tenant_id, vehicle_id, date, type, payload)
               select $1, $2, $3::date + (g * $4::int / $5::int), 'maintenance',
                      '{"service": "plan test"}'
               from generate_series(0, $5 - 1) g""",
            tenant,
            vehicle,
            start,
            span,
            count,
        )
    await db.execute("analyze public.vehicle_events")
    await db.execute("analyze public.vehicles")
    return History(user=user, vehicle=vehicles[0], others=vehicles[1:])


@asynccontextmanager
async def listing(db: asyncpg.Pool, user: User, *, generic: bool) -> AsyncIterator[Any]:
    """A connection set up as the app sets up a list request (list_events' own statements)."""
    async with as_user(db, user) as conn:
        if generic:  # what a cached statement may come to use after five executions
            await conn.execute("set local plan_cache_mode = force_generic_plan")
        await conn.execute(f"select {LIST_PLANNER}")  # as a ListConn's first statement sets it
        yield conn


async def explain(conn: Any, sql: str, *args: Any, analyze: bool = False) -> str:
    options = "analyze, costs off, timing off, summary off, verbose" if analyze else "verbose"
    rows = await conn.fetch(f"explain ({options}) {sql}", *args)
    return "\n".join(r[0] for r in rows)


def scanned_partitions(plan: str, *, executed_only: bool = False) -> set[str]:
    """The partitions the list's own scans (alias e) read: vehicle_events_2026, or the history
    partition (vehicle_events_history_1900_2025) that holds every year before the install's."""
    names = set()
    for line in plan.splitlines():
        found = re.search(
            rf"Scan (?:Backward )?using \S+ on public\.(vehicle_events_\w+){LIST_ALIAS}", line
        )
        if found and not (executed_only and "never executed" in line):
            names.add(found.group(1))
    return names


def rows_read(plan: str, partition: str) -> int:
    """What the list's index scan of `partition` returned (EXPLAIN ANALYZE)."""
    found = re.search(
        rf"Index Scan using \S+ on public\.{partition}{LIST_ALIAS}.*actual rows=(\d+)", plan
    )
    assert found, plan
    return int(found.group(1))


def assert_ordered_index_plan(plan: str) -> None:
    assert not re.search(r"^\s*(->\s*)?(Incremental )?Sort\b", plan, re.M), plan
    # The list's own scans (alias e); superseded_by's probes (alias c) may seq-scan an empty
    # partition, which is the right plan for it.
    assert not re.search(rf"Seq Scan on public\.vehicle_events_\w+{LIST_ALIAS}", plan), plan
    assert not re.search(rf"Bitmap Heap Scan on public\.vehicle_events_\w+{LIST_ALIAS}", plan)
    assert re.search(rf"Index Scan using \S+ on public\.vehicle_events_\w+{LIST_ALIAS}", plan)


def assert_rls_once_per_statement(plan: str) -> None:
    assert "InitPlan" in plan, plan
    for line in plan.splitlines():
        if "current_tenant_id()" in line:
            # Only as the output of an InitPlan's Result (once per statement), never in a Filter
            # or an Index Cond (per row).
            assert line.strip().startswith("Output:"), plan
    assert re.search(rf"tenant_id = {INITPLAN_VALUE}", plan), plan


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
async def test_vehicle_first_page_is_an_ordered_index_scan_of_the_newest_partitions(
    db: asyncpg.Pool, history: History, generic: bool
) -> None:
    sql, names = list_sql(vehicle=True, types=False, from_=False, to=False, after=False)
    assert names == ["vehicle_id", "limit"]
    async with listing(db, history.user, generic=generic) as conn:
        plan = await explain(conn, sql, history.vehicle, PAGE, analyze=True)
        page = await conn.fetchrow(sql, history.vehicle, PAGE)
    assert_ordered_index_plan(plan)
    assert_rls_once_per_statement(plan)
    # The newest 51 of this vehicle's events are all in this year: no older year is read.
    assert scanned_partitions(plan, executed_only=True) <= CURRENT_YEARS
    events, keys = page_events(page)
    assert page["fetched"] == PAGE and len(events) == PAGE - 1
    assert {uuid.UUID(e["vehicle_id"]) for e in events} == {history.vehicle}
    assert keys == sorted(keys, reverse=True)
    assert (page["last_date"], page["last_created_at"], page["last_id"]) == keys[-1]


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
async def test_vehicle_page_after_a_cursor_is_an_ordered_index_scan(
    db: asyncpg.Pool, history: History, generic: bool
) -> None:
    sql, names = list_sql(vehicle=True, types=False, from_=False, to=False, after=True)
    after = (dt.date(TODAY.year - 2, 6, 30), dt.datetime.now(dt.UTC), uuid.uuid4())
    args = {"vehicle_id": history.vehicle, "limit": PAGE}
    args.update(zip(("after_date", "after_created_at", "after_id"), after, strict=True))
    async with listing(db, history.user, generic=generic) as conn:
        plan = await explain(conn, sql, *(args[n] for n in names), analyze=True)
    assert_ordered_index_plan(plan)
    assert_rls_once_per_statement(plan)
    # Pages back in time: newer years are pruned or stop at once, and history (every year before
    # this one, in one partition) is read only as far as the page needs.
    assert HISTORY in scanned_partitions(plan, executed_only=True), plan
    # (PostgreSQL 15's Append may pull one row past the Limit before it stops.)
    assert rows_read(plan, HISTORY) <= PAGE + 1, plan


@pytest.mark.parametrize("generic", [False, True], ids=["custom", "generic"])
async def test_tenant_wide_first_page_is_an_ordered_index_scan(
    db: asyncpg.Pool, history: History, generic: bool
) -> None:
    sql, names = list_sql(vehicle=False, types=False, from_=False, to=False, after=False)
    assert names == ["limit"]
    async with listing(db, history.user, generic=generic) as conn:
        plan = await explain(conn, sql, PAGE, analyze=True)
        page = await conn.fetchrow(sql, PAGE)
    assert_ordered_index_plan(plan)
    assert_rls_once_per_statement(plan)
    assert scanned_partitions(plan, executed_only=True) <= CURRENT_YEARS
    assert page["fetched"] == PAGE and len(page_events(page)[0]) == PAGE - 1


@pytest.mark.parametrize("vehicle", [True, False], ids=["vehicle", "tenant"])
async def test_a_date_range_reads_only_its_partition(
    db: asyncpg.Pool, history: History, vehicle: bool
) -> None:
    year = TODAY.year - 2
    sql, names = list_sql(vehicle=vehicle, types=False, from_=True, to=True, after=False)
    args = {
        "vehicle_id": history.vehicle,
        "from": dt.date(year, 1, 1),
        "to": dt.date(year, 12, 31),
        "limit": PAGE,
    }
    async with listing(db, history.user, generic=False) as conn:
        plan = await explain(conn, sql, *(args[n] for n in names))
        page = await conn.fetchrow(sql, *(args[n] for n in names))
    assert scanned_partitions(plan) == {HISTORY}, plan
    assert not re.search(r"^\s*(->\s*)?Sort\b", plan, re.M), plan
    assert_rls_once_per_statement(plan)
    days, _, _ = zip(*page_events(page)[1], strict=True)
    assert days and all(day.year == year for day in days)


def _queries_modules() -> Iterator[Any]:
    for module in pkgutil.walk_packages(app.__path__, "app."):
        if module.name.endswith(".queries"):
            yield importlib.import_module(module.name)


def test_no_list_query_uses_offset() -> None:
    statements: dict[str, str] = {}
    for module in _queries_modules():
        for name, value in vars(module).items():
            if isinstance(value, str) and re.search(r"\bselect\b", value, re.I):
                statements[f"{module.__name__}.{name}"] = value
    for flags in range(32):
        sql, _ = list_sql(
            vehicle=bool(flags & 1),
            types=bool(flags & 2),
            from_=bool(flags & 4),
            to=bool(flags & 8),
            after=bool(flags & 16),
        )
        statements[f"timeline.list_sql#{flags}"] = sql
    assert len(statements) > 10
    offending = [name for name, sql in statements.items() if re.search(r"\boffset\b", sql, re.I)]
    assert offending == []
