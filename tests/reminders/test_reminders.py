"""Reminders through the real app: CRUD, paging, filters, status, due_state, tenancy."""

import asyncio
import uuid
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from tests.helpers import User, auth, create_user

TZ = "Pacific/Auckland"  # far from UTC, so "today" visibly belongs to the vehicle


def today_in(tz: str) -> date:
    return datetime.now(ZoneInfo(tz)).date()


async def _vehicle(
    client: httpx.AsyncClient, user: User, *, miles: int | None = None, **body: Any
) -> dict[str, Any]:
    resp = await client.post(
        "/v1/vehicles", json={"timezone": TZ, "nickname": "v", **body}, headers=auth(user)
    )
    assert resp.status_code == 201, resp.text
    vehicle: dict[str, Any] = resp.json()
    if miles is not None:
        patched = await client.patch(
            f"/v1/vehicles/{vehicle['id']}", json={"current_mileage": miles}, headers=auth(user)
        )
        assert patched.status_code == 200, patched.text
        vehicle = patched.json()
    return vehicle


async def _garage(client: httpx.AsyncClient, user: User) -> str:
    resp = await client.post("/v1/garages", json={"name": "G"}, headers=auth(user))
    assert resp.status_code == 201
    return str(resp.json()["id"])


async def _create(
    client: httpx.AsyncClient, user: User, headers: dict[str, str] | None = None, **body: Any
) -> httpx.Response:
    body.setdefault("title", "Oil change")
    if "due_date" not in body and "due_mileage" not in body:
        body["due_mileage"] = 10_000
    return await client.post("/v1/reminders", json=body, headers={**auth(user), **(headers or {})})


