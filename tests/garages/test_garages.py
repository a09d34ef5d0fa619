"""Garages through the real app: CRUD, paging, conventions, and tenant isolation."""

import asyncio
import uuid

import asyncpg
import httpx

from tests.helpers import User, auth, create_user


async def _create(
    client: httpx.AsyncClient, user: User, name: str, **headers: str
) -> httpx.Response:
    return await client.post("/v1/garages", json={"name": name}, headers={**auth(user), **headers})


async def test_create_read_patch_delete(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    user = await create_user(db)
    resp = await client.post(
        "/v1/garages", json={"name": "  Family  ", "description": "home"}, headers=auth(user)
    )
    assert resp.status_code == 201, resp.text
    garage = resp.json()
    assert garage["name"] == "Family"  # trimmed
    assert garage["created_by"] == str(user.id)
    assert resp.headers["Location"] == f"/v1/garages/{garage['id']}"

    got = await client.get(resp.headers["Location"], headers=auth(user))
    assert got.status_code == 200 and got.json() == garage
    etag = got.headers["ETag"]

    patched = await client.patch(
        f"/v1/garages/{garage['id']}",
        json={"description": None},
        headers={**auth(user), "If-Match": etag},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["description"] is None
    assert patched.json()["name"] == "Family"
    assert patched.headers["ETag"] != etag

    stale = await client.patch(
        f"/v1/garages/{garage['id']}", json={"name": "X"}, headers={**auth(user), "If-Match": etag}
    )
    assert stale.status_code == 412
    assert stale.json()["code"] == "precondition_failed"

    deleted = await client.delete(f"/v1/garages/{garage['id']}", headers=auth(user))
    assert deleted.status_code == 204
    gone = await client.get(f"/v1/garages/{garage['id']}", headers=auth(user))
    assert gone.status_code == 404
    assert gone.headers["content-type"].startswith("application/problem+json")


async def test_paging_serves_every_row_exactly_once(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    user = await create_user(db)
    names = {f"g{i}" for i in range(7)}
    for name in names:
        assert (await _create(client, user, name)).status_code == 201
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/v1/garages", params=params, headers=auth(user))).json()
        seen += [g["name"] for g in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert sorted(seen) == sorted(names)

    tampered = cursor_of_first_page = (
        await client.get("/v1/garages", params={"limit": 3}, headers=auth(user))
    ).json()["next_cursor"]
    assert cursor_of_first_page
    bad = await client.get(
        "/v1/garages", params={"cursor": tampered[:-2] + "AA"}, headers=auth(user)
    )
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_cursor"
    too_big = await client.get("/v1/garages", params={"limit": 201}, headers=auth(user))
    assert too_big.status_code == 422


async def test_server_owned_fields_are_refused(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    user = await create_user(db)
    for field in ("id", "tenant_id", "created_by", "created_at", "deleted_at"):
        resp = await client.post(
            "/v1/garages", json={"name": "x", field: str(uuid.uuid4())}, headers=auth(user)
        )
        assert resp.status_code == 422, field
        assert resp.json()["code"] == "validation_failed"
    assert (
        await db.fetchval(
            "select count(*) from public.garages where tenant_id = $1", user.tenant_id
        )
        == 0
    )


async def test_idempotency_replay_reuse_and_parallel_retries(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    user = await create_user(db)
    first = await _create(client, user, "Fleet", **{"Idempotency-Key": "k1"})
    again = await _create(client, user, "Fleet", **{"Idempotency-Key": "k1"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"]
    other = await _create(client, user, "Other", **{"Idempotency-Key": "k1"})
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"

    results = await asyncio.gather(
        *(_create(client, user, "Parallel", **{"Idempotency-Key": "k2"}) for _ in range(10))
    )
    assert {r.status_code for r in results} <= {201, 409}
    assert any(r.status_code == 201 for r in results)
    count = await db.fetchval(
        "select count(*) from public.garages where tenant_id = $1 and name = 'Parallel'",
        user.tenant_id,
    )
    assert count == 1
    # Another user of the same tenant has its own key space.
    colleague = await create_user(db, tenant_id=user.tenant_id)
    mine = await _create(client, colleague, "Fleet", **{"Idempotency-Key": "k1"})
    assert mine.status_code == 201 and "Idempotent-Replayed" not in mine.headers


async def test_another_tenants_garage_is_not_found_and_unchanged(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    alice, bob = await create_user(db), await create_user(db)
    garage = (await _create(client, alice, "Alice's")).json()
    url = f"/v1/garages/{garage['id']}"
    assert (await client.get(url, headers=auth(bob))).status_code == 404
    assert (await client.patch(url, json={"name": "pwned"}, headers=auth(bob))).status_code == 404
    assert (await client.delete(url, headers=auth(bob))).status_code == 404
    listed = (await client.get("/v1/garages", headers=auth(bob))).json()["items"]
    assert garage["id"] not in {g["id"] for g in listed}
    # Allow twin: the owner still sees it, unchanged.
    mine = await client.get(url, headers=auth(alice))
    assert mine.status_code == 200 and mine.json() == garage
