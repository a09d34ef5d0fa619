"""The timeline lists' fast path (app/fast_path.py): taken for the everyday page, and answering
every request, good or bad, exactly as FastAPI's own handling of the route does."""

import asyncio
import random
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import quote

import asyncpg
import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI

from app.auth import UserIdentity, require_user
from app.db import ListConn, list_connection
from app.fast_path import FastPathRoute, fast_path
from app.timeline.router import _everyday_page
from app.timeline.router import router as timeline_router
from tests.helpers import User, auth, claims_for, create_user, token_for
from tests.jwt_support import DROP, bearer, claims, hs256, unsigned
from tests.timeline.support import append, make_vehicle

VEHICLE_ROUTE = "/v1/vehicles/{vehicle_id}/timeline"
TENANT_ROUTE = "/v1/timeline"


@asynccontextmanager
async def standard_handling(app: FastAPI) -> AsyncIterator[None]:
    """Every request through FastAPI's parameters and dependencies: any dependency override,
    even this one that changes nothing, turns the fast paths off (they would bypass it)."""
    app.dependency_overrides[list_connection] = list_connection
    try:
        yield
    finally:
        del app.dependency_overrides[list_connection]


async def served_fast(client: httpx.AsyncClient, route: str | None = None) -> float:
    """motomind_fast_path_requests_total for the route (all routes: None), from /metrics."""
    metrics = (await client.get("/metrics")).text
    label = re.escape(route) if route else '[^"]*'
    pattern = rf'^motomind_fast_path_requests_total\{{route="{label}"\}} (\S+)$'
    return sum(float(v) for v in re.findall(pattern, metrics, re.MULTILINE))


def answer(resp: httpx.Response) -> tuple[int, dict[str, str], str]:
    headers = {k: v for k, v in resp.headers.items() if k != "x-request-id"}
    return resp.status_code, headers, resp.text


Answer = tuple[int, dict[str, str], str]


async def both_answers(
    app: FastAPI, client: httpx.AsyncClient, url: str, headers: dict[str, str]
) -> tuple[Answer, Answer, bool]:
    """The answer as served, FastAPI's own answer, and whether the first was the fast path's."""
    before = await served_fast(client)
    served = answer(await client.get(url, headers=headers))
    taken = await served_fast(client) > before
    async with standard_handling(app):
        standard = answer(await client.get(url, headers=headers))
    return served, standard, taken


async def timeline_owner(client: httpx.AsyncClient, db: asyncpg.Pool) -> tuple[User, uuid.UUID]:
    user = await create_user(db)
    vid = await make_vehicle(db, user)
    for miles in (100, 200, 300, 400, 500):
        assert (await append(client, user, vid, miles=miles)).status_code == 201
    return user, vid


