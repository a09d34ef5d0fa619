"""GET/PATCH /v1/me and /v1/tenant."""

import asyncpg
import httpx
import pytest

from tests.helpers import auth, create_user


async def test_get_me(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    user = await create_user(db)
    resp = await client.get("/v1/me", headers=auth(user))
    assert resp.status_code == 200
    body = resp.json()
    assert set(body) == {"id", "email", "name", "created_at", "tenant"}
    assert body["id"] == str(user.id)
    assert body["email"] == user.email
    assert body["tenant"]["id"] == str(user.tenant_id)
    assert set(body["tenant"]) == {"id", "name"}


async def test_patch_me_name_is_trimmed_and_persisted(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    user = await create_user(db)
    resp = await client.patch("/v1/me", headers=auth(user), json={"name": "  Sam Rivera  "})
    assert resp.status_code == 200, resp.text
    assert resp.json()["name"] == "Sam Rivera"
    # Committed before the response was sent.
    stored = await db.fetchval("select name from public.profiles where id = $1", user.id)
    assert stored == "Sam Rivera"
    assert (await client.get("/v1/me", headers=auth(user))).json()["name"] == "Sam Rivera"
    resp = await client.patch("/v1/me", headers=auth(user), json={"name": None})
    assert resp.json()["name"] is None
    resp = await client.patch("/v1/me", headers=auth(user), json={})
    assert resp.status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"email": "evil@example.com"},
        {"id": "00000000-0000-0000-0000-000000000000"},
        {"tenant_id": "00000000-0000-0000-0000-000000000000"},
        {"created_at": "2020-01-01T00:00:00Z"},
        {"updated_at": "2020-01-01T00:00:00Z"},
        {"name": "ok", "role": "admin"},
        {"name": "x" * 201},
        {"name": ""},
        {"name": "   "},
        {"name": "nul\x00byte"},
        {"name": 42},
    ],
)
@pytest.mark.parametrize("path", ["/v1/me", "/v1/tenant"])
async def test_patch_refuses_unknown_and_server_owned_fields(
    client: httpx.AsyncClient, db: asyncpg.Pool, body: dict[str, object], path: str
) -> None:
    user = await create_user(db)
    resp = await client.patch(path, headers=auth(user), json=body)
    assert resp.status_code == 422, (path, body, resp.text)
    assert resp.headers["content-type"] == "application/problem+json"
    problem = resp.json()
    assert problem["code"] == "validation_failed"
    assert problem["errors"] and all({"loc", "msg", "type"} == set(e) for e in problem["errors"])
    assert "evil@example.com" not in resp.text  # input values are never echoed


async def test_get_and_patch_tenant(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    user = await create_user(db)
    resp = await client.get("/v1/tenant", headers=auth(user))
    assert resp.status_code == 200
    assert resp.json()["id"] == str(user.tenant_id)
    resp = await client.patch("/v1/tenant", headers=auth(user), json={"name": " Rivera family "})
    assert resp.status_code == 200, resp.text
    assert resp.json()["name"] == "Rivera family"
    assert (await client.get("/v1/me", headers=auth(user))).json()["tenant"]["name"] == (
        "Rivera family"
    )


async def test_tenants_are_isolated(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    a, b = await create_user(db), await create_user(db)
    await client.patch("/v1/tenant", headers=auth(a), json={"name": "Tenant A"})
    await client.patch("/v1/me", headers=auth(a), json={"name": "Alice"})

    # B sees only B's tenant and profile.
    b_tenant = (await client.get("/v1/tenant", headers=auth(b))).json()
    assert b_tenant["id"] == str(b.tenant_id)
    assert b_tenant["name"] != "Tenant A"
    b_me = (await client.get("/v1/me", headers=auth(b))).json()
    assert b_me["id"] == str(b.id)
    assert "Alice" not in str(b_me)

    # B's writes change B's rows, never A's.
    resp = await client.patch("/v1/tenant", headers=auth(b), json={"name": "Tenant B"})
    assert resp.json()["id"] == str(b.tenant_id)
    await client.patch("/v1/me", headers=auth(b), json={"name": "Bob"})
    a_row = await db.fetchrow(
        """select t.name as tenant, p.name from public.profiles p
           join public.tenants t on t.id = p.tenant_id where p.id = $1""",
        a.id,
    )
    assert a_row is not None
    assert (a_row["tenant"], a_row["name"]) == ("Tenant A", "Alice")


async def test_a_member_of_the_same_tenant_sees_only_their_own_profile(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    a = await create_user(db)
    teammate = await create_user(db, tenant_id=a.tenant_id)
    await client.patch("/v1/me", headers=auth(teammate), json={"name": "Teammate"})
    me = (await client.get("/v1/me", headers=auth(a))).json()
    assert me["id"] == str(a.id)
    assert me["name"] != "Teammate"
    assert await db.fetchval("select name from public.profiles where id = $1", a.id) is None


async def test_errors_are_problems(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    user = await create_user(db)
    resp = await client.get("/v1/nope", headers=auth(user))
    assert resp.status_code == 404
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["code"] == "not_found"
    resp = await client.delete("/v1/me", headers=auth(user))
    assert resp.status_code == 405
    assert resp.json()["code"] == "method_not_allowed"
    assert "allow" in resp.headers
    resp = await client.patch(
        "/v1/me", headers={**auth(user), "content-type": "application/json"}, content=b"{bad"
    )
    assert resp.status_code == 400
    assert resp.json()["code"] == "malformed_json"


async def test_profile_and_tenant_carry_etags_and_honour_if_match(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    user = await create_user(db)
    for path, body in (("/v1/me", {"name": "Sam"}), ("/v1/tenant", {"name": "Rivera family"})):
        got = await client.get(path, headers=auth(user))
        etag = got.headers["ETag"]
        changed = await client.patch(path, json=body, headers={**auth(user), "If-Match": etag})
        assert changed.status_code == 200, changed.text
        assert changed.headers["ETag"] != etag
        stale = await client.patch(
            path, json={"name": "Other"}, headers={**auth(user), "If-Match": etag}
        )
        assert stale.status_code == 412 and stale.json()["code"] == "precondition_failed"
        assert (await client.get(path, headers=auth(user))).json()["name"] == body["name"]
