"""The cross-tenant matrix, generated from the OpenAPI document.

Every path with a path parameter, with every method: tenant B calls it with the id of one of
tenant A's objects. B gets 404 (405 where the method does not exist or is always refused), exactly
what a nonexistent id gets, and A's object reads the same before and after. Each deny has an allow
twin: the same call by A succeeds.

A new route is covered as soon as it is in the OpenAPI document. A path whose prefix has no
factory below fails, so no route escapes the matrix by accident: add its factory and bodies.
"""

import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from tests.factories import (
    BODIES,
    CANONICAL,
    ID_PATHS,
    LIST_PATHS,
    METHODS,
    OWN_LISTS,
    SPEC,
    WITH_BODY,
    Objects,
    resource_of,
)
from tests.helpers import User, auth, create_user


async def _call(
    client: httpx.AsyncClient, user: User, method: str, url: str, body: dict[str, Any] | None
) -> httpx.Response:
    kwargs: dict[str, Any] = {"json": body} if body is not None else {}
    return await client.request(method, url, headers=auth(user), **kwargs)


async def _snapshot(client: httpx.AsyncClient, user: User, url: str) -> tuple[int, Any, str | None]:
    resp = await client.get(url, headers=auth(user))
    return resp.status_code, resp.json(), resp.headers.get("ETag")


def _success_statuses(operation: dict[str, Any]) -> list[int]:
    return sorted(int(s) for s in operation.get("responses", {}) if s.startswith("2"))


def test_matrix_covers_the_resources() -> None:
    """The generated matrix is not vacuous: every resource route is in it."""
    for path in (
        "/v1/garages/{garage_id}",
        "/v1/vehicles/{vehicle_id}",
        "/v1/reminders/{reminder_id}",
        "/v1/images/{image_id}",
    ):
        assert path in ID_PATHS
    assert {"/v1/garages", "/v1/vehicles", "/v1/reminders", "/v1/images"} <= set(LIST_PATHS)


@pytest.mark.parametrize(
    ("path", "method"),
    [(p, m) for p in ID_PATHS for m in METHODS],
    ids=[f"{m} {p}" for p in ID_PATHS for m in METHODS],
)
async def test_other_tenants_object_is_not_found_and_unchanged(
    client: httpx.AsyncClient, db: asyncpg.Pool, path: str, method: str
) -> None:
    resource = resource_of(path)
    params = [seg[1:-1] for seg in path.split("/") if seg.startswith("{")]
    if len(params) != 1:
        pytest.fail(f"{path}: more than one path parameter; extend the cross-tenant matrix")
    placeholder = "{" + params[0] + "}"
    alice, bob = await create_user(db), await create_user(db)
    owner = Objects(client, alice, {})
    object_id = await owner.get(resource)
    await Objects(client, bob, {}).all()  # B has objects of its own, like any real tenant
    url = path.replace(placeholder, object_id)
    missing_url = path.replace(placeholder, str(uuid.uuid4()))
    canonical = CANONICAL[resource].format(object_id)
    operation = SPEC["paths"][path].get(method.lower())
    body = BODIES[resource] if method in WITH_BODY else None

    before = await _snapshot(client, alice, canonical)
    assert before[0] == 200, before
    denied = await _call(client, bob, method, url, body)
    missing = await _call(client, bob, method, missing_url, body)
    after = await _snapshot(client, alice, canonical)
    assert after == before, f"{method} {path} by another tenant changed A's object"

    # Another tenant's id answers exactly like an id that does not exist.
    assert denied.status_code == missing.status_code, (denied.text, missing.text)
    assert denied.json().get("code") == missing.json().get("code")
    leaked = {k: v for k, v in denied.json().items() if k != "instance"}  # instance: B's own URL
    assert object_id not in str(leaked)

    twin = await _call(client, alice, method, url, body)
    successes = _success_statuses(operation) if operation else []
    if successes:
        assert denied.status_code == 404, f"{method} {path}: {denied.status_code} {denied.text}"
        assert denied.json()["code"] == "not_found"
        # Allow twin: the owner's same call succeeds.
        assert twin.status_code in successes, f"{method} {path} as owner: {twin.text}"
    else:
        # The method does not exist here (or is always refused): the same for everyone.
        assert denied.status_code == 405, f"{method} {path}: {denied.status_code}"
        assert twin.status_code == 405


async def test_lists_never_contain_another_tenants_rows(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    alice, bob = await create_user(db), await create_user(db)
    alices = await Objects(client, alice, {}).all()
    bobs = await Objects(client, bob, {}).all()
    for path in LIST_PATHS:
        query_params = [
            p["name"]
            for p in SPEC["paths"][path]["get"].get("parameters", [])
            if p.get("in") == "query" and p["name"].endswith("_id")
        ]
        # Unfiltered, and filtered by each of A's ids the list accepts.
        variants: list[dict[str, str]] = [{}]
        for name in query_params:
            resource = name.removesuffix("_id")
            if resource in alices:
                variants.append({name: alices[resource]})
        for params in variants:
            resp = await client.get(path, params=params, headers=auth(bob))
            for object_id in alices.values():
                assert object_id not in resp.text, f"B sees A's {object_id} in {path} {params}"
        if path in OWN_LISTS:
            resource = OWN_LISTS[path]
            mine = await client.get(path, params={"limit": 200}, headers=auth(alice))
            theirs = await client.get(path, params={"limit": 200}, headers=auth(bob))
            assert alices[resource] in mine.text, f"A does not see its own {resource} in {path}"
            assert bobs[resource] in theirs.text
