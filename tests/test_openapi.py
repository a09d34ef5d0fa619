"""The OpenAPI document is what integrators learn the API from: every operation is documented."""

import re
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from tests.helpers import auth, create_user

PROBLEM = "application/problem+json"


def operations(app: FastAPI) -> list[tuple[str, str, dict[str, Any]]]:
    spec = app.openapi()
    return [
        (path, method, op)
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if path.startswith("/v1")
    ]


def test_every_operation_has_a_summary_and_a_description(app: FastAPI) -> None:
    missing = [
        f"{method.upper()} {path}"
        for path, method, op in operations(app)
        if not op.get("summary") or len(op.get("description", "")) < 20
    ]
    assert missing == []


def test_every_operation_documents_its_errors_as_problems(app: FastAPI) -> None:
    problems: list[str] = []
    for path, method, op in operations(app):
        responses = op["responses"]
        if "405" in responses and not any(s.startswith("2") for s in responses):
            continue  # declared only to document that the method is refused
        expected = {"401", "403", "503"}
        if "{" in path and method != "post":
            expected.add("404")
        if method in {"post", "patch"} and "requestBody" in op:
            expected |= {"400", "413", "415", "422"}
        if method == "patch" and "{" in path:
            expected.add("412")
        for status in sorted(expected - set(responses)):
            problems.append(f"{method.upper()} {path}: {status} undocumented")
        for status, response in responses.items():
            if status.startswith(("4", "5")):
                content = response.get("content", {})
                if PROBLEM not in content:
                    problems.append(f"{method.upper()} {path}: {status} not problem+json")
    assert problems == []


def test_request_and_response_bodies_carry_examples(app: FastAPI) -> None:
    spec = app.openapi()
    schemas = spec["components"]["schemas"]

    def has_example(schema: dict[str, Any], depth: int = 0) -> bool:
        """An example on the schema, a referenced model, a list's items or any property."""
        if "examples" in schema or "example" in schema:
            return True
        if depth > 4:
            return False
        nested: list[dict[str, Any]] = [*schema.get("oneOf", []), *schema.get("anyOf", [])]
        if "$ref" in schema:
            nested.append(schemas[schema["$ref"].rsplit("/", 1)[-1]])
        if "items" in schema:
            nested.append(schema["items"])
        nested += list(schema.get("properties", {}).values())
        return any(has_example(s, depth + 1) for s in nested)

    missing = []
    for path, method, op in operations(app):
        body = op.get("requestBody", {}).get("content", {}).get("application/json")
        if body and not has_example(body["schema"]):
            missing.append(f"{method.upper()} {path} request")
        ok = next((r for s, r in op["responses"].items() if s.startswith("2")), None)
        content = (ok or {}).get("content", {}).get("application/json")
        if content and not (has_example(content) or has_example(content["schema"])):
            missing.append(f"{method.upper()} {path} response")
    assert missing == []


def test_bearer_scheme_is_declared(app: FastAPI) -> None:
    spec = app.openapi()
    schemes = spec["components"]["securitySchemes"]
    assert any(s.get("scheme") == "bearer" for s in schemes.values())


def test_sections_are_listed_in_reading_order_whatever_the_routing_order(app: FastAPI) -> None:
    spec = app.openapi()
    names = [tag["name"] for tag in spec["tags"]]
    assert names[:3] == ["me", "garages", "vehicles"]  # not the routing order (timeline first)
    assert all(tag.get("description") for tag in spec["tags"])
    used = {
        tag for item in spec["paths"].values() for op in item.values() for tag in op.get("tags", [])
    }
    assert used <= set(names)


# --- /docs and /redoc, without a CDN ------------------------------------------------------------

