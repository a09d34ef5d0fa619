"""Vehicle images through the real app: register, list, caption, delete, URL safety, tenancy."""

import asyncio
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from tests.helpers import User, auth, create_user


async def _vehicle(client: httpx.AsyncClient, user: User) -> str:
    resp = await client.post("/v1/vehicles", json={"nickname": "v"}, headers=auth(user))
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


async def _create(
    client: httpx.AsyncClient, user: User, headers: dict[str, str] | None = None, **body: Any
) -> httpx.Response:
    body.setdefault("storage_url", "vehicle-images/a/front.jpg")
    return await client.post("/v1/images", json=body, headers={**auth(user), **(headers or {})})


async def _ids(client: httpx.AsyncClient, user: User, **params: Any) -> tuple[list[str], int]:
    ids: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = {**params, "limit": 3, **({"cursor": cursor} if cursor else {})}
        resp = await client.get("/v1/images", params=query, headers=auth(user))
        assert resp.status_code == 200, resp.text
        page = resp.json()
        ids += [i["id"] for i in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            return ids, pages


async def test_create_read_patch_delete(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    user = await create_user(db)
    vehicle_id = await _vehicle(client, user)
    resp = await _create(
        client,
        user,
        vehicle_id=vehicle_id,
        storage_url="https://cdn.example.com/img/front.jpg?w=1200",
        thumbnail_url="vehicle-images/a/front-thumb.jpg",
        caption="  After the wash ",
    )
    assert resp.status_code == 201, resp.text
    image = resp.json()
    assert image["caption"] == "After the wash"
    assert image["vehicle_id"] == vehicle_id
    assert image["created_by"] == str(user.id)
    assert resp.headers["Location"] == f"/v1/images/{image['id']}"

    got = await client.get(resp.headers["Location"], headers=auth(user))
    assert got.status_code == 200 and got.json() == image
    etag = got.headers["ETag"]

    patched = await client.patch(
        resp.headers["Location"], json={"caption": None}, headers={**auth(user), "If-Match": etag}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["caption"] is None
    assert patched.json()["storage_url"] == image["storage_url"]
    stale = await client.patch(
        resp.headers["Location"], json={"caption": "x"}, headers={**auth(user), "If-Match": etag}
    )
    assert stale.status_code == 412 and stale.json()["code"] == "precondition_failed"

    # Only the caption is writable.
    for field, value in (
        ("storage_url", "other.jpg"),
        ("thumbnail_url", "t.jpg"),
        ("vehicle_id", vehicle_id),
    ):
        refused = await client.patch(
            resp.headers["Location"], json={field: value}, headers=auth(user)
        )
        assert refused.status_code == 422, field

    assert (await client.delete(resp.headers["Location"], headers=auth(user))).status_code == 204
    gone = await client.get(resp.headers["Location"], headers=auth(user))
    assert gone.status_code == 404 and gone.json()["code"] == "not_found"
    assert (await _ids(client, user))[0] == []


async def test_paging_and_vehicle_filter(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    user = await create_user(db)
    first, second = await _vehicle(client, user), await _vehicle(client, user)
    mine: dict[str, set[str]] = {first: set(), second: set()}
    for i in range(8):
        vehicle_id = first if i < 5 else second
        resp = await _create(client, user, vehicle_id=vehicle_id, storage_url=f"img/{i}.jpg")
        assert resp.status_code == 201
        mine[vehicle_id].add(resp.json()["id"])
    every, pages = await _ids(client, user)
    assert pages == 3 and len(every) == len(set(every)) == 8
    assert set(every) == mine[first] | mine[second]
    only_first, pages = await _ids(client, user, vehicle_id=first)
    assert pages == 2 and len(only_first) == 5 and set(only_first) == mine[first]


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "data:image/png;base64,AAAA",
        "file:///etc/passwd",
        "ftp://example.com/x.jpg",
        "//evil.example.com/x.jpg",
        "../secrets/x.jpg",
        "img/../../x.jpg",
        "img/with space.jpg",
        "",
        "a" * 2049,
    ],
)
async def test_unsafe_urls_are_refused(
    client: httpx.AsyncClient, db: asyncpg.Pool, url: str
) -> None:
    user = await create_user(db)
    vehicle_id = await _vehicle(client, user)
    for field in ("storage_url", "thumbnail_url"):
        resp = await _create(client, user, vehicle_id=vehicle_id, **{field: url})
        assert resp.status_code == 422, (field, url)
        assert resp.json()["errors"][0]["loc"][:2] == ["body", field]
    count = "select count(*) from public.vehicle_images where tenant_id = $1"
    assert await db.fetchval(count, user.tenant_id) == 0


async def test_validation_and_server_owned_fields(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    user = await create_user(db)
    vehicle_id = await _vehicle(client, user)
    assert (await _create(client, user)).status_code == 422  # vehicle_id is required
    assert (
        await _create(client, user, vehicle_id=vehicle_id, caption="x" * 501)
    ).status_code == 422
    image = (await _create(client, user, vehicle_id=vehicle_id)).json()
    for field in ("id", "tenant_id", "created_by", "created_at", "deleted_at"):
        value = "2026-01-01T00:00:00Z" if field.endswith("_at") else str(uuid.uuid4())
        resp = await _create(client, user, vehicle_id=vehicle_id, **{field: value})
        assert resp.status_code == 422, field
        patch = await client.patch(
            f"/v1/images/{image['id']}", json={field: value}, headers=auth(user)
        )
        assert patch.status_code == 422, field
    count = "select count(*) from public.vehicle_images where tenant_id = $1"
    assert await db.fetchval(count, user.tenant_id) == 1


async def test_cannot_attach_to_another_tenants_vehicle(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    alice, bob = await create_user(db), await create_user(db)
    alices_vehicle = await _vehicle(client, alice)
    resp = await _create(client, bob, vehicle_id=alices_vehicle)
    assert resp.status_code in (404, 422), resp.text
    nonexistent = await _create(client, bob, vehicle_id=str(uuid.uuid4()))
    assert (resp.status_code, resp.json()["code"]) == (
        nonexistent.status_code,
        nonexistent.json()["code"],
    )
    count = "select count(*) from public.vehicle_images where tenant_id = $1"
    assert await db.fetchval(count, bob.tenant_id) == 0
    assert await db.fetchval(count, alice.tenant_id) == 0
    # Allow twin.
    alices = await _create(client, alice, vehicle_id=alices_vehicle)
    assert alices.status_code == 201
    assert (await _ids(client, bob))[0] == []
    assert (await _ids(client, bob, vehicle_id=alices_vehicle))[0] == []
    assert (await client.get(alices.headers["Location"], headers=auth(bob))).status_code == 404


async def test_deleting_the_vehicle_deletes_its_images(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    user = await create_user(db)
    vehicle_id = await _vehicle(client, user)
    image = (await _create(client, user, vehicle_id=vehicle_id)).json()
    assert (
        await client.delete(f"/v1/vehicles/{vehicle_id}", headers=auth(user))
    ).status_code == 204
    assert (await client.get(f"/v1/images/{image['id']}", headers=auth(user))).status_code == 404
    # And a deleted vehicle takes no new images.
    assert (await _create(client, user, vehicle_id=vehicle_id)).status_code in (404, 422)


async def test_idempotent_create(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    user = await create_user(db)
    vehicle_id = await _vehicle(client, user)
    key = {"Idempotency-Key": "img-1"}
    first = await _create(client, user, key, vehicle_id=vehicle_id)
    again = await _create(client, user, key, vehicle_id=vehicle_id)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    other = await _create(client, user, key, vehicle_id=vehicle_id, caption="different")
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    results = await asyncio.gather(
        *(
            _create(client, user, {"Idempotency-Key": "img-2"}, vehicle_id=vehicle_id, caption="p")
            for _ in range(10)
        )
    )
    assert {r.status_code for r in results} <= {201, 409}
    count = "select count(*) from public.vehicle_images where tenant_id = $1 and caption = 'p'"
    assert await db.fetchval(count, user.tenant_id) == 1
