"""The cross-tenant matrix, for ids inside request bodies (tests/test_cross_tenant.py covers ids in
paths and list filters).

Every uuid-valued field of every request body in the OpenAPI document is found by walking the
document; for each, tenant B sends A's id, and a random id: the two answers are the same (not a 2xx,
same status, code and detail), so another tenant's id is indistinguishable from a missing one. Allow
twin: B's own id succeeds. A request-body id field the table below does not cover fails the test.
"""

import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import pytest

from tests.factories import SPEC, Objects
from tests.helpers import auth, create_user

FieldPath = tuple[str, ...]
Body = Callable[[dict[str, str], str], dict[str, Any]]

# (method, path, field) -> (the kind of id the field takes, B's body with that field set to `v`).
CASES: dict[tuple[str, str, FieldPath], tuple[str, Body]] = {
    ("POST", "/v1/vehicles", ("garage_id",)): (
        "garage",
        lambda own, v: {"garage_id": v, "make": "X"},
    ),
    ("PATCH", "/v1/vehicles/{vehicle_id}", ("garage_id",)): (
        "garage",
        lambda own, v: {"garage_id": v},
    ),
    ("POST", "/v1/reminders", ("garage_id",)): (
        "garage",
        lambda own, v: {"garage_id": v, "title": "t", "due_mileage": 10},
    ),
    ("POST", "/v1/reminders", ("vehicle_id",)): (
        "vehicle",
        lambda own, v: {"vehicle_id": v, "title": "t", "due_mileage": 10},
    ),
    ("PATCH", "/v1/reminders/{reminder_id}", ("garage_id",)): (
        "garage",
        lambda own, v: {"garage_id": v},
    ),
    ("PATCH", "/v1/reminders/{reminder_id}", ("vehicle_id",)): (
        "vehicle",
        lambda own, v: {"vehicle_id": v},
    ),
    ("POST", "/v1/images", ("vehicle_id",)): (
        "vehicle",
        lambda own, v: {"vehicle_id": v, "storage_url": "b/x.jpg"},
    ),
    ("POST", "/v1/timeline", ("vehicle_id",)): (
        "vehicle",
        lambda own, v: {"type": "odometer", "vehicle_id": v, "miles": 5000},
    ),
    ("POST", "/v1/timeline", ("payload", "correction_of")): (
        "event",
        lambda own, v: {
            "type": "odometer",
            "vehicle_id": own["vehicle"],
            "miles": 5000,
            "payload": {"correction_of": v},
        },
    ),
    ("POST", "/v1/timeline", ("payload", "reminder_id")): (
        "reminder",
        lambda own, v: {
            "type": "reminder",
            "vehicle_id": own["vehicle"],
            "payload": {"reminder_id": v, "action": "snoozed"},
        },
    ),
}
PATH_KIND = {"{vehicle_id}": "vehicle", "{reminder_id}": "reminder"}


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = SPEC["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _uuid_fields(schema: dict[str, Any], prefix: FieldPath, out: set[FieldPath]) -> None:
    schema = _resolve(schema)
    for key in ("oneOf", "anyOf", "allOf"):
        for arm in schema.get(key, []):
            _uuid_fields(arm, prefix, out)
    for name, prop in schema.get("properties", {}).items():
        arms = [_resolve(prop), *(_resolve(a) for a in _resolve(prop).get("anyOf", []))]
        if any(a.get("format") == "uuid" for a in arms):
            out.add((*prefix, name))
        _uuid_fields(prop, (*prefix, name), out)
    if "items" in schema:
        _uuid_fields(schema["items"], (*prefix, "[]"), out)


def body_id_fields() -> set[tuple[str, str, FieldPath]]:
    found: set[tuple[str, str, FieldPath]] = set()
    for path, operations in SPEC["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" not in content:
                continue
            fields: set[FieldPath] = set()
            _uuid_fields(content["application/json"]["schema"], (), fields)
            found |= {(method.upper(), path, f) for f in fields}
    return found


def test_every_body_id_field_is_covered() -> None:
    found = body_id_fields()
    assert found == set(CASES), "add the new id field to CASES in this file"


@pytest.mark.parametrize(
    ("method", "path", "field"),
    sorted(CASES),
    ids=[f"{m} {p} {'.'.join(f)}" for m, p, f in sorted(CASES)],
)
async def test_another_tenants_id_in_a_body_looks_missing(
    client: httpx.AsyncClient, db: asyncpg.Pool, method: str, path: str, field: FieldPath
) -> None:
    kind, body = CASES[(method, path, field)]
    alice, bob = await create_user(db), await create_user(db)
    theirs = await Objects(client, alice, {}).all()
    own = await Objects(client, bob, {}).all()
    url = path
    for placeholder, path_kind in PATH_KIND.items():
        url = url.replace(placeholder, own[path_kind])

    async def call(value: str) -> httpx.Response:
        return await client.request(method, url, json=body(own, value), headers=auth(bob))

    missing_id = str(uuid.uuid4())
    denied, missing = await call(theirs[kind]), await call(missing_id)
    assert not denied.is_success, f"B used A's {kind} in {field}: {denied.text}"
    assert denied.status_code == missing.status_code, (denied.text, missing.text)
    d, m = denied.json(), missing.json()
    assert d.get("code") == m.get("code")
    assert str(d.get("detail")).replace(theirs[kind], "?") == str(m.get("detail")).replace(
        missing_id, "?"
    )
    assert d.get("errors") == m.get("errors")
    # Allow twin: B's own id.
    twin = await call(own[kind])
    assert twin.is_success, f"{method} {url} with B's own {kind}: {twin.text}"
