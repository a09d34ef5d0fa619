"""Vehicles through the real app: CRUD, paging, filters, validation, uniqueness, tenancy."""

import asyncio
import uuid
from datetime import date
from typing import Any

import asyncpg
import httpx
import pytest

from tests.helpers import User, auth, create_user

VIN = "1HGCM82633A004352"


def vin_of(n: int) -> str:
    """A distinct valid VIN per n (digits only, 17 long)."""
    return f"{n:017d}"


async def _create(
    client: httpx.AsyncClient, user: User, headers: dict[str, str] | None = None, **body: Any
) -> httpx.Response:
    return await client.post("/v1/vehicles", json=body, headers={**auth(user), **(headers or {})})


async def _garage(client: httpx.AsyncClient, user: User, name: str = "G") -> str:
    resp = await client.post("/v1/garages", json={"name": name}, headers=auth(user))
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


async def _walk(
    client: httpx.AsyncClient, user: User, params: dict[str, Any], limit: int = 3
) -> tuple[list[dict[str, Any]], int]:
    """Every item of a list, following cursors; and how many pages it took."""
    items: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        resp = await client.get("/v1/vehicles", params=query, headers=auth(user))
        assert resp.status_code == 200, resp.text
        page = resp.json()
        items += page["items"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            return items, pages


async def test_create_read_patch_delete(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    user = await create_user(db)
    garage_id = await _garage(client, user)
    resp = await _create(
        client,
        user,
        garage_id=garage_id,
        year=2019,
        make=" Honda ",
        model="CB500X",
        vin=VIN.lower(),
        license_plate="7ABC123",
        nickname="Red bike",
        timezone="America/Los_Angeles",
    )
    assert resp.status_code == 201, resp.text
    vehicle = resp.json()
    assert vehicle["vin"] == VIN  # upper-cased
    assert vehicle["make"] == "Honda"  # trimmed
    assert vehicle["current_mileage"] is None
    assert vehicle["garage_id"] == garage_id
    assert vehicle["created_by"] == str(user.id)
    assert resp.headers["Location"] == f"/v1/vehicles/{vehicle['id']}"
    assert "ETag" in resp.headers

    defaulted = (await _create(client, user, nickname="plain")).json()
    assert defaulted["timezone"] == "America/New_York"

    got = await client.get(resp.headers["Location"], headers=auth(user))
    assert got.status_code == 200 and got.json() == vehicle
    etag = got.headers["ETag"]

    patched = await client.patch(
        f"/v1/vehicles/{vehicle['id']}",
        json={"nickname": "Commuter", "color": "red", "trim": "ABS", "garage_id": None},
        headers={**auth(user), "If-Match": etag},
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert (body["nickname"], body["color"], body["trim"], body["garage_id"]) == (
        "Commuter",
        "red",
        "ABS",
        None,
    )
    assert body["vin"] == VIN and body["make"] == "Honda"
    assert patched.headers["ETag"] != etag

    stale = await client.patch(
        f"/v1/vehicles/{vehicle['id']}",
        json={"nickname": "X"},
        headers={**auth(user), "If-Match": etag},
    )
    assert stale.status_code == 412 and stale.json()["code"] == "precondition_failed"
    stale_delete = await client.delete(
        f"/v1/vehicles/{vehicle['id']}", headers={**auth(user), "If-Match": etag}
    )
    assert stale_delete.status_code == 412

    deleted = await client.delete(
        f"/v1/vehicles/{vehicle['id']}",
        headers={**auth(user), "If-Match": patched.headers["ETag"]},
    )
    assert deleted.status_code == 204
    gone = await client.get(f"/v1/vehicles/{vehicle['id']}", headers=auth(user))
    assert gone.status_code == 404 and gone.json()["code"] == "not_found"
    assert (
        await client.patch(f"/v1/vehicles/{vehicle['id']}", json={}, headers=auth(user))
    ).status_code == 404
    assert (
        await client.delete(f"/v1/vehicles/{vehicle['id']}", headers=auth(user))
    ).status_code == 404
    listed = (await client.get("/v1/vehicles", headers=auth(user))).json()["items"]
    assert [v["id"] for v in listed] == [defaulted["id"]]


async def test_paging_serves_every_row_exactly_once(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    user = await create_user(db)
    garage_id = await _garage(client, user)
    in_garage = set()
    for i in range(8):
        resp = await _create(client, user, nickname=f"v{i}", garage_id=garage_id if i % 2 else None)
        assert resp.status_code == 201
        if i % 2:
            in_garage.add(resp.json()["id"])
    items, pages = await _walk(client, user, {})
    assert pages == 3
    assert sorted(v["nickname"] for v in items) == [f"v{i}" for i in range(8)]
    assert len({v["id"] for v in items}) == 8
    created = [v["created_at"] for v in items]
    assert created == sorted(created, reverse=True)  # newest first

    filtered, pages = await _walk(client, user, {"garage_id": garage_id}, limit=2)
    assert pages == 2 and [v["id"] for v in filtered] and {v["id"] for v in filtered} == in_garage

    # A cursor belongs to its filters.
    first = (await client.get("/v1/vehicles", params={"limit": 2}, headers=auth(user))).json()
    other = await client.get(
        "/v1/vehicles",
        params={"limit": 2, "garage_id": garage_id, "cursor": first["next_cursor"]},
        headers=auth(user),
    )
    assert other.status_code == 422 and other.json()["code"] == "invalid_cursor"
    assert (
        await client.get("/v1/vehicles", params={"limit": 201}, headers=auth(user))
    ).status_code == 422


async def test_q_searches_make_model_nickname_vin_plate(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    user = await create_user(db)
    honda = (await _create(client, user, make="Honda", model="Africa Twin")).json()
    bmw = (await _create(client, user, make="BMW", model="R 1250 GS", nickname="Big_Boxer")).json()
    vin = (await _create(client, user, vin=VIN)).json()
    plate = (await _create(client, user, license_plate="MOTO-42")).json()
    percent = (await _create(client, user, nickname="100% fun")).json()

    async def ids(q: str) -> set[str]:
        resp = await client.get("/v1/vehicles", params={"q": q}, headers=auth(user))
        assert resp.status_code == 200, resp.text
        return {v["id"] for v in resp.json()["items"]}

    assert await ids("hond") == {honda["id"]}
    assert await ids("TWIN") == {honda["id"]}
    assert await ids("boxer") == {bmw["id"]}
    assert await ids("cm8263") == {vin["id"]}
    assert await ids("moto-4") == {plate["id"]}
    # LIKE wildcards in q are literal characters.
    assert await ids("%") == {percent["id"]}
    assert await ids("_") == {bmw["id"]}
    assert await ids("nothing-like-this") == set()
    assert (
        await client.get("/v1/vehicles", params={"q": ""}, headers=auth(user))
    ).status_code == 422


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("vin", "1HGCM82633A00435"),  # 16 characters
        ("vin", "1HGCM82633A0043521"),  # 18 characters
        ("vin", "1HGCM82633A00435I"),  # I
        ("vin", "1HGCM82633A00435o"),  # o (any case)
        ("vin", "1HGCM82633A00435Q"),  # Q
        ("vin", "1HGCM82633A0043-2"),
        ("year", 1885),
        ("year", date.today().year + 2),
        ("year", "nineteen"),
        ("timezone", "Mars/Olympus_Mons"),
        ("timezone", "EST5EDT-nope"),
        ("timezone", None),
        ("make", "x" * 101),
        ("license_plate", "x" * 21),
        ("nickname", ""),
        ("current_mileage", 100),  # not writable on create
        ("garage_id", "not-a-uuid"),
    ],
)
async def test_validation(
    client: httpx.AsyncClient, db: asyncpg.Pool, field: str, value: Any
) -> None:
    user = await create_user(db)
    resp = await _create(client, user, **{field: value})
    assert resp.status_code == 422, resp.text
    problem = resp.json()
    assert problem["code"] == "validation_failed"
    assert problem["errors"][0]["loc"][:2] == ["body", field]
    count = "select count(*) from public.vehicles where tenant_id = $1"
    assert await db.fetchval(count, user.tenant_id) == 0


async def test_valid_edges_are_accepted(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    user = await create_user(db)
    for body in (
        {"year": 1886},
        {"year": date.today().year + 1},
        {"timezone": "Europe/Berlin"},
        {"timezone": "UTC"},
        {"vin": "abcdefghjklmnprst".upper()},
    ):
        resp = await _create(client, user, nickname="edge", **body)
        assert resp.status_code == 201, (body, resp.text)


IDENTITY = ("make", "model", "nickname", "vin", "license_plate")


def _missing_identity(resp: httpx.Response) -> None:
    assert resp.status_code == 422, resp.text
    problem = resp.json()
    assert problem["code"] == "validation_failed"
    assert [(e["loc"], e["type"]) for e in problem["errors"]] == [(["body"], "missing_identity")]
    assert all(name in problem["errors"][0]["msg"] for name in IDENTITY)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"year": 2019, "color": "Red", "trim": "ABS", "timezone": "UTC"},
        {name: None for name in IDENTITY},
    ],
)
async def test_a_vehicle_needs_something_that_identifies_it(
    client: httpx.AsyncClient, db: asyncpg.Pool, body: dict[str, Any]
) -> None:
    user = await create_user(db)
    _missing_identity(await _create(client, user, **body))
    count = "select count(*) from public.vehicles where tenant_id = $1"
    assert await db.fetchval(count, user.tenant_id) == 0
    # Twin: any one identifying field is enough.
    for name, value in zip(IDENTITY, ("Honda", "CB500X", "Red bike", VIN, "7ABC123"), strict=True):
        resp = await _create(client, user, **{**body, name: value})
        assert resp.status_code == 201, (name, resp.text)


async def test_patch_cannot_clear_the_last_identifying_field(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    user = await create_user(db)
    vehicle = (await _create(client, user, make="Honda", nickname="Red bike")).json()
    url = f"/v1/vehicles/{vehicle['id']}"
    for body in ({name: None for name in IDENTITY}, {"make": None, "nickname": None}):
        _missing_identity(await client.patch(url, json=body, headers=auth(user)))
    unchanged = (await client.get(url, headers=auth(user))).json()
    assert (unchanged["make"], unchanged["nickname"]) == ("Honda", "Red bike")
    # Twins: clearing all but one, or replacing the last one, is fine.
    cleared = await client.patch(url, json={"make": None}, headers=auth(user))
    assert cleared.status_code == 200 and cleared.json()["nickname"] == "Red bike"
    swapped = await client.patch(url, json={"nickname": None, "vin": VIN}, headers=auth(user))
    assert swapped.status_code == 200, swapped.text
    _missing_identity(await client.patch(url, json={"vin": None}, headers=auth(user)))


async def test_a_vehicle_stored_without_identity_can_still_be_patched(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    """Rows from before the rule (or direct SQL): a PATCH that touches no identifying field
    passes; one that leaves them all empty does not."""
    user = await create_user(db)
    vehicle_id = await db.fetchval(
        "insert into public.vehicles (tenant_id, year) values ($1, 2001) returning id",
        user.tenant_id,
    )
    url = f"/v1/vehicles/{vehicle_id}"
    moved = await client.patch(
        url, json={"timezone": "UTC", "current_mileage": 5}, headers=auth(user)
    )
    assert moved.status_code == 200, moved.text
    _missing_identity(await client.patch(url, json={"make": None}, headers=auth(user)))
    named = await client.patch(url, json={"nickname": "Old one"}, headers=auth(user))
    assert named.status_code == 200, named.text


async def test_server_owned_fields_are_refused(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    user = await create_user(db)
    vehicle = (await _create(client, user, nickname="mine")).json()
    for field in ("id", "tenant_id", "created_by", "created_at", "deleted_at", "updated_by"):
        value = "2026-01-01T00:00:00Z" if field.endswith("_at") else str(uuid.uuid4())
        resp = await _create(client, user, nickname="x", **{field: value})
        assert resp.status_code == 422, field
        assert resp.json()["code"] == "validation_failed"
        patch = await client.patch(
            f"/v1/vehicles/{vehicle['id']}", json={field: value}, headers=auth(user)
        )
        assert patch.status_code == 422, field
    count = "select count(*) from public.vehicles where tenant_id = $1"
    assert await db.fetchval(count, user.tenant_id) == 1
    after = await client.get(f"/v1/vehicles/{vehicle['id']}", headers=auth(user))
    assert after.json() == vehicle


async def test_vin_and_plate_unique_per_tenant(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    alice, bob = await create_user(db), await create_user(db)
    first = await _create(client, alice, vin=VIN, license_plate="ABC 123")
    assert first.status_code == 201
    # Another tenant may hold the same VIN and plate: nothing leaks, nothing conflicts.
    theirs = await _create(client, bob, vin=VIN, license_plate="ABC 123")
    assert theirs.status_code == 201, theirs.text

    dup_vin = await _create(client, alice, vin=VIN.lower())
    assert dup_vin.status_code == 409, dup_vin.text
    assert dup_vin.json()["code"] == "duplicate_vin"
    assert "vehicles_tenant" not in dup_vin.text  # no constraint names
    dup_plate = await _create(client, alice, license_plate="abc 123")
    assert dup_plate.status_code == 409 and dup_plate.json()["code"] == "duplicate_plate"

    other = (await _create(client, alice, nickname="other")).json()
    by_patch = await client.patch(
        f"/v1/vehicles/{other['id']}", json={"vin": VIN}, headers=auth(alice)
    )
    assert by_patch.status_code == 409 and by_patch.json()["code"] == "duplicate_vin"

    # A deleted vehicle frees its VIN and plate.
    vehicle_id = first.json()["id"]
    assert (
        await client.delete(f"/v1/vehicles/{vehicle_id}", headers=auth(alice))
    ).status_code == 204
    again = await _create(client, alice, vin=VIN, license_plate="ABC 123")
    assert again.status_code == 201


async def test_current_mileage_only_goes_up(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    user = await create_user(db)
    vehicle = (await _create(client, user, nickname="m")).json()
    url = f"/v1/vehicles/{vehicle['id']}"
    up = await client.patch(url, json={"current_mileage": 1200}, headers=auth(user))
    assert up.status_code == 200 and up.json()["current_mileage"] == 1200
    same = await client.patch(url, json={"current_mileage": 1200}, headers=auth(user))
    assert same.status_code == 200
    down = await client.patch(url, json={"current_mileage": 1199}, headers=auth(user))
    # The odometer rule, as the timeline answers it: the reading it conflicts with is named.
    assert down.status_code == 409, down.text
    assert down.json()["code"] == "odometer_rollback"
    assert "1200 miles" in down.json()["detail"]
    cleared = await client.patch(url, json={"current_mileage": None}, headers=auth(user))
    assert cleared.status_code == 422
    negative = await client.patch(url, json={"current_mileage": -1}, headers=auth(user))
    assert negative.status_code == 422
    assert (await client.get(url, headers=auth(user))).json()["current_mileage"] == 1200
    # The raise is a reading on the timeline, so the odometer rule keeps holding after it.
    timeline = (await client.get(f"{url}/timeline", headers=auth(user))).json()["items"]
    assert [(e["type"], e["miles"]) for e in timeline] == [("odometer", 1200)]
    lower = await client.post(
        "/v1/timeline",
        json={"vehicle_id": vehicle["id"], "type": "odometer", "miles": 1100},
        headers=auth(user),
    )
    assert lower.status_code == 409 and lower.json()["code"] == "odometer_rollback"


async def test_garage_must_be_a_live_garage_of_the_tenant(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    alice, bob = await create_user(db), await create_user(db)
    alices_garage = await _garage(client, alice)
    into_alices = await _create(client, bob, nickname="b", garage_id=alices_garage)
    assert into_alices.status_code in (404, 422), into_alices.text
    assert into_alices.json()["code"] in ("not_found", "garage_not_found")
    missing = await _create(client, bob, nickname="b", garage_id=str(uuid.uuid4()))
    # A foreign garage answers exactly like a nonexistent one.
    assert (missing.status_code, missing.json()["code"]) == (
        into_alices.status_code,
        into_alices.json()["code"],
    )
    bobs = (await _create(client, bob, nickname="b")).json()
    moved = await client.patch(
        f"/v1/vehicles/{bobs['id']}", json={"garage_id": alices_garage}, headers=auth(bob)
    )
    assert moved.status_code in (404, 422)
    count = "select count(*) from public.vehicles where tenant_id = $1"
    assert await db.fetchval(count, bob.tenant_id) == 1
    assert await db.fetchval(count, alice.tenant_id) == 0
    # Allow twin: the owner can.
    assert (await _create(client, alice, nickname="a", garage_id=alices_garage)).status_code == 201

    # A deleted garage is gone for new vehicles, and its vehicles stay with garage_id null.
    doomed = await _garage(client, alice, "doomed")
    kept = (await _create(client, alice, nickname="a", garage_id=doomed)).json()
    assert (await client.delete(f"/v1/garages/{doomed}", headers=auth(alice))).status_code == 204
    assert (await _create(client, alice, nickname="a", garage_id=doomed)).status_code in (404, 422)
    after = (await client.get(f"/v1/vehicles/{kept['id']}", headers=auth(alice))).json()
    assert after["garage_id"] is None


async def test_lists_never_show_other_tenants(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    alice, bob = await create_user(db), await create_user(db)
    alices = (await _create(client, alice, make="Ducati")).json()
    bobs = (await _create(client, bob, make="Ducati")).json()
    seen = (await client.get("/v1/vehicles", params={"q": "ducati"}, headers=auth(bob))).json()
    assert [v["id"] for v in seen["items"]] == [bobs["id"]]
    url = f"/v1/vehicles/{alices['id']}"
    assert (await client.get(url, headers=auth(bob))).status_code == 404
    assert (await client.get(url, headers=auth(alice))).status_code == 200


async def test_idempotent_create(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    user = await create_user(db)
    key = {"Idempotency-Key": "veh-1"}
    first = await _create(client, user, key, vin=VIN)
    again = await _create(client, user, key, vin=VIN)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    other = await _create(client, user, key, vin=vin_of(1))
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    results = await asyncio.gather(
        *(_create(client, user, {"Idempotency-Key": "veh-2"}, nickname="p") for _ in range(10))
    )
    assert {r.status_code for r in results} <= {201, 409} and 201 in {
        r.status_code for r in results
    }
    count = "select count(*) from public.vehicles where tenant_id = $1 and nickname = 'p'"
    assert await db.fetchval(count, user.tenant_id) == 1
