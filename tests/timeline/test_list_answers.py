"""The two timeline lists answer every request as they did when a fast path served them.

Issue 16 removed that fast path (app/fast_path.py, which read FastAPI's private internals). Its
tests held it and FastAPI's handling to the same answers over tables of paths, parameters and
tokens; the same tables now hold the routes to the answers both gave then (recorded on the last
commit with the fast path, 4c0ce54: the expectations below pass there and here). A page's body is
checked byte for byte: the events' JSON exactly as `GET /v1/timeline/{id}` writes each of them.
"""

import random
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx
from fastapi import FastAPI, Request

from app.core.auth import UserIdentity
from app.core.db import RequestTransaction, list_connection
from tests.helpers import User, auth, claims_for, create_user, token_for
from tests.jwt_support import DROP, bearer, claims, hs256, unsigned
from tests.timeline.support import append, make_vehicle

MILES = [500, 400, 300, 200, 100]  # the owner's readings, newest first


@dataclass
class Timeline:
    user: User
    vehicle: uuid.UUID
    docs: dict[int, str]  # miles -> the event as GET /v1/timeline/{id} writes it
    cursor: str  # the vehicle list's second page (limit=2)
    tenant_cursor: str  # the tenant-wide list's second page (limit=2)


async def timeline_owner(client: httpx.AsyncClient, db: asyncpg.Pool) -> Timeline:
    user = await create_user(db)
    vid = await make_vehicle(db, user)
    docs = {}
    for miles in reversed(MILES):
        created = await append(client, user, vid, miles=miles)
        assert created.status_code == 201
        one = await client.get(created.headers["Location"], headers=auth(user))
        docs[miles] = one.text
    headers = auth(user)
    first = await client.get(f"/v1/vehicles/{vid}/timeline?limit=2", headers=headers)
    tenant_first = await client.get("/v1/timeline?limit=2", headers=headers)
    return Timeline(
        user, vid, docs, first.json()["next_cursor"], tenant_first.json()["next_cursor"]
    )


def assert_page(resp: httpx.Response, timeline: Timeline, miles: list[int], more: bool) -> None:
    """200, the events' own JSON in order, and a cursor exactly when there is more."""
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/json"
    assert set(resp.headers) == {"content-type", "content-length", "x-request-id"}
    next_cursor = resp.json()["next_cursor"]
    assert (next_cursor is not None) == more
    cursor_json = f'"{next_cursor}"' if more else "null"
    items = ",".join(timeline.docs[m] for m in miles)
    assert resp.text == f'{{"items":[{items}],"next_cursor":{cursor_json}}}'


def assert_problem(resp: httpx.Response, status: int, code: str, errors: list[Any]) -> None:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    body = resp.json()
    assert (body["status"], body["code"]) == (status, code)
    assert [(e["loc"], e["type"]) for e in body.get("errors", [])] == errors


# The paths: what each answers to a plain request. "mine" is the owner's vehicle with five events.
PATHS = {
    "mine": "page",
    "mine, upper case": "page",
    "mine, 32 hex digits": "page",
    "another tenant's": "404",
    "mine, no events": "empty",
    "mine, deleted": "404",
    "unknown": "404",
    "not a uuid": "422",
    "tenant-wide": "page",
}
# The queries: (limit, cursor) of a page, a cursor one list issued ("C": the vehicle list's, "T":
# the tenant-wide list's, "bad": none), or validation errors (loc, type).
Page = tuple[int, str | None]
QUERIES: dict[str, Page | list[Any]] = {
    "": (50, None),
    "limit=2": (2, None),
    "limit=200": (200, None),
    "limit=201": [(["query", "limit"], "less_than_equal")],
    "limit=0": [(["query", "limit"], "greater_than_equal")],
    "limit=02": (2, None),
    "limit=%2B2": (2, None),
    "limit=%202": (2, None),
    "limit=2.0": (2, None),
    "limit=": [(["query", "limit"], "int_parsing")],
    "limit=2&limit=3": (3, None),
    "cursor={C}": (50, "C"),
    "limit=2&cursor={C}": (2, "C"),
    "cursor={T}": (50, "T"),
    "cursor={C[:-2]}": (50, "bad"),
    "cursor=": (50, "bad"),
    "cursor=" + "a" * 1025: [(["query", "cursor"], "string_too_long")],
    "cursor={C}&cursor={C}": (50, "C"),
    "type=odometer": (50, None),
    "type=nope": [(["query", "type", 0], "literal_error")],
    "from=2020-01-01": (50, None),
    "vehicle_id={vid}": (50, None),
    "unknown=1": (50, None),
    "limit=2&unknown=1": (2, None),
}