async def test_everyday_pages_take_the_fast_path(
    app: FastAPI, client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    user, vid = await timeline_owner(client, db)
    headers = auth(user)
    path = f"/v1/vehicles/{vid}/timeline"
    # A token's first request goes through require_user, which verifies it; later ones can be fast.
    assert (await client.get(path, headers=headers)).status_code == 200

    for route, url in ((VEHICLE_ROUTE, path), (TENANT_ROUTE, "/v1/timeline")):
        before = await served_fast(client, route)
        miles, requests = [], 0
        next_url: str | None = f"{url}?limit=2"
        while next_url:
            resp = await client.get(next_url, headers=headers)
            requests += 1
            assert resp.status_code == 200, resp.text
            page = resp.json()
            miles += [e["miles"] for e in page["items"]]
            cursor = page["next_cursor"]
            next_url = f"{url}?limit=2&cursor={quote(cursor)}" if cursor else None
        assert miles == [500, 400, 300, 200, 100]
        assert requests == 3
        assert await served_fast(client, route) == before + requests

    # A filter is FastAPI's: answered correctly, not by the fast path.
    before = await served_fast(client, VEHICLE_ROUTE)
    filtered = await client.get(f"{path}?type=odometer&limit=1", headers=headers)
    assert filtered.status_code == 200 and filtered.json()["items"][0]["miles"] == 500
    assert await served_fast(client, VEHICLE_ROUTE) == before


async def test_another_tenants_vehicle_is_a_404_on_the_fast_path(
    app: FastAPI, client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    _, vid = await timeline_owner(client, db)
    intruder = await create_user(db)
    headers = auth(intruder)
    assert (await client.get("/v1/timeline", headers=headers)).json()["items"] == []
    before = await served_fast(client, VEHICLE_ROUTE)
    resp = await client.get(f"/v1/vehicles/{vid}/timeline", headers=headers)
    assert resp.status_code == 404 and resp.json()["code"] == "not_found"
    assert await served_fast(client, VEHICLE_ROUTE) == before + 1
    # Nothing of the owner's reached the intruder's tenant-wide list either.
    assert (await client.get("/v1/timeline", headers=headers)).json()["items"] == []


async def test_paths_and_parameters_get_the_same_answers(
    app: FastAPI, client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    """Good and bad paths and parameters: the same status, headers and body; the fast path
    takes exactly the everyday ones."""
    user, vid = await timeline_owner(client, db)
    _, other_vid = await timeline_owner(client, db)
    empty_vid = await make_vehicle(db, user)
    deleted_vid = await make_vehicle(db, user)
    await db.execute("update public.vehicles set deleted_at = now() where id = $1", deleted_vid)
    headers = auth(user)
    first = (await client.get(f"/v1/vehicles/{vid}/timeline?limit=2", headers=headers)).json()
    cursor = first["next_cursor"]
    tenant_cursor = (await client.get("/v1/timeline?limit=2", headers=headers)).json()
    # (path or query, whether the fast path takes it)
    paths = [
        (f"/v1/vehicles/{vid}/timeline", True),
        (f"/v1/vehicles/{str(vid).upper()}/timeline", False),
        (f"/v1/vehicles/{vid.hex}/timeline", False),
        (f"/v1/vehicles/{other_vid}/timeline", True),
        (f"/v1/vehicles/{empty_vid}/timeline", True),
        (f"/v1/vehicles/{deleted_vid}/timeline", True),
        (f"/v1/vehicles/{uuid.uuid4()}/timeline", True),
        ("/v1/vehicles/not-a-uuid/timeline", False),
        ("/v1/timeline", True),
    ]
    queries = [
        ("", True),
        ("limit=2", True),
        ("limit=200", True),
        ("limit=201", False),
        ("limit=0", False),
        ("limit=02", False),
        ("limit=%2B2", False),
        ("limit=%202", False),
        ("limit=2.0", False),
        ("limit=", False),
        ("limit=2&limit=3", False),
        (f"cursor={quote(cursor)}", True),
        (f"limit=2&cursor={quote(cursor)}", True),
        (f"cursor={quote(tenant_cursor['next_cursor'])}", True),  # another list's: 422
        (f"cursor={quote(cursor[:-2])}", True),  # tampered: 422
        ("cursor=", False),
        ("cursor=" + "a" * 1025, False),
        (f"cursor={quote(cursor)}&cursor={quote(cursor)}", False),
        ("type=odometer", False),
        ("type=nope", False),
        ("from=2020-01-01", False),
        (f"vehicle_id={vid}", False),
        ("unknown=1", False),
        ("limit=2&unknown=1", False),
    ]
    for path, path_is_fast in paths:
        for query, query_is_fast in queries:
            url = f"{path}?{query}" if query else path
            served, standard, taken = await both_answers(app, client, url, headers)
            assert served == standard, url
            assert taken == (path_is_fast and query_is_fast), url


async def test_tokens_get_the_same_answers_and_only_accepted_ones_the_fast_path(
    app: FastAPI, client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    user, vid = await timeline_owner(client, db)
    other = await create_user(db)
    now = int(time.time())
    mine = {"tenant_id": str(user.tenant_id), "issuer": None}
    # name: (headers, whether the fast path takes it once FastAPI has seen the token)
    tokens = {
        "none": ({}, False),
        "empty bearer": ({"Authorization": "Bearer "}, False),
        "basic": ({"Authorization": "Basic dXNlcjpwYXNz"}, False),
        "garbage": (bearer("a.b.c"), False),
        "expired": (bearer(hs256(claims(user.id, exp=now - 120, iat=now - 60, **mine))), False),
        # Accepted by require_user within its 30 s leeway, but never cached: never fast.
        "expired 10 s ago": (bearer(hs256(claims(user.id, exp=now - 10, **mine))), False),
        "service role": (bearer(hs256(claims(role="service_role", sub=DROP, issuer=None))), False),
        "anon": (bearer(hs256(claims(role="anon", sub=DROP, issuer=None))), False),
        "bad sub": (bearer(hs256(claims("not-a-uuid", **mine))), False),
        "unsigned": (bearer(unsigned(claims(user.id, **mine))), False),
        "lower-case scheme": ({"Authorization": f"bearer {token_for(user)}"}, True),
        # The tenant then comes from the caller's profile, on both paths.
        "no tenant claim": (bearer(hs256(claims(user.id, issuer=None))), True),
        "other tenant": (auth(other), True),
    }
    for name, (token_headers, fast_once_seen) in tokens.items():
        for url in (f"/v1/vehicles/{vid}/timeline", "/v1/timeline?limit=1"):
            # Twice: by the second time, FastAPI's handling has verified the token (or not).
            for attempt in range(2):
                served, standard, taken = await both_answers(app, client, url, token_headers)
                assert served == standard, (name, url)
                if attempt == 1 or not fast_once_seen:
                    assert taken == fast_once_seen, (name, url, attempt)


async def test_a_token_that_expires_leaves_the_fast_path(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    user, vid = await timeline_owner(client, db)
    exp = int(time.time()) + 2
    headers = bearer(hs256(claims(user.id, exp=exp, tenant_id=str(user.tenant_id), issuer=None)))
    path = f"/v1/vehicles/{vid}/timeline"
    assert (await client.get(path, headers=headers)).status_code == 200  # verified, cached
    before = await served_fast(client)
    assert (await client.get(path, headers=headers)).status_code == 200
    assert await served_fast(client) == before + 1
    await asyncio.sleep(exp - time.time() + 0.2)
    # Past `exp`: no longer the cache's, so require_user decides (and allows its leeway).
    before = await served_fast(client)
    assert (await client.get(path, headers=headers)).status_code == 200
    assert await served_fast(client) == before


async def test_a_dependency_override_is_honoured(
    app: FastAPI, client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    """An override of require_user (as a test or an integration would set one) applies: the
    fast path, which would bypass it, stands aside."""
    user, _ = await timeline_owner(client, db)
    stand_in, stand_in_vid = await timeline_owner(client, db)
    headers = auth(user)
    mine = (await client.get("/v1/timeline", headers=headers)).json()["items"]
    assert {e["vehicle_id"] for e in mine} != {str(stand_in_vid)}

    async def as_stand_in() -> UserIdentity:
        return UserIdentity(
            user_id=stand_in.id,
            role="authenticated",
            tenant_id=stand_in.tenant_id,
            claims=claims_for(stand_in),
        )

    app.dependency_overrides[require_user] = as_stand_in
    try:
        theirs = (await client.get("/v1/timeline", headers=headers)).json()["items"]
    finally:
        del app.dependency_overrides[require_user]
    assert {e["vehicle_id"] for e in theirs} == {str(stand_in_vid)}


def test_a_route_with_a_dependency_the_fast_path_would_skip_is_refused() -> None:
    async def rate_limit() -> None:
        pass

    router = APIRouter(route_class=FastPathRoute)
    with pytest.raises(RuntimeError, match="rate_limit"):

        @router.get("/list", dependencies=[Depends(rate_limit)])
        @fast_path(_everyday_page, replaces=list_connection)
        async def listing(conn: ListConn) -> None:
            pass

    # Added when the router is included: FastAPI builds such routes later, for the OpenAPI
    # document or the first request, and refuses them then.
    app = FastAPI()
    app.include_router(timeline_router, dependencies=[Depends(rate_limit)])
    with pytest.raises(RuntimeError, match="rate_limit"):
        app.openapi()


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_random_query_strings_answer_as_fastapi_does(
    app: FastAPI, client: httpx.AsyncClient, db: asyncpg.Pool, seed: int
) -> None:
    """Query strings put together at random from the parameters' names, good and bad values, and
    the characters that query parsing treats specially."""
    user, vid = await timeline_owner(client, db)
    headers = auth(user)
    cursor = (await client.get(f"/v1/vehicles/{vid}/timeline?limit=1", headers=headers)).json()[
        "next_cursor"
    ]
    names = ["limit", "cursor", "type", "from", "to", "vehicle_id", "Limit", "limit ", "", "x"]
    values = ["1", "2", "50", "200", "201", "-1", "0", "1e1", "", "%00", "%FF", "+", "a b"]
    values += [quote(cursor), cursor, "fuel", "2024-02-30", str(vid), "é", "%26limit%3D3"]
    rng = random.Random(seed)
    taken = 0
    for _ in range(40):
        parts = []
        for _ in range(rng.randint(0, 3)):
            name, value = rng.choice(names), rng.choice(values)
            parts.append(rng.choice([f"{name}={value}", name, f"{name}={value};"]))
        query = rng.choice(["&", "&&"]).join(parts)
        for path in (f"/v1/vehicles/{vid}/timeline", "/v1/timeline"):
            served, standard, was_fast = await both_answers(app, client, f"{path}?{query}", headers)
            assert served == standard, query
            taken += was_fast
    assert taken > 0  # the random strings include everyday ones