ASSET_TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_pages_load_their_assets_from_the_app_itself(
    client: httpx.AsyncClient, page: str
) -> None:
    resp = await client.get(page)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    urls = re.findall(r"""(?:src|href|spec-url)=["']([^"']+)["']|url: *'([^']+)'""", resp.text)
    urls = [a or b for a, b in urls]
    assert urls, resp.text
    # Same origin: a path, never a scheme or a protocol-relative URL (a CDN, Google Fonts).
    assert [u for u in urls if not u.startswith("/") or u.startswith("//")] == []
    assert not re.search(r"https?://", resp.text), "a page must not reach out of the app"
    scripts = [u for u in urls if u.endswith(".js")]
    assert scripts  # the UI itself, from the app
    for url in urls:
        asset = await client.get(url)
        assert asset.status_code == 200, url
        suffix = url[url.rfind(".") :]
        if suffix in ASSET_TYPES:
            assert asset.headers["content-type"].startswith(ASSET_TYPES[suffix]), url
            assert len(asset.content) > 1000, url


# --- response headers and error examples ----------------------------------------------------------


def all_operations(app: FastAPI) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, item in app.openapi()["paths"].items()
        for method, op in item.items()
    ]


def declared(app: FastAPI, op: dict[str, Any], status: str) -> dict[str, dict[str, Any]]:
    """The headers one documented response declares, their references resolved."""
    components = app.openapi()["components"].get("headers", {})
    headers = op["responses"][status].get("headers", {})
    return {
        name: components[h["$ref"].rsplit("/", 1)[-1]] if "$ref" in h else h
        for name, h in headers.items()
    }


def header_params(op: dict[str, Any]) -> set[str]:
    return {p["name"] for p in op.get("parameters", []) if p["in"] == "header"}


def test_every_response_declares_its_request_id(app: FastAPI) -> None:
    missing = [
        f"{method.upper()} {path} {status}"
        for path, method, op in all_operations(app)
        for status in op["responses"]
        if not declared(app, op, status).get("X-Request-ID", {}).get("required")
    ]
    assert missing == []


def test_creates_declare_location_and_replays(app: FastAPI) -> None:
    creates = [(p, op) for p, m, op in all_operations(app) if "201" in op["responses"]]
    assert len(creates) >= 5
    for path, op in creates:
        headers = declared(app, op, "201")
        assert headers["Location"]["required"], path
        assert "Idempotency-Key" in header_params(op), path
        assert "Idempotent-Replayed" in headers, path
        assert "Retry-After" in declared(app, op, "409"), path  # idempotency_in_flight


def test_single_resources_declare_their_etag(app: FastAPI) -> None:
    spec = app.openapi()
    versioned = [
        path
        for path, item in spec["paths"].items()
        if "If-Match" in header_params(item.get("patch", {}))
    ]
    assert {"/v1/me", "/v1/tenant", "/v1/garages/{garage_id}", "/v1/vehicles/{vehicle_id}"} <= set(
        versioned
    )
    for path in versioned:
        for method in ("get", "patch"):
            assert declared(app, spec["paths"][path][method], "200")["ETag"]["required"], path


def test_retries_and_challenges_declare_their_headers(app: FastAPI) -> None:
    for path, method, op in all_operations(app):
        for status, header in (("503", "Retry-After"), ("401", "WWW-Authenticate")):
            if status in op["responses"]:
                assert declared(app, op, status)[header]["required"], (method, path, status)
        if "405" in op["responses"]:
            assert declared(app, op, "405")["Allow"]["required"], (method, path)


# Codes the API answers with each status (contract §2-§5, app/core/errors.py, the routes).
PLAUSIBLE = {
    400: {"malformed_json", "body_too_deep"},
    401: {"invalid_token", "missing_token"},
    403: {"forbidden", "no_tenant"},
    404: {"not_found"},
    405: {"method_not_allowed"},
    409: {
        "conflict",
        "duplicate_vin",
        "duplicate_plate",
        "odometer_rollback",
        "already_superseded",
        "event_immutable",
        "invalid_status_transition",
        "idempotency_in_flight",
    },
    412: {"precondition_failed"},
    413: {"payload_too_large"},
    415: {"unsupported_media_type"},
    422: {
        "validation_failed",
        "invalid_reference",
        "invalid_value",
        "invalid_payload",
        "invalid_cursor",
        "idempotency_key_reused",
        "reminder_not_found",
        "correction_target_not_found",
    },
    503: {
        "statement_timeout",
        "lock_timeout",
        "transaction_conflict",
        "database_unavailable",
        "pool_exhausted",
        "not_ready",
        "auth_unavailable",
    },
}


