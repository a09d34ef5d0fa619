"""The timeline lists' fast path (app/fast_path.py): taken for the everyday page, and answering
every request, good or bad, exactly as FastAPI's own handling of the route does."""

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
from fastapi import FastAPI

from app.db import list_connection
from tests.helpers import User, auth, create_user, token_for
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


async def served_fast(client: httpx.AsyncClient, route: str) -> float:
    metrics = (await client.get("/metrics")).text
    pattern = rf'^motomind_fast_path_requests_total\{{route="{re.escape(route)}"\}} (\S+)$'
    found = re.search(pattern, metrics, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def answer(resp: httpx.Response) -> tuple[int, dict[str, str], str]:
    headers = {k: v for k, v in resp.headers.items() if k != "x-request-id"}
    return resp.status_code, headers, resp.text


async def both_answers(
    app: FastAPI, client: httpx.AsyncClient, url: str, headers: dict[str, str]
) -> tuple[tuple[int, dict[str, str], str], tuple[int, dict[str, str], str]]:
    fast = answer(await client.get(url, headers=headers))
    async with standard_handling(app):
        standard = answer(await client.get(url, headers=headers))
    return fast, standard


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


async def test_the_fast_path_answers_as_fastapi_does(
    app: FastAPI, client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    """Paths, parameters and tokens, good and bad: the same status, headers and body."""
    user, vid = await timeline_owner(client, db)
    other, other_vid = await timeline_owner(client, db)
    empty_vid = await make_vehicle(db, user)
    deleted_vid = await make_vehicle(db, user)
    await db.execute("update public.vehicles set deleted_at = now() where id = $1", deleted_vid)
    headers = auth(user)
    first = (await client.get(f"/v1/vehicles/{vid}/timeline?limit=2", headers=headers)).json()
    cursor = first["next_cursor"]
    tenant_cursor = (await client.get("/v1/timeline?limit=2", headers=headers)).json()
    paths = [
        f"/v1/vehicles/{vid}/timeline",
        f"/v1/vehicles/{str(vid).upper()}/timeline",
        f"/v1/vehicles/{vid.hex}/timeline",
        f"/v1/vehicles/{other_vid}/timeline",
        f"/v1/vehicles/{empty_vid}/timeline",
        f"/v1/vehicles/{deleted_vid}/timeline",
        f"/v1/vehicles/{uuid.uuid4()}/timeline",
        "/v1/vehicles/not-a-uuid/timeline",
        "/v1/timeline",
    ]
    queries = [
        "",
        "limit=2",
        "limit=200",
        "limit=201",
        "limit=0",
        "limit=02",
        "limit=%2B2",
        "limit=%202",
        "limit=2.0",
        "limit=",
        "limit=2&limit=3",
        f"cursor={quote(cursor)}",
        f"limit=2&cursor={quote(cursor)}",
        f"cursor={quote(tenant_cursor['next_cursor'])}",
        f"cursor={quote(cursor[:-2])}",
        "cursor=",
        "cursor=" + "a" * 1025,
        f"cursor={quote(cursor)}&cursor={quote(cursor)}",
        "type=odometer",
        "type=nope",
        "from=2020-01-01",
        f"vehicle_id={vid}",
        "unknown=1",
        "limit=2&unknown=1",
    ]
    compared = 0
    for path in paths:
        for query in queries:
            url = f"{path}?{query}" if query else path
            fast, standard = await both_answers(app, client, url, headers)
            assert fast == standard, url
            compared += 1
    assert compared == len(paths) * len(queries)

    now = int(time.time())
    mine = {"tenant_id": str(user.tenant_id), "issuer": None}
    tokens = {
        "none": {},
        "empty bearer": {"Authorization": "Bearer "},
        "basic": {"Authorization": "Basic dXNlcjpwYXNz"},
        "garbage": bearer("a.b.c"),
        "expired": bearer(hs256(claims(user.id, exp=now - 120, iat=now - 3600, **mine))),
        "service role": bearer(hs256(claims(role="service_role", sub=DROP, issuer=None))),
        "bad sub": bearer(hs256(claims("not-a-uuid", **mine))),
        "unsigned": bearer(unsigned(claims(user.id, **mine))),
        "lower-case scheme": {"Authorization": f"bearer {token_for(user)}"},
        "other tenant": auth(other),
    }
    for name, token_headers in tokens.items():
        for url in (f"/v1/vehicles/{vid}/timeline", "/v1/timeline?limit=1"):
            # Twice: the second time, whatever the first verified is in the verifier's cache.
            for _ in range(2):
                fast, standard = await both_answers(app, client, url, token_headers)
                assert fast == standard, (name, url)


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
    for _ in range(40):
        parts = []
        for _ in range(rng.randint(0, 3)):
            name, value = rng.choice(names), rng.choice(values)
            parts.append(rng.choice([f"{name}={value}", name, f"{name}={value};"]))
        query = rng.choice(["&", "&&"]).join(parts)
        for path in (f"/v1/vehicles/{vid}/timeline", "/v1/timeline"):
            fast, standard = await both_answers(app, client, f"{path}?{query}", headers)
            assert fast == standard, query
