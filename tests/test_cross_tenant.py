"""The cross-tenant matrix, generated from the OpenAPI document.

Every path with a path parameter, with every method: tenant B calls it with the id of one of
tenant A's objects. B gets 404 (405 where the method does not exist or is always refused), exactly
what a nonexistent id gets, and A's object reads the same before and after. Each deny has an allow
twin: the same call by A succeeds.

A new route is covered as soon as it is in the OpenAPI document. A path whose prefix has no
factory below fails, so no route escapes the matrix by accident: add its factory and bodies.
"""

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from pydantic import SecretStr

from app.core.config import Settings
from app.main import create_app
from tests.helpers import TEST_JWT_SECRET, User, auth, create_user

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
WITH_BODY = {"POST", "PUT", "PATCH"}


def _openapi() -> dict[str, Any]:
    """The document of the app the tests run (same routers), built without a database."""
    settings = Settings(
        database_url="postgresql://collect-only@127.0.0.1:1/none",
        supabase_jwt_secret=SecretStr(TEST_JWT_SECRET),
        supabase_url=None,
        jwt_issuer=None,
    )
    return create_app(settings).openapi()


SPEC = _openapi()
ID_PATHS = sorted(p for p in SPEC["paths"] if "{" in p)
LIST_PATHS = sorted(
    p for p, ops in SPEC["paths"].items() if "{" not in p and p.startswith("/v1/") and "get" in ops
)

# Path prefix (up to the first parameter) -> the resource whose id goes there.
PREFIXES = {
    "/v1/garages/{": "garage",
    "/v1/vehicles/{": "vehicle",
    "/v1/reminders/{": "reminder",
    "/v1/images/{": "image",
    "/v1/timeline/{": "event",
}
# A minimal valid body per resource, for the methods that take one.
BODIES: dict[str, dict[str, Any]] = {
    "garage": {"name": "pwned"},
    "vehicle": {"nickname": "pwned"},
    "reminder": {"title": "pwned"},
    "image": {"caption": "pwned"},
    "event": {"notes": "pwned"},
}
# Where each resource is read back, to see that it did not change.
CANONICAL = {
    "garage": "/v1/garages/{}",
    "vehicle": "/v1/vehicles/{}",
    "reminder": "/v1/reminders/{}",
    "image": "/v1/images/{}",
    "event": "/v1/timeline/{}",
}
# Lists that must show the owner its own object (the allow twin of "B never sees it").
OWN_LISTS = {
    "/v1/garages": "garage",
    "/v1/vehicles": "vehicle",
    "/v1/reminders": "reminder",
    "/v1/images": "image",
    "/v1/timeline": "event",
}


def resource_of(path: str) -> str:
    prefix = path[: path.index("{") + 1]
    if prefix not in PREFIXES:
        pytest.fail(f"{path}: no factory for prefix {prefix!r}; add it to the cross-tenant matrix")
    return PREFIXES[prefix]


@dataclass
class Objects:
    """One object of each resource, created lazily (with what it depends on) by one user."""

    client: httpx.AsyncClient
    user: User
    ids: dict[str, str]

    async def _post(self, url: str, body: dict[str, Any]) -> str:
        resp = await self.client.post(url, json=body, headers=auth(self.user))
        assert resp.status_code == 201, f"factory {url}: {resp.status_code} {resp.text}"
        return str(resp.json()["id"])

    async def get(self, resource: str) -> str:
        if resource not in self.ids:
            self.ids[resource] = await self._create(resource)
        return self.ids[resource]

    async def _create(self, resource: str) -> str:
        if resource == "garage":
            return await self._post("/v1/garages", {"name": "A's garage"})
        if resource == "vehicle":
            garage_id = await self.get("garage")
            return await self._post(
                "/v1/vehicles", {"garage_id": garage_id, "nickname": "A's bike", "make": "Moto"}
            )
        vehicle_id = await self.get("vehicle")
        if resource == "reminder":
            return await self._post(
                "/v1/reminders", {"vehicle_id": vehicle_id, "title": "A's", "due_mileage": 1000}
            )
        if resource == "image":
            return await self._post(
                "/v1/images", {"vehicle_id": vehicle_id, "storage_url": "a/front.jpg"}
            )
        if resource == "event":
            return await self._post(
                "/v1/timeline", {"vehicle_id": vehicle_id, "type": "odometer", "miles": 100}
            )
        pytest.fail(f"no factory for {resource}")

    async def all(self) -> dict[str, str]:
        for resource in CANONICAL:
            await self.get(resource)
        return dict(self.ids)


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