async def _ids(client: httpx.AsyncClient, user: User, **params: Any) -> list[str]:
    """Every id of the list (walking all pages, 2 per page)."""
    ids: list[str] = []
    cursor = None
    while True:
        query = {**params, "limit": 2, **({"cursor": cursor} if cursor else {})}
        resp = await client.get("/v1/reminders", params=query, headers=auth(user))
        assert resp.status_code == 200, resp.text
        page = resp.json()
        ids += [r["id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return ids


async def test_create_read_patch_delete(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    user = await create_user(db)
    vehicle = await _vehicle(client, user, miles=1000)
    resp = await _create(
        client,
        user,
        vehicle_id=vehicle["id"],
        title="  Chain lube  ",
        description="every 500 mi",
        due_mileage=5000,
        due_date=str(today_in(TZ) + timedelta(days=100)),
    )
    assert resp.status_code == 201, resp.text
    reminder = resp.json()
    assert reminder["title"] == "Chain lube"
    assert reminder["status"] == "active" and reminder["completed_at"] is None
    assert (reminder["soon_days"], reminder["soon_miles"]) == (30, 500)
    assert reminder["due_state"] == "upcoming"
    assert reminder["created_by"] == str(user.id)
    assert resp.headers["Location"] == f"/v1/reminders/{reminder['id']}"

    got = await client.get(resp.headers["Location"], headers=auth(user))
    assert got.status_code == 200 and got.json() == reminder
    etag = got.headers["ETag"]

    patched = await client.patch(
        resp.headers["Location"],
        json={"due_mileage": 1200, "description": None},
        headers={**auth(user), "If-Match": etag},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["due_state"] == "due_soon"
    assert patched.json()["description"] is None
    assert patched.headers["ETag"] != etag

    stale = await client.patch(
        resp.headers["Location"], json={"title": "x"}, headers={**auth(user), "If-Match": etag}
    )
    assert stale.status_code == 412 and stale.json()["code"] == "precondition_failed"

    assert (await client.delete(resp.headers["Location"], headers=auth(user))).status_code == 204
    gone = await client.get(resp.headers["Location"], headers=auth(user))
    assert gone.status_code == 404 and gone.json()["code"] == "not_found"
    assert await _ids(client, user) == []


async def test_paging_and_filters(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    user = await create_user(db)
    garage_id = await _garage(client, user)
    in_garage = await _vehicle(client, user, garage_id=garage_id)
    elsewhere = await _vehicle(client, user)
    today = today_in("UTC")
    made: dict[str, str] = {}
    for name, body in {
        "v1-soon": {"vehicle_id": in_garage["id"], "due_date": str(today + timedelta(days=5))},
        "v1-late": {"vehicle_id": in_garage["id"], "due_date": str(today + timedelta(days=50))},
        "v2-miles": {"vehicle_id": elsewhere["id"], "due_mileage": 100},
        "v2-soon": {"vehicle_id": elsewhere["id"], "due_date": str(today + timedelta(days=3))},
        "garage": {"garage_id": garage_id, "due_date": str(today + timedelta(days=10))},
        "tenant": {"due_date": str(today - timedelta(days=1))},
        "done": {"due_mileage": 5, "vehicle_id": elsewhere["id"]},
    }.items():
        resp = await _create(client, user, title=name, **body)
        assert resp.status_code == 201, resp.text
        made[name] = resp.json()["id"]
    done = await client.patch(
        f"/v1/reminders/{made['done']}", json={"status": "completed"}, headers=auth(user)
    )
    assert done.status_code == 200

    every = await _ids(client, user)
    assert len(every) == len(set(every)) == 7  # four pages of 2, each row exactly once
    assert set(every) == set(made.values())

    def names(ids: list[str]) -> set[str]:
        return {n for n, i in made.items() if i in ids}

    assert names(await _ids(client, user, vehicle_id=in_garage["id"])) == {"v1-soon", "v1-late"}
    assert names(await _ids(client, user, garage_id=garage_id)) == {"v1-soon", "v1-late", "garage"}
    assert names(await _ids(client, user, status="completed")) == {"done"}
    assert "done" not in names(await _ids(client, user, status="active"))
    assert names(await _ids(client, user, due_before=str(today + timedelta(days=5)))) == {
        "v1-soon",
        "v2-soon",
        "tenant",
    }
    assert names(
        await _ids(
            client, user, vehicle_id=elsewhere["id"], due_before=str(today + timedelta(days=30))
        )
    ) == {"v2-soon"}
    bad = await client.get("/v1/reminders", params={"status": "snoozed"}, headers=auth(user))
    assert bad.status_code == 422
    bad_date = await client.get(
        "/v1/reminders", params={"due_before": "tomorrow"}, headers=auth(user)
    )
    assert bad_date.status_code == 422


async def test_status_transitions(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    user = await create_user(db)

    async def patch(rid: str, status: str) -> httpx.Response:
        return await client.patch(
            f"/v1/reminders/{rid}", json={"status": status}, headers=auth(user)
        )

    rid = (await _create(client, user)).json()["id"]
    dismissed = await patch(rid, "dismissed")
    assert dismissed.status_code == 200 and dismissed.json()["due_state"] == "dismissed"
    reopened = await patch(rid, "active")
    assert reopened.status_code == 200 and reopened.json()["status"] == "active"
    completed = await patch(rid, "completed")
    assert completed.status_code == 200
    assert completed.json()["due_state"] == "completed"
    assert completed.json()["completed_at"] is not None
    assert (await patch(rid, "completed")).status_code == 200  # staying put is fine
    for wanted in ("active", "dismissed"):
        refused = await patch(rid, wanted)
        assert refused.status_code == 409, wanted
        assert refused.json()["code"] == "invalid_status_transition"
    assert (await patch(rid, "snoozed")).status_code == 422
    assert (
        await client.patch(f"/v1/reminders/{rid}", json={"status": None}, headers=auth(user))
    ).status_code == 422


async def test_timeline_events_obey_the_same_status_rules(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    """The database holds the rule: a reminder event cannot revive a completed reminder."""
    user = await create_user(db)
    vehicle = await _vehicle(client, user)
    rid = (await _create(client, user, vehicle_id=vehicle["id"])).json()["id"]

    async def event(action: str) -> httpx.Response:
        body = {
            "vehicle_id": vehicle["id"],
            "type": "reminder",
            "payload": {"reminder_id": rid, "action": action},
        }
        return await client.post("/v1/timeline", json=body, headers=auth(user))

    assert (await event("completed")).status_code == 201
    refused = await event("dismissed")
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "invalid_status_transition"
    got = (await client.get(f"/v1/reminders/{rid}", headers=auth(user))).json()
    assert got["status"] == "completed"


async def test_needs_a_due_date_or_mileage(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    user = await create_user(db)
    missing = await client.post("/v1/reminders", json={"title": "x"}, headers=auth(user))
    assert missing.status_code == 422 and missing.json()["code"] == "validation_failed"
    nulls = await client.post(
        "/v1/reminders",
        json={"title": "x", "due_date": None, "due_mileage": None},
        headers=auth(user),
    )
    assert nulls.status_code == 422
    count = "select count(*) from public.reminders where tenant_id = $1"
    assert await db.fetchval(count, user.tenant_id) == 0

    by_date = (await _create(client, user, due_date=str(date(2030, 1, 1)))).json()
    url = f"/v1/reminders/{by_date['id']}"
    cleared = await client.patch(url, json={"due_date": None}, headers=auth(user))
    assert cleared.status_code == 422
    assert {tuple(e["loc"]) for e in cleared.json()["errors"]} == {
        ("body", "due_date"),
        ("body", "due_mileage"),
    }
    swapped = await client.patch(
        url, json={"due_date": None, "due_mileage": 300}, headers=auth(user)
    )
    assert swapped.status_code == 200 and swapped.json()["due_date"] is None

    for body in (
        {"due_mileage": -1},
        {"soon_days": 0},
        {"soon_miles": 0},
        {"title": ""},
        {"title": "x" * 201},
        {"due_date": "2026-02-30"},
        {"status": "completed"},  # created active; status changes by PATCH
    ):
        resp = await _create(client, user, **body)
        assert resp.status_code == 422, body


async def test_server_owned_fields_are_refused(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    user = await create_user(db)
    reminder = (await _create(client, user)).json()
    for field in ("id", "tenant_id", "created_by", "created_at", "deleted_at", "completed_at"):
        value = "2026-01-01T00:00:00Z" if field.endswith("_at") else str(uuid.uuid4())
        assert (await _create(client, user, **{field: value})).status_code == 422, field
        patch = await client.patch(
            f"/v1/reminders/{reminder['id']}", json={field: value}, headers=auth(user)
        )
        assert patch.status_code == 422, field
    count = "select count(*) from public.reminders where tenant_id = $1"
    assert await db.fetchval(count, user.tenant_id) == 1


DUE_STATES = ("overdue", "due_soon", "upcoming", "completed", "dismissed")


async def assert_filter_agrees(client: httpx.AsyncClient, user: User, **params: Any) -> None:
    """The `due_state` filter (SQL) selects exactly the items whose `due_state` (Python) says so."""
    listed = (
        await client.get("/v1/reminders", params={**params, "limit": 200}, headers=auth(user))
    ).json()["items"]
    assert listed
    for state in DUE_STATES:
        selected = set(await _ids(client, user, **params, due_state=state))
        assert selected == {r["id"] for r in listed if r["due_state"] == state}, state


async def test_due_state_boundaries(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    user = await create_user(db)
    vehicle = await _vehicle(client, user, miles=10_000)
    today = today_in(TZ)

    async def state(**body: Any) -> str:
        resp = await _create(client, user, vehicle_id=vehicle["id"], **body)
        assert resp.status_code == 201, resp.text
        got = await client.get(resp.headers["Location"], headers=auth(user))
        assert got.json()["due_state"] == resp.json()["due_state"]
        return str(resp.json()["due_state"])

    # By date, in the vehicle's time zone.
    assert await state(due_date=str(today)) == "due_soon"  # due today
    assert await state(due_date=str(today - timedelta(days=1))) == "overdue"
    assert await state(due_date=str(today + timedelta(days=30))) == "due_soon"
    assert await state(due_date=str(today + timedelta(days=31))) == "upcoming"
    # By mileage only.
    assert await state(due_mileage=9_999) == "overdue"
    assert await state(due_mileage=10_000) == "due_soon"
    assert await state(due_mileage=10_500) == "due_soon"
    assert await state(due_mileage=10_501) == "upcoming"
    # Both set, one already passed: whichever comes first.
    far = str(today + timedelta(days=400))
    assert await state(due_date=far, due_mileage=9_000) == "overdue"
    assert await state(due_date=str(today - timedelta(days=2)), due_mileage=90_000) == "overdue"
    assert await state(due_date=far, due_mileage=90_000) == "upcoming"

    # Custom thresholds on one reminder do not affect another.
    in_40 = str(today + timedelta(days=40))
    wide = await _create(client, user, vehicle_id=vehicle["id"], due_date=in_40, soon_days=45)
    plain = await _create(client, user, vehicle_id=vehicle["id"], due_date=in_40)
    assert wide.json()["due_state"] == "due_soon"
    assert plain.json()["due_state"] == "upcoming"
    miles_wide = await _create(
        client, user, vehicle_id=vehicle["id"], due_mileage=12_000, soon_miles=2_000
    )
    miles_plain = await _create(client, user, vehicle_id=vehicle["id"], due_mileage=12_000)
    assert miles_wide.json()["due_state"] == "due_soon"
    assert miles_plain.json()["due_state"] == "upcoming"
    listed = {
        r["id"]: r["due_state"]
        for r in (
            await client.get(
                "/v1/reminders",
                params={"vehicle_id": vehicle["id"], "limit": 200},
                headers=auth(user),
            )
        ).json()["items"]
    }
    assert listed[wide.json()["id"]] == "due_soon"
    assert listed[plain.json()["id"]] == "upcoming"
    assert listed[miles_wide.json()["id"]] == "due_soon"
    assert listed[miles_plain.json()["id"]] == "upcoming"
    await assert_filter_agrees(client, user, vehicle_id=vehicle["id"])

    # The vehicle's mileage moves: its reminders follow, on the next read.
    await client.patch(
        f"/v1/vehicles/{vehicle['id']}", json={"current_mileage": 12_001}, headers=auth(user)
    )
    again = await client.get(f"/v1/reminders/{miles_plain.json()['id']}", headers=auth(user))
    assert again.json()["due_state"] == "overdue"


async def test_garage_reminder_without_vehicle_uses_utc(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    user = await create_user(db)
    garage_id = await _garage(client, user)
    today_utc = today_in("UTC")
    resp = await _create(client, user, garage_id=garage_id, due_date=str(today_utc))
    assert resp.json()["due_state"] == "due_soon"
    past = await _create(
        client, user, garage_id=garage_id, due_date=str(today_utc - timedelta(days=1))
    )
    assert past.json()["due_state"] == "overdue"
    # Mileage without a vehicle never makes it due.
    assert (await _create(client, user, due_mileage=0)).json()["due_state"] == "upcoming"
    await assert_filter_agrees(client, user)


async def test_filter_by_due_state(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    user = await create_user(db)
    vehicle = await _vehicle(client, user, miles=10_000)
    today = today_in(TZ)
    made: dict[str, str] = {}

    async def make(name: str, **body: Any) -> None:
        resp = await _create(client, user, title=name, **body)
        assert resp.status_code == 201, resp.text
        made[name] = resp.json()["id"]

    v = vehicle["id"]
    # Interleaved, the non-matching ones newest: a filter applied after the LIMIT would return
    # short or empty pages.
    await make("late-date", vehicle_id=v, due_date=str(today - timedelta(days=3)))
    await make("far", vehicle_id=v, due_date=str(today + timedelta(days=300)))
    await make("late-miles", vehicle_id=v, due_mileage=9_000)
    await make("far-miles", vehicle_id=v, due_mileage=50_000)
    await make("soon-date", vehicle_id=v, due_date=str(today + timedelta(days=3)))
    await make("tenant-late", due_date=str(today_in("UTC") - timedelta(days=1)))
    await make("soon-miles", vehicle_id=v, due_mileage=10_200)
    await make("done", vehicle_id=v, due_mileage=9_500)
    await make("dropped", vehicle_id=v, due_date=str(today - timedelta(days=1)))
    for name in ("far-2", "far-3", "far-4"):
        await make(name, vehicle_id=v, due_mileage=90_000)
    for name, status in (("done", "completed"), ("dropped", "dismissed")):
        resp = await client.patch(
            f"/v1/reminders/{made[name]}", json={"status": status}, headers=auth(user)
        )
        assert resp.status_code == 200, resp.text

    def names(ids: list[str]) -> list[str]:
        by_id = {i: n for n, i in made.items()}
        return sorted(by_id[i] for i in ids)

    attention = ["late-date", "late-miles", "soon-date", "soon-miles", "tenant-late"]
    comma = await _ids(client, user, due_state="overdue,due_soon")
    assert len(comma) == len(set(comma))  # two per page, each exactly once
    assert names(comma) == attention
    repeated = await _ids(client, user, due_state=["overdue", "due_soon"])
    assert repeated == comma
    mixed = await _ids(client, user, due_state=["due_soon,overdue", "overdue"])
    assert mixed == comma
    assert names(await _ids(client, user, due_state="overdue")) == [
        "late-date",
        "late-miles",
        "tenant-late",
    ]
    assert names(await _ids(client, user, due_state="completed")) == ["done"]
    assert names(await _ids(client, user, due_state="dismissed")) == ["dropped"]
    assert names(await _ids(client, user, due_state="upcoming")) == [
        "far",
        "far-2",
        "far-3",
        "far-4",
        "far-miles",
    ]
    # With the other filters.
    assert names(await _ids(client, user, due_state="overdue", vehicle_id=v)) == [
        "late-date",
        "late-miles",
    ]
    assert names(await _ids(client, user, due_state="overdue,due_soon", status="active")) == (
        attention
    )
    # Pages are full: the newest rows do not match, and still the first page has two items.
    first = await client.get(
        "/v1/reminders", params={"due_state": "overdue", "limit": 2}, headers=auth(user)
    )
    page = first.json()
    assert [r["due_state"] for r in page["items"]] == ["overdue", "overdue"]
    assert page["next_cursor"] is not None
    # A cursor belongs to its filters.
    other = await client.get(
        "/v1/reminders",
        params={"due_state": "due_soon", "limit": 2, "cursor": page["next_cursor"]},
        headers=auth(user),
    )
    assert other.status_code == 422, other.text


@pytest.mark.parametrize(
    "value",
    ["late", "overdue,", ",overdue", "overdue,,due_soon", "OVERDUE", "", "overdue due_soon"],
)
async def test_an_unknown_due_state_is_422(
    client: httpx.AsyncClient, db: asyncpg.Pool, value: str
) -> None:
    user = await create_user(db)
    resp = await client.get("/v1/reminders", params={"due_state": value}, headers=auth(user))
    assert resp.status_code == 422, resp.text
    problem = resp.json()
    assert problem["code"] == "validation_failed"
    assert problem["errors"][0]["loc"][:2] == ["query", "due_state"]
    # Twin: a known one passes alongside.
    ok = await client.get("/v1/reminders", params={"due_state": "overdue"}, headers=auth(user))
    assert ok.status_code == 200


async def test_due_state_filter_never_shows_another_tenants_reminders(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    alice, bob = await create_user(db), await create_user(db)
    alices = await _vehicle(client, alice, miles=10_000)
    bobs = await _vehicle(client, bob, miles=10_000)
    past = str(today_in(TZ) - timedelta(days=5))
    bobs_late = (await _create(client, bob, vehicle_id=bobs["id"], due_date=past)).json()["id"]
    alices_late = (await _create(client, alice, vehicle_id=alices["id"], due_date=past)).json()
    for state in ("overdue", "overdue,due_soon,upcoming,completed,dismissed"):
        assert await _ids(client, alice, due_state=state) == [alices_late["id"]]
        # Allow twin: Bob sees his.
        assert await _ids(client, bob, due_state=state) == [bobs_late]
    # Naming Bob's vehicle does not help Alice.
    assert await _ids(client, alice, due_state="overdue", vehicle_id=bobs["id"]) == []


async def test_cannot_attach_to_another_tenants_rows(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    alice, bob = await create_user(db), await create_user(db)
    alices_vehicle = await _vehicle(client, alice)
    alices_garage = await _garage(client, alice)
    for body in ({"vehicle_id": alices_vehicle["id"]}, {"garage_id": alices_garage}):
        resp = await _create(client, bob, **body)
        assert resp.status_code in (404, 422), resp.text
        nonexistent = await _create(client, bob, **{k: str(uuid.uuid4()) for k in body})
        assert (resp.status_code, resp.json()["code"]) == (
            nonexistent.status_code,
            nonexistent.json()["code"],
        )
    count = "select count(*) from public.reminders where tenant_id = $1"
    assert await db.fetchval(count, bob.tenant_id) == 0
    assert await db.fetchval(count, alice.tenant_id) == 0

    bobs = (await _create(client, bob)).json()
    moved = await client.patch(
        f"/v1/reminders/{bobs['id']}", json={"vehicle_id": alices_vehicle["id"]}, headers=auth(bob)
    )
    assert moved.status_code in (404, 422)
    # Allow twin: Alice can.
    assert (await _create(client, alice, vehicle_id=alices_vehicle["id"])).status_code == 201
    assert (await _create(client, alice, garage_id=alices_garage)).status_code == 201
    # Bob's lists never contain Alice's reminders, not even filtered by her vehicle.
    assert await _ids(client, bob) == [bobs["id"]]
    assert await _ids(client, bob, vehicle_id=alices_vehicle["id"]) == []


async def test_deleting_the_vehicle_deletes_its_reminders(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    user = await create_user(db)
    vehicle = await _vehicle(client, user)
    rid = (await _create(client, user, vehicle_id=vehicle["id"])).json()["id"]
    assert (
        await client.delete(f"/v1/vehicles/{vehicle['id']}", headers=auth(user))
    ).status_code == 204
    assert (await client.get(f"/v1/reminders/{rid}", headers=auth(user))).status_code == 404


@pytest.mark.parametrize("replays", [10])
async def test_idempotent_create(client: httpx.AsyncClient, db: asyncpg.Pool, replays: int) -> None:
    user = await create_user(db)
    key = {"Idempotency-Key": "rem-1"}
    first = await _create(client, user, key, title="once")
    again = await _create(client, user, key, title="once")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    other = await _create(client, user, key, title="twice")
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    results = await asyncio.gather(
        *(_create(client, user, {"Idempotency-Key": "rem-2"}, title="p") for _ in range(replays))
    )
    assert {r.status_code for r in results} <= {201, 409}
    count = "select count(*) from public.reminders where tenant_id = $1 and title = 'p'"
    assert await db.fetchval(count, user.tenant_id) == 1