def test_each_error_status_shows_examples_of_its_own(app: FastAPI) -> None:
    spec = app.openapi()
    fields = set(spec["components"]["schemas"]["Problem"]["properties"])
    problems: list[str] = []
    for path, method, op in all_operations(app):
        for status, response in op["responses"].items():
            media = response.get("content", {}).get(PROBLEM)
            if media is None:
                continue
            where = f"{method.upper()} {path} {status}"
            examples = [e["value"] for e in media.get("examples", {}).values()]
            if not examples:
                problems.append(f"{where}: no example")
            for value in examples:
                if value["status"] != int(status):
                    problems.append(f"{where}: example of a {value['status']}")
                if value["code"] not in PLAUSIBLE[int(status)]:
                    problems.append(f"{where}: {value['code']} is not a {status} code")
                if value["type"] != f"urn:motomind:problem:{value['code']}":
                    problems.append(f"{where}: type {value['type']}")
                if not set(value) <= fields:
                    problems.append(f"{where}: {set(value) - fields} not in Problem")
                if value["code"] == "validation_failed" and not value.get("errors"):
                    problems.append(f"{where}: validation_failed without errors")
    assert problems == []
    garage = spec["paths"]["/v1/garages"]["post"]["responses"]
    assert set(garage["409"]["content"][PROBLEM]["examples"]) == {"idempotency_in_flight"}
    vehicle = spec["paths"]["/v1/vehicles/{vehicle_id}"]["patch"]["responses"]
    assert {"duplicate_vin", "duplicate_plate"} <= set(
        vehicle["409"]["content"][PROBLEM]["examples"]
    )


async def test_declared_headers_are_the_ones_sent(
    app: FastAPI, client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    """The declarations follow rules (app/web/openapi.py): real answers hold them to the truth."""
    user = await create_user(db)
    h = auth(user)
    key = {"Idempotency-Key": f"k-{uuid.uuid4()}"}
    garage = await client.post("/v1/garages", json={"name": "Home"}, headers=h | key)
    garage_id = garage.json()["id"]
    vehicle = await client.post("/v1/vehicles", json={"make": "Moto"}, headers=h)
    event = await client.post(
        "/v1/timeline",
        json={"vehicle_id": vehicle.json()["id"], "type": "odometer", "miles": 10},
        headers=h,
    )
    event_id = event.json()["id"]
    garage_path = "/v1/garages/{garage_id}"
    answers = [
        ("post", "/v1/garages", garage),
        (
            "post",
            "/v1/garages",
            await client.post("/v1/garages", json={"name": "Home"}, headers=h | key),
        ),
        ("post", "/v1/timeline", event),
        ("get", garage_path, await client.get(f"/v1/garages/{garage_id}", headers=h)),
        (
            "patch",
            garage_path,
            await client.patch(f"/v1/garages/{garage_id}", json={"name": "Barn"}, headers=h),
        ),
        ("get", "/v1/me", await client.get("/v1/me", headers=h)),
        ("get", "/v1/timeline/{event_id}", await client.get(f"/v1/timeline/{event_id}", headers=h)),
        ("get", "/v1/garages", await client.get("/v1/garages")),
        ("put", "/v1/timeline/{event_id}", await client.put(f"/v1/timeline/{event_id}", headers=h)),
        ("delete", garage_path, await client.delete(f"/v1/garages/{garage_id}", headers=h)),
    ]
    spec = app.openapi()
    for method, path, resp in answers:
        status = str(resp.status_code)
        op = spec["paths"][path][method]
        assert status in op["responses"], (method, path, status, resp.text)
        headers = declared(app, op, status)
        for name, header in headers.items():
            if header.get("required"):
                assert name in resp.headers, (method, path, status, name)
        for name in ("ETag", "Location", "Idempotent-Replayed", "Retry-After", "Allow"):
            if name in resp.headers:
                assert name in headers, (method, path, status, name)
    assert answers[1][2].headers["Idempotent-Replayed"] == "true"  # the replay, really