async def test_paths_and_parameters_answer_as_before(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    """Good and bad paths and parameters, in every combination."""
    mine = await timeline_owner(client, db)
    other = await timeline_owner(client, db)
    empty_vid = await make_vehicle(db, mine.user)
    deleted_vid = await make_vehicle(db, mine.user)
    await db.execute("update public.vehicles set deleted_at = now() where id = $1", deleted_vid)
    vid = mine.vehicle
    urls = {
        "mine": f"/v1/vehicles/{vid}/timeline",
        "mine, upper case": f"/v1/vehicles/{str(vid).upper()}/timeline",
        "mine, 32 hex digits": f"/v1/vehicles/{vid.hex}/timeline",
        "another tenant's": f"/v1/vehicles/{other.vehicle}/timeline",
        "mine, no events": f"/v1/vehicles/{empty_vid}/timeline",
        "mine, deleted": f"/v1/vehicles/{deleted_vid}/timeline",
        "unknown": f"/v1/vehicles/{uuid.uuid4()}/timeline",
        "not a uuid": "/v1/vehicles/not-a-uuid/timeline",
        "tenant-wide": "/v1/timeline",
    }
    cursors = {"C": mine.cursor, "T": mine.tenant_cursor}
    fill = {"C": quote(mine.cursor), "T": quote(mine.tenant_cursor), "vid": str(vid)}
    fill["C[:-2]"] = quote(mine.cursor[:-2])
    headers = auth(mine.user)
    for name, url in urls.items():
        for query, outcome in QUERIES.items():
            filled = query
            for key, value in fill.items():
                filled = filled.replace(f"{{{key}}}", value)
            resp = await client.get(f"{url}?{filled}" if filled else url, headers=headers)
            where = (name, query)
            path_errors = [(["path", "vehicle_id"], "uuid_parsing")]
            if PATHS[name] == "422":
                query_errors = outcome if isinstance(outcome, list) else []
                assert_problem(resp, 422, "validation_failed", path_errors + query_errors)
                continue
            if isinstance(outcome, list):
                assert_problem(resp, 422, "validation_failed", outcome)
                continue
            limit, cursor = outcome
            # A cursor is valid only for the list (and vehicle) that issued it.
            issued_for = {"C": ("mine", "mine, upper case", "mine, 32 hex digits")}
            issued_for["T"] = ("tenant-wide",)
            if cursor is not None and name not in issued_for.get(cursor, ()):
                assert_problem(resp, 422, "invalid_cursor", [])
                continue
            if PATHS[name] == "404":
                assert_problem(resp, 404, "not_found", [])
                continue
            if PATHS[name] == "empty":
                assert resp.status_code == 200 and resp.json() == {
                    "items": [],
                    "next_cursor": None,
                }, where
                continue
            start = 2 if cursor in cursors else 0
            miles = MILES[start : start + limit]
            assert_page(resp, mine, miles, more=start + limit < len(MILES))


# name: (status, code, WWW-Authenticate) for both lists; None: the owner's page.
TOKENS: dict[str, tuple[int, str, str] | None] = {
    "none": (401, "missing_token", "Bearer"),
    "empty bearer": (401, "invalid_token", "expected a Bearer token"),
    "basic": (401, "invalid_token", "expected a Bearer token"),
    "garbage": (401, "invalid_token", "malformed token header"),
    "expired": (401, "invalid_token", "token expired"),
    "expired 10 s ago": None,  # within the 30 s leeway (never cached)
    "service role": (403, "forbidden", 'Bearer error="insufficient_scope"'),
    "anon": (401, "invalid_token", "anonymous tokens are not accepted"),
    "bad sub": (401, "invalid_token", "sub must be a UUID"),
    "unsigned": (401, "invalid_token", "unsigned tokens are not accepted"),
    "lower-case scheme": None,
    "no tenant claim": None,  # the tenant then comes from the caller's profile
    "other tenant": (404, "not_found", ""),  # tenant-wide: an empty list
}


async def test_tokens_answer_as_before(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    """Every kind of token, twice each: the second time the verifier's cache may answer."""
    mine = await timeline_owner(client, db)
    user, vid = mine.user, mine.vehicle
    other = await create_user(db)
    now = int(time.time())
    own = {"tenant_id": str(user.tenant_id), "issuer": None}
    headers = {
        "none": {},
        "empty bearer": {"Authorization": "Bearer "},
        "basic": {"Authorization": "Basic dXNlcjpwYXNz"},
        "garbage": bearer("a.b.c"),
        "expired": bearer(hs256(claims(user.id, exp=now - 120, iat=now - 60, **own))),
        "expired 10 s ago": bearer(hs256(claims(user.id, exp=now - 10, **own))),
        "service role": bearer(hs256(claims(role="service_role", sub=DROP, issuer=None))),
        "anon": bearer(hs256(claims(role="anon", sub=DROP, issuer=None))),
        "bad sub": bearer(hs256(claims("not-a-uuid", **own))),
        "unsigned": bearer(unsigned(claims(user.id, **own))),
        "lower-case scheme": {"Authorization": f"bearer {token_for(user)}"},
        "no tenant claim": bearer(hs256(claims(user.id, issuer=None))),
        "other tenant": auth(other),
    }
    assert set(headers) == set(TOKENS)
    for name, expected in TOKENS.items():
        for url in (f"/v1/vehicles/{vid}/timeline", "/v1/timeline?limit=1"):
            tenant_wide = url.startswith("/v1/timeline")
            for _ in range(2):
                resp = await client.get(url, headers=headers[name])
                if expected is None:
                    assert_page(resp, mine, MILES[:1] if tenant_wide else MILES, tenant_wide)
                elif name == "other tenant" and tenant_wide:
                    assert resp.status_code == 200, name
                    assert resp.json() == {"items": [], "next_cursor": None}
                else:
                    status, code, challenge = expected
                    assert_problem(resp, status, code, [])
                    if status == 401 and code == "invalid_token":
                        challenge = f'Bearer error="invalid_token", error_description="{challenge}"'
                    assert resp.headers.get("www-authenticate", "") == challenge, name


async def test_random_query_strings_never_fail_the_server(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    """Query strings put together at random from the parameters' names, good and bad values, and
    the characters query parsing treats specially: a page or a 422 problem, never anything else."""
    mine = await timeline_owner(client, db)
    headers = auth(mine.user)
    names = ["limit", "cursor", "type", "from", "to", "vehicle_id", "Limit", "limit ", "", "x"]
    values = ["1", "2", "50", "200", "201", "-1", "0", "1e1", "", "%00", "%FF", "+", "a b"]
    values += [quote(mine.cursor), mine.cursor, "fuel", "2024-02-30", str(mine.vehicle), "é"]
    values += ["%26limit%3D3"]
    rng = random.Random(1)
    pages = 0
    for _ in range(40):
        parts = []
        for _ in range(rng.randint(0, 3)):
            name, value = rng.choice(names), rng.choice(values)
            parts.append(rng.choice([f"{name}={value}", name, f"{name}={value};"]))
        query = rng.choice(["&", "&&"]).join(parts)
        for path in (f"/v1/vehicles/{mine.vehicle}/timeline", "/v1/timeline"):
            resp = await client.get(f"{path}?{query}", headers=headers)
            assert resp.status_code in (200, 422), (query, resp.text)
            if resp.status_code == 200:
                pages += 1
                assert set(resp.json()) == {"items", "next_cursor"}
            else:
                assert resp.json()["code"] in ("validation_failed", "invalid_cursor"), query
    assert pages > 0  # the random strings include everyday ones


async def test_a_dependency_override_applies_to_the_lists(
    app: FastAPI, client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    """`app.dependency_overrides` reaches the routes as registered (flat, app/routers.py): an
    override of the list connection, here one opened as another user, is what the route gets."""
    mine = await timeline_owner(client, db)
    stand_in = await timeline_owner(client, db)
    headers = auth(mine.user)

    async def vehicles_listed() -> set[str]:
        page = (await client.get("/v1/timeline", headers=headers)).json()
        return {event["vehicle_id"] for event in page["items"]}

    async def as_stand_in(request: Request) -> AsyncIterator[asyncpg.Connection]:
        identity = UserIdentity(
            user_id=stand_in.user.id,
            role="authenticated",
            tenant_id=stand_in.user.tenant_id,
            claims=claims_for(stand_in.user),
        )
        async with RequestTransaction(
            request, role="authenticated", identity=identity, tenant=True, keyset_list=True
        ) as conn:
            yield conn

    assert await vehicles_listed() == {str(mine.vehicle)}
    app.dependency_overrides[list_connection] = as_stand_in
    try:
        assert await vehicles_listed() == {str(stand_in.vehicle)}
    finally:
        del app.dependency_overrides[list_connection]
    assert await vehicles_listed() == {str(mine.vehicle)}
