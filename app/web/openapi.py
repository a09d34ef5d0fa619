"""The response headers of the OpenAPI document: what FastAPI cannot see in a route's signature.

The headers come from shared machinery (the edge's X-Request-ID, `resources.created`'s Location and
ETag, `resources.set_etag`, the idempotency replay, the 503s' Retry-After), so they are declared
here by the same rules that machinery follows, once, over the whole document; tests/test_openapi.py
checks the declarations against real answers.
"""

from typing import Any

HEADERS: dict[str, dict[str, Any]] = {
    "X-Request-ID": {
        "description": "This request's id: the client's own `X-Request-ID` when it sent a sane "
        "one (up to 128 letters, digits, `-`, `_`, `.`, `:`), else a new one. Every response "
        "carries it, and the server's log line for the request does too: quote it in a report.",
        "required": True,
        "schema": {"type": "string"},
        "example": "9f1c2d3e4b5a69788796a5b4c3d2e1f0",
    },
    "ETag": {
        "description": "The version of this resource. Send it back as `If-Match` on a PATCH or "
        "DELETE to change the resource only if nobody changed it since (else 412).",
        "required": True,
        "schema": {"type": "string"},
        "example": '"5d41402abc4b2a76b971"',
    },
    "Location": {
        "description": "The path of the resource just created.",
        "required": True,
        "schema": {"type": "string"},
        "example": "/v1/garages/0b5b8f52-3f1e-4c1a-9a53-6f3d2f8f9c10",
    },
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored first response to the same "
        "`Idempotency-Key` and body, replayed: nothing was created this time. Absent otherwise.",
        "schema": {"type": "string", "enum": ["true"]},
    },
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
        "example": 1,
    },
    "Retry-After-if-in-flight": {
        "description": "With `idempotency_in_flight`: seconds to wait before retrying with the "
        "same `Idempotency-Key`.",
        "schema": {"type": "integer", "minimum": 0},
        "example": 1,
    },
    "WWW-Authenticate": {
        "description": "The bearer challenge (RFC 6750): `Bearer` for a missing token, else "
        '`Bearer error="invalid_token", error_description="..."`.',
        "required": True,
        "schema": {"type": "string"},
        "example": 'Bearer error="invalid_token", error_description="Signature has expired"',
    },
    "Allow": {
        "description": "The methods this path accepts.",
        "required": True,
        "schema": {"type": "string"},
        "example": "GET",
    },
}
# Component names differ from header names only where one header has two meanings.
_HEADER_NAME = {"Retry-After-if-in-flight": "Retry-After"}


def _ref(component: str) -> dict[str, str]:
    return {"$ref": f"#/components/headers/{component}"}


def _header_params(operation: dict[str, Any]) -> set[str]:
    return {p["name"] for p in operation.get("parameters", []) if p.get("in") == "header"}


def _versioned(paths: dict[str, Any], path: str) -> bool:
    """Whether the resource at `path` has an ETag: its PATCH takes `If-Match` (app/web/etag.py)."""
    return "If-Match" in _header_params(paths.get(path, {}).get("patch", {}))


def _item_path(paths: dict[str, Any], collection: str) -> str | None:
    """`/v1/garages/{garage_id}` for `/v1/garages`: where a create's Location points."""
    for path in paths:
        rest = path.removeprefix(collection + "/")
        if rest != path and rest.startswith("{") and rest.endswith("}") and "/" not in rest:
            return path
    return None


def headers_of(paths: dict[str, Any], path: str, method: str, status: str) -> list[str]:
    """The component names of the headers one documented response carries."""
    operation = paths[path][method]
    names = ["X-Request-ID"]
    ok = status.startswith("2")
    if status == "201":
        names.append("Location")
        item = _item_path(paths, path)
        if item is not None and _versioned(paths, item):
            names.append("ETag")
    elif ok and method in ("get", "patch") and _versioned(paths, path):
        names.append("ETag")
    idempotent = "Idempotency-Key" in _header_params(operation)
    if ok and idempotent:
        names.append("Idempotent-Replayed")
    if status == "409" and idempotent:
        names.append("Retry-After-if-in-flight")
    if status in ("429", "503"):
        names.append("Retry-After")
    if status == "401":
        names.append("WWW-Authenticate")
    if status == "405":
        names.append("Allow")
    return names


def document_response_headers(schema: dict[str, Any]) -> None:
    """Declare on every documented response the headers it is answered with."""
    paths: dict[str, Any] = schema.get("paths", {})
    used: set[str] = set()
    for path, operations in paths.items():
        for method, operation in operations.items():
            for status, response in operation.get("responses", {}).items():
                names = headers_of(paths, path, method, status)
                declared = response.setdefault("headers", {})
                for name in names:
                    declared[_HEADER_NAME.get(name, name)] = _ref(name)
                used.update(names)
    components = schema.setdefault("components", {}).setdefault("headers", {})
    components.update({name: HEADERS[name] for name in sorted(used)})
