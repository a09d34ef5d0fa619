"""The timeline through the real app and database: append, immutability, the odometer rule,
corrections, concurrency, idempotency, dates, paging, the feed, reminders, tenant isolation."""

import asyncio
import datetime as dt
import json
import random
import uuid
from typing import Any

import asyncpg
import httpx

from app.core.db import LIST_PLANNER
from app.timeline.queries import list_sql
from app.timeline.schemas import Event
from tests.helpers import as_user, auth, create_user, page_events
from tests.timeline.support import (
    all_pages,
    append,
    committed_as,
    db_today,
    event_count,
    make_vehicle,
)

PROBLEM = "application/problem+json"


def sort_key(e: dict[str, Any]) -> tuple[str, str, str]:
    return (e["date"], e["created_at"], e["id"])


async def test_append_answers_201_with_location(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    user = await create_user(db)
    vid = await make_vehicle(db, user)
    resp = await append(
        client, user, vid, "fuel", miles=1200, payload={"volume": 10.5, "total_cost": 40}
    )
    assert resp.status_code == 201, resp.text
    event = resp.json()
    assert resp.headers["Location"] == f"/v1/timeline/{event['id']}"
    assert event["vehicle_id"] == str(vid)
    assert event["date"] == (await db_today(db)).isoformat()  # default: today, vehicle's tz
    assert event["created_by"] == str(user.id)
    assert event["superseded_by"] is None
    # Defaults of the payload are stored explicitly; absent optional fields are not.
    assert event["payload"] == {
        "volume": 10.5,
        "total_cost": 40,
        "unit": "gal",
        "currency": "USD",
        "full_tank": True,
        "missed_previous": False,
    }

    # Reads write the event exactly as the append answered it (PostgreSQL serializes reads).
    got = await client.get(resp.headers["Location"], headers=auth(user))
    assert got.status_code == 200 and got.json() == event
    listed = await client.get(f"/v1/vehicles/{vid}/timeline", headers=auth(user))
    assert listed.json() == {"items": [event], "next_cursor": None}
    current = await db.fetchval("select current_mileage from public.vehicles where id = $1", vid)
    assert current == 1200


async def test_update_and_delete_answer_405_allow_get(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    user = await create_user(db)
    vid = await make_vehicle(db, user)
    event = (await append(client, user, vid, miles=10)).json()
    path = f"/v1/timeline/{event['id']}"
    for method in ("PUT", "PATCH", "DELETE"):
        resp = await client.request(method, path, json={"miles": 5}, headers=auth(user))
        assert resp.status_code == 405, (method, resp.text)
        assert resp.headers["Allow"] == "GET"
        assert resp.headers["content-type"].startswith(PROBLEM)
        assert resp.json()["code"] == "method_not_allowed"
    # The event is untouched, and GET is allowed.
    got = await client.get(path, headers=auth(user))
    assert got.status_code == 200 and got.json() == event

    spec = (await client.get("/openapi.json")).json()["paths"]["/v1/timeline/{event_id}"]
    assert {"get", "put", "patch", "delete"} <= set(spec)
    assert "405" in spec["delete"]["responses"]


async def test_a_lower_reading_later_is_409_naming_the_conflict(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    user = await create_user(db)
    vid = await make_vehicle(db, user)
    today = await db_today(db)
    first = today - dt.timedelta(days=5)
    assert (await append(client, user, vid, miles=1000, date=first)).status_code == 201
    resp = await append(client, user, vid, miles=900, date=today)
    assert resp.status_code == 409
    assert resp.headers["content-type"].startswith(PROBLEM)
    problem = resp.json()
    assert problem["code"] == "odometer_rollback"
    assert "1000 miles" in problem["detail"] and first.isoformat() in problem["detail"]
    # The allow twin: an equal or higher reading later is fine.
    assert (await append(client, user, vid, miles=1000, date=today)).status_code == 201
    assert await event_count(db, vid) == 2


async def test_back_dated_readings_must_fit_between_neighbours(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    user = await create_user(db)
    vid = await make_vehicle(db, user)
    today = await db_today(db)
    d = lambda n: today - dt.timedelta(days=n)  # noqa: E731
    assert (await append(client, user, vid, miles=1000, date=d(10))).status_code == 201
    assert (await append(client, user, vid, miles=2000, date=d(2))).status_code == 201

    fits = await append(client, user, vid, "fuel", miles=1500, date=d(5), payload={"volume": 9})
    assert fits.status_code == 201, fits.text

    too_high = await append(client, user, vid, miles=2500, date=d(6))
    assert too_high.status_code == 409
    assert too_high.json()["code"] == "odometer_rollback"
    # The nearest reading it would jump over: the back-dated 1500 on d(5).
    detail = too_high.json()["detail"]
    assert "1500 miles" in detail and d(5).isoformat() in detail

    too_low = await append(client, user, vid, miles=1400, date=d(4))
    assert too_low.status_code == 409
    assert "1500 miles" in too_low.json()["detail"] and d(5).isoformat() in too_low.json()["detail"]
    assert await event_count(db, vid) == 3


async def test_a_correction_supersedes_a_typo(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    user = await create_user(db)
    vid = await make_vehicle(db, user)
    today = await db_today(db)
    d = lambda n: today - dt.timedelta(days=n)  # noqa: E731
    mileage = "select current_mileage from public.vehicles where id = $1"

    assert (await append(client, user, vid, miles=1000, date=d(10))).status_code == 201
    typo = (await append(client, user, vid, miles=100_000, date=d(5))).json()
    assert await db.fetchval(mileage, vid) == 100_000

    blocked = await append(client, user, vid, miles=1200, date=d(1))
    assert blocked.status_code == 409
    assert "100000 miles" in blocked.json()["detail"]

    correction = await append(
        client, user, vid, miles=1100, date=d(5), payload={"correction_of": typo["id"]}
    )
    assert correction.status_code == 201, correction.text
    fixed = correction.json()
    assert fixed["payload"] == {"correction_of": typo["id"]}
    assert await db.fetchval(mileage, vid) == 1100  # the typo no longer counts

    true_reading = await append(client, user, vid, miles=1200, date=d(1))
    assert true_reading.status_code == 201, true_reading.text
    assert await db.fetchval(mileage, vid) == 1200

    got = (await client.get(f"/v1/timeline/{typo['id']}", headers=auth(user))).json()
    assert got["superseded_by"] == fixed["id"]
    listed = {e["id"]: e for e in await all_pages(client, user, "/v1/timeline", limit=50)}
    assert listed[typo["id"]]["superseded_by"] == fixed["id"]
    assert listed[fixed["id"]]["superseded_by"] is None

    twice = await append(
        client, user, vid, miles=1100, date=d(5), payload={"correction_of": typo["id"]}
    )
    assert twice.status_code == 409 and twice.json()["code"] == "already_superseded"


def _rule_holds(events: list[dict[str, Any]]) -> bool:
    """No reading is higher than one on a later date (the odometer rule)."""
    readings = [(e["date"], e["miles"]) for e in events if e["miles"] is not None]
    return all(
        a_miles <= b_miles
        for a_date, a_miles in readings
        for b_date, b_miles in readings
        if a_date < b_date
    )


async def test_concurrent_appends_are_serialized_none_lost(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    user = await create_user(db)
    vid = await make_vehicle(db, user)
    today = await db_today(db)
    rng = random.Random(5)
    bodies = [
        (today - dt.timedelta(days=rng.randrange(0, 60)), rng.randrange(0, 60_000))
        for _ in range(40)
    ]
    responses = await asyncio.gather(
        *(append(client, user, vid, miles=m, date=d) for d, m in bodies)
    )
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {201, 409}, [
        r.text for r in responses if r.status_code not in (201, 409)
    ]
    assert 201 in statuses and 409 in statuses
    for r in responses:
        if r.status_code == 409:
            assert r.json()["code"] == "odometer_rollback"
    accepted = {r.json()["id"] for r in responses if r.status_code == 201}
    assert await event_count(db, vid) == len(accepted)

    served = await all_pages(client, user, f"/v1/vehicles/{vid}/timeline", limit=7)
    assert [e["id"] for e in served] == [
        e["id"] for e in sorted(served, key=sort_key, reverse=True)
    ]
    assert len(served) == len(accepted) and {e["id"] for e in served} == accepted
    assert _rule_holds(served)
    top = max(e["miles"] for e in served)
    current = await db.fetchval("select current_mileage from public.vehicles where id = $1", vid)
    assert current == top


async def test_concurrent_increasing_readings_in_any_order(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    user = await create_user(db)
    vid = await make_vehicle(db, user)
    today = await db_today(db)
    plan = [(today - dt.timedelta(days=10 - i), 1000 + 100 * i) for i in range(10)]
    random.Random(1).shuffle(plan)
    responses = await asyncio.gather(*(append(client, user, vid, miles=m, date=d) for d, m in plan))
    # Consistent readings: every one fits whatever order they commit in.
    assert [r.status_code for r in responses] == [201] * 10, [r.text for r in responses]
    assert await event_count(db, vid) == 10
    served = await all_pages(client, user, "/v1/timeline", limit=3, vehicle_id=str(vid))
    assert _rule_holds(served) and len(served) == 10


async def test_idempotent_append(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    user = await create_user(db)
    vid = await make_vehicle(db, user)
    key = str(uuid.uuid4())
    first = await append(client, user, vid, miles=500, key=key)
    assert first.status_code == 201, first.text
    # The phone timed out and retries.
    retry = await append(client, user, vid, miles=500, key=key)
    assert retry.status_code == 201
    assert retry.json() == first.json()
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.headers["Location"] == first.headers["Location"]
    assert await event_count(db, vid) == 1

    other = await append(client, user, vid, miles=600, key=key)
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    assert await event_count(db, vid) == 1


async def test_ten_parallel_retries_make_one_event(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    user = await create_user(db)
    vid = await make_vehicle(db, user)
    key = str(uuid.uuid4())
    payload = {"service": "oil_change", "cost": 80}
    responses = await asyncio.gather(
        *(append(client, user, vid, "maintenance", payload=payload, key=key) for _ in range(10))
    )
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {201, 409}, statuses
    assert 201 in statuses
    for r in responses:
        if r.status_code == 409:
            assert r.json()["code"] == "idempotency_in_flight"
    assert len({r.json()["id"] for r in responses if r.status_code == 201}) == 1
    assert await event_count(db, vid) == 1
    # After the first committed, a retry replays it.
    late = await append(client, user, vid, "maintenance", payload=payload, key=key)
    assert late.status_code == 201 and late.headers["Idempotent-Replayed"] == "true"
    assert await event_count(db, vid) == 1


async def test_dates(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    user = await create_user(db)
    # Far ahead of UTC, so "tomorrow" there is as far ahead as it gets.
    zone = "Pacific/Kiritimati"
    vid = await make_vehicle(db, user, timezone=zone)
    today = await db_today(db, zone)
    d = lambda n: today + dt.timedelta(days=n)  # noqa: E731

    year = 1950 + uuid.uuid4().int % 40  # a history import: its partition exists since install
    partitions = (
        "select count(*) from pg_inherits where inhparent = 'public.vehicle_events'::regclass"
    )
    before = await db.fetchval(partitions)
    old = await append(client, user, vid, miles=10, date=dt.date(year, 6, 1))
    assert old.status_code == 201, old.text
    assert await db.fetchval(partitions) == before

    service = {"service": "timing_belt"}
    y1998 = await append(
        client, user, vid, "maintenance", date=dt.date(1998, 3, 4), payload=service
    )
    assert y1998.status_code == 201, y1998.text

    default = await append(client, user, vid, miles=20)
    assert default.status_code == 201 and default.json()["date"] == today.isoformat()
    tomorrow = await append(client, user, vid, miles=30, date=d(1))
    assert tomorrow.status_code == 201, tomorrow.text

    for bad in (d(2), d(366), dt.date(1899, 12, 31), dt.date(1, 1, 1)):
        resp = await append(client, user, vid, miles=40, date=bad)
        assert resp.status_code == 422, (bad, resp.text)
        assert resp.json()["errors"][0]["loc"][-1] == "date"
    assert await event_count(db, vid) == 4

    # Without a vehicle (a tenant document) "today" is UTC's.
    doc = await append(client, user, None, "document", payload={"kind": "insurance"})
    assert doc.status_code == 201 and doc.json()["date"] == (await db_today(db, "UTC")).isoformat()


async def test_feed_shows_only_the_callers_vehicles(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    a, b = await create_user(db), await create_user(db)
    va, vb = await make_vehicle(db, a), await make_vehicle(db, b)
    today = await db_today(db)
    await append(client, a, va, miles=1000, date=today - dt.timedelta(days=3))
    await append(client, a, va, "fuel", miles=1300, payload={"volume": 10, "total_cost": 35.5})
    await append(client, a, va, "maintenance", payload={"service": "wipers", "cost": 20})
    await append(client, b, vb, miles=7)

    result = await db.fetchval("select public.refresh_timeline()")
    assert result["ok"] is True, result

    feed_a = await client.get("/v1/timeline/feed", headers=auth(a))
    assert feed_a.status_code == 200, feed_a.text
    body = feed_a.json()
    assert body["refreshed_at"] is not None
    rows = {r["vehicle_id"]: r for r in body["items"]}
    assert set(rows) == {str(va)}
    row = rows[str(va)]
    assert row["event_count"] == 3 and row["odometer_count"] == 1 and row["fuel_count"] == 1
    assert row["last_miles"] == 1300 and row["last_event_date"] == today.isoformat()
    assert row["fuel_spend"] == 35.5 and row["maintenance_spend"] == 20

    feed_b = (await client.get("/v1/timeline/feed", headers=auth(b))).json()
    assert [r["vehicle_id"] for r in feed_b["items"]] == [str(vb)]


async def test_reminder_completed_by_an_event(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    user, other = await create_user(db), await create_user(db)
    vid = await make_vehicle(db, user)
    async with committed_as(db, user) as conn:
        rid = await conn.fetchval(
            """insert into public.reminders (vehicle_id, title, due_mileage)
               values ($1, 'Oil change', 5000) returning id""",
            vid,
        )
    resp = await append(
        client, user, vid, "reminder", payload={"reminder_id": str(rid), "action": "completed"}
    )
    assert resp.status_code == 201, resp.text
    row = await db.fetchrow("select status, completed_at from public.reminders where id = $1", rid)
    assert row["status"] == "completed" and row["completed_at"] is not None

    # Another tenant's reminder is refused exactly like one that does not exist.
    ov = await make_vehicle(db, other)
    theirs = await append(
        client, other, ov, "reminder", payload={"reminder_id": str(rid), "action": "snoozed"}
    )
    missing = await append(
        client,
        other,
        ov,
        "reminder",
        payload={"reminder_id": str(uuid.uuid4()), "action": "snoozed"},
    )
    assert theirs.status_code == missing.status_code == 422
    assert theirs.json()["code"] == missing.json()["code"] == "reminder_not_found"
    assert (
        await db.fetchval("select status from public.reminders where id = $1", rid) == "completed"
    )


async def test_paging_is_stable_while_events_are_appended(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    user = await create_user(db)
    vid = await make_vehicle(db, user)
    today = await db_today(db)
    for i in range(9):
        r = await append(
            client, user, vid, miles=100 * i, date=today - dt.timedelta(days=20 - 2 * i)
        )
        assert r.status_code == 201
    # Two on one day: ordered by when they were recorded.
    await append(client, user, vid, "document", payload={"kind": "receipt"}, date=today)
    await append(client, user, vid, "document", payload={"kind": "manual"}, date=today)

    path = f"/v1/vehicles/{vid}/timeline"
    first = (await client.get(path, params={"limit": 4}, headers=auth(user))).json()
    assert len(first["items"]) == 4 and first["next_cursor"]
    # Meanwhile: a new event today (before the cursor: not served now) and an old one (after it).
    await append(client, user, vid, miles=900, date=today)
    late_old = (
        await append(
            client,
            user,
            vid,
            "document",
            payload={"kind": "other"},
            date=today - dt.timedelta(days=30),
        )
    ).json()
    rest: list[dict[str, Any]] = []
    cursor = first["next_cursor"]
    while cursor:
        page = (
            await client.get(path, params={"limit": 4, "cursor": cursor}, headers=auth(user))
        ).json()
        rest += page["items"]
        cursor = page["next_cursor"]
    served = first["items"] + rest
    ids = [e["id"] for e in served]
    assert len(ids) == len(set(ids)) == 12  # 11 before + the back-dated one; each once
    assert late_old["id"] in ids
    assert served == sorted(served, key=sort_key, reverse=True)

    # A cursor belongs to its list and filters.
    other = await client.get(
        "/v1/timeline", params={"cursor": first["next_cursor"]}, headers=auth(user)
    )
    assert other.status_code == 422 and other.json()["code"] == "invalid_cursor"


async def test_filters(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    user = await create_user(db)
    v1, v2 = await make_vehicle(db, user), await make_vehicle(db, user)
    today = await db_today(db)
    d = lambda n: today - dt.timedelta(days=n)  # noqa: E731
    await append(client, user, v1, miles=10, date=d(9))
    await append(client, user, v1, "fuel", miles=20, date=d(5), payload={"volume": 3})
    await append(client, user, v1, "maintenance", date=d(3), payload={"service": "tires"})
    await append(client, user, v2, miles=5, date=d(4))

    def kinds(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
        return [(e["type"], e["date"]) for e in items]

    assert len(await all_pages(client, user, "/v1/timeline", limit=2)) == 4
    only = await all_pages(
        client, user, f"/v1/vehicles/{v1}/timeline", limit=2, type=["fuel", "odometer"]
    )
    assert kinds(only) == [("fuel", d(5).isoformat()), ("odometer", d(9).isoformat())]
    window = await all_pages(
        client, user, "/v1/timeline", limit=2, **{"from": d(5).isoformat(), "to": d(3).isoformat()}
    )
    assert kinds(window) == [
        ("maintenance", d(3).isoformat()),
        ("odometer", d(4).isoformat()),
        ("fuel", d(5).isoformat()),
    ]
    bad = await client.get("/v1/timeline", params={"type": "party"}, headers=auth(user))
    assert bad.status_code == 422

    # Events of a deleted vehicle go with it.
    await db.execute("update public.vehicles set deleted_at = now() where id = $1", v2)
    assert len(await all_pages(client, user, "/v1/timeline", limit=10)) == 3
    assert (await client.get(f"/v1/vehicles/{v2}/timeline", headers=auth(user))).status_code == 404
    gone = await append(client, user, v2, miles=6)
    assert gone.status_code == 404


async def test_tenants_are_isolated(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    a, b = await create_user(db), await create_user(db)
    va, vb = await make_vehicle(db, a), await make_vehicle(db, b)
    event = (await append(client, a, va, miles=100)).json()

    # The allow twins.
    assert (await client.get(f"/v1/timeline/{event['id']}", headers=auth(a))).status_code == 200
    assert (await client.get(f"/v1/vehicles/{va}/timeline", headers=auth(a))).status_code == 200

    for path in (f"/v1/timeline/{event['id']}", f"/v1/vehicles/{va}/timeline"):
        resp = await client.get(path, headers=auth(b))
        assert resp.status_code == 404 and resp.json()["code"] == "not_found", path
    assert (await client.get("/v1/timeline", headers=auth(b))).json()["items"] == []
    filtered = await client.get("/v1/timeline", params={"vehicle_id": str(va)}, headers=auth(b))
    assert filtered.json()["items"] == []

    into_a = await append(client, b, va, miles=50)
    assert into_a.status_code == 404 and into_a.json()["code"] == "not_found"
    assert await event_count(db, va) == 1

    # Correcting A's event from B's vehicle: refused like a nonexistent event.
    theirs = await append(client, b, vb, miles=1, payload={"correction_of": event["id"]})
    missing = await append(client, b, vb, miles=1, payload={"correction_of": str(uuid.uuid4())})
    assert theirs.status_code == missing.status_code == 422
    assert theirs.json()["code"] == missing.json()["code"] == "correction_target_not_found"
    assert await event_count(db, vb) == 0
    got = (await client.get(f"/v1/timeline/{event['id']}", headers=auth(a))).json()
    assert got["superseded_by"] is None


async def test_first_page_of_a_vehicle_uses_the_keyset_index(db: asyncpg.Pool) -> None:
    """No sort of the vehicle's history: an ordered index scan that stops after `limit` rows."""
    user = await create_user(db)
    vehicles = [await make_vehicle(db, user) for _ in range(4)]
    await db.execute(
        """insert into public.vehicle_events (tenant_id, vehicle_id, date, type, payload)
           select $1, ($2::uuid[])[1 + g % 4], current_date - (g % 300), 'maintenance',
                  '{"service": "wash"}'
           from generate_series(1, 4000) g""",
        user.tenant_id,
        vehicles,
    )
    await db.execute("analyze public.vehicle_events")
    sql, names = list_sql(vehicle=True, types=False, from_=False, to=False, after=False)
    assert names == ["vehicle_id", "limit"]
    async with as_user(db, user) as conn:
        await conn.execute(f"select {LIST_PLANNER}")  # as a ListConn sets it
        plan = "\n".join(r[0] for r in await conn.fetch(f"explain {sql}", vehicles[0], 51))
        assert "Sort" not in plan, plan
        assert "Seq Scan on vehicle_events_" + str(dt.date.today().year) + " e" not in plan, plan
        assert "Index Cond: ((tenant_id = " in plan and "vehicle_id = " in plan, plan
        page = await conn.fetchrow(sql, vehicles[0], 51)
    events, keys = page_events(page)
    assert page["fetched"] == 51 and len(events) == 50
    assert {e["vehicle_id"] for e in events} == {str(vehicles[0])}
    assert keys == sorted(keys, reverse=True)


async def test_reads_write_created_at_as_the_append_response_does(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    """PostgreSQL writes read responses; pydantic writes the append's (schemas.Event). Both write
    the same text, whether or not the instant has microseconds."""
    user = await create_user(db)
    vid = await make_vehicle(db, user)
    instants = [
        dt.datetime(2024, 1, 2, 3, 4, 5, 123400, tzinfo=dt.UTC),
        dt.datetime(2024, 1, 2, 3, 4, 5, 7, tzinfo=dt.UTC),
        dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
    ]
    for instant in instants:
        await db.execute(
            """insert into public.vehicle_events (tenant_id, vehicle_id, date, type, payload,
                                                  created_at)
               values ($1, $2, current_date, 'maintenance', '{"service": "wash"}', $3)""",
            user.tenant_id,
            vid,
            instant,
        )
    items = (await client.get(f"/v1/vehicles/{vid}/timeline", headers=auth(user))).json()["items"]
    written = [item["created_at"] for item in items]
    as_pydantic = [
        json.loads(Event.model_validate({**item, "created_at": instant}).model_dump_json())
        for item, instant in zip(items, instants, strict=True)
    ]
    assert written == [e["created_at"] for e in as_pydantic]
    assert written == [
        "2024-01-02T03:04:05.123400Z",
        "2024-01-02T03:04:05.000007Z",
        "2024-01-02T03:04:05Z",
    ]


async def test_an_empty_page_of_a_live_vehicle_is_200_and_of_a_missing_one_404(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    """The route checks the vehicle only when the page comes back empty: both answers hold."""
    user = await create_user(db)
    bare, used = await make_vehicle(db, user), await make_vehicle(db, user)
    await append(client, user, used, miles=10)
    for path, params in (
        (f"/v1/vehicles/{bare}/timeline", {}),
        (f"/v1/vehicles/{used}/timeline", {"type": "inspection"}),
    ):
        resp = await client.get(path, params=params, headers=auth(user))
        assert resp.status_code == 200 and resp.json() == {"items": [], "next_cursor": None}
    for missing in (uuid.uuid4(), bare):
        if missing == bare:
            await db.execute("update public.vehicles set deleted_at = now() where id = $1", bare)
        resp = await client.get(f"/v1/vehicles/{missing}/timeline", headers=auth(user))
        assert resp.status_code == 404 and resp.json()["code"] == "not_found"
