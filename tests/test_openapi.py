"""The OpenAPI document is what integrators learn the API from: every operation is documented."""

from typing import Any

from fastapi import FastAPI

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
