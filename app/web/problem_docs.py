"""What the OpenAPI document says about errors: the Problem schema, each route's documented
error statuses with examples of their own codes, and the statuses every route can answer
(the machinery's 400/413/415/422). Documentation only: app/core/errors.py answers the requests.

Longer than 300 lines because most of it is data: the default example of every status, each a
real problem the API answers with.
"""

import copy
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, Field

from app.core.errors import PROBLEM_MEDIA_TYPE, ProblemError, not_found, problem_body
from app.core.sqlstate import SQLSTATE_TABLE
from app.web.openapi import document_response_headers

# --- OpenAPI models (documentation only; responses are built by `problem_response`) -------------


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="Where: e.g. `['body', 'name']`.")
    msg: str
    type: str = Field(description="A stable machine name, e.g. `string_too_long`.")


class Problem(BaseModel):
    """An RFC 9457 problem detail."""

    type: str = Field(examples=["urn:motomind:problem:not_found"])
    title: str = Field(examples=["Not found"])
    status: int = Field(examples=[404])
    detail: str | None = Field(default=None, examples=["The resource does not exist."])
    code: str = Field(
        description="Stable machine code: `not_found`, `validation_failed`, `invalid_token`, "
        "`no_tenant`, `duplicate_vin`, `odometer_rollback`, `statement_timeout`, ...",
        examples=["not_found"],
    )
    instance: str | None = Field(default=None, description="The request path.")
    errors: list[FieldError] | None = Field(default=None, description="Only on 422.")


_DESCRIPTIONS = {
    400: "The body is not valid JSON (`malformed_json`) or is nested too deep (`body_too_deep`).",
    401: "Missing or invalid bearer token (`invalid_token`); see `WWW-Authenticate`.",
    403: "Token valid but not allowed here (`forbidden`), or no tenant (`no_tenant`).",
    404: "Not found, or another tenant's (`not_found`).",
    409: "Conflict with the current state (`duplicate_vin`, `odometer_rollback`, ...).",
    412: "`If-Match` no longer matches (`precondition_failed`).",
    415: "A body that is not `application/json` (`unsupported_media_type`).",
    422: "Invalid input (`validation_failed`, with `errors`).",
    503: "Database busy, timed out or unreachable; retry after `Retry-After` seconds.",
}


# What a documented error status shows when its route names no examples of its own: codes the
# API really answers with that status, the most common first. (Swagger UI and ReDoc show a media
# type's examples rather than the Problem schema's field examples, which are a 404's.)
DEFAULT_EXAMPLES: dict[int, list[ProblemError]] = {
    400: [
        ProblemError(
            400,
            "malformed_json",
            "Malformed JSON",
            "The body is not valid JSON: Expecting ',' delimiter at character 14.",
        ),
        ProblemError(
            400,
            "body_too_deep",
            "Body nested too deep",
            "JSON bodies may be nested at most 64 levels deep.",
        ),
    ],
    401: [
        ProblemError(401, "invalid_token", "Invalid token", "token expired"),
        ProblemError(
            401,
            "missing_token",
            "Authentication required",
            "Send `Authorization: Bearer <access token>`.",
        ),
    ],
    403: [
        ProblemError(
            403, "no_tenant", "No tenant", "The token's user belongs to no tenant (no profile)."
        ),
        ProblemError(
            403, "forbidden", "Forbidden", "This route needs a token with role authenticated."
        ),
    ],
    404: [not_found()],
    405: [
        ProblemError(
            405,
            "method_not_allowed",
            "Method not allowed",
            "This method is not allowed here; see `Allow`.",
        )
    ],
    409: [
        ProblemError(409, "conflict", "Conflict", "A resource with these values already exists.")
    ],
    412: [
        ProblemError(
            412,
            "precondition_failed",
            "Precondition failed",
            "The resource changed since you read it; GET it again and retry with its new ETag.",
        )
    ],
    413: [
        ProblemError(
            413,
            "payload_too_large",
            "Payload too large",
            "Request bodies are limited to 1048576 bytes.",
        )
    ],
    415: [
        ProblemError(
            415,
            "unsupported_media_type",
            "Unsupported media type",
            "Send the body as JSON, with `Content-Type: application/json`.",
        )
    ],
    422: [
        ProblemError(
            422,
            "validation_failed",
            "Validation failed",
            "The request does not match the schema; see `errors`.",
            # Server-owned fields are refused on every body (request models forbid extras).
            errors=[
                {
                    "loc": ["body", "id"],
                    "msg": "Extra inputs are not permitted",
                    "type": "extra_forbidden",
                }
            ],
        )
    ],
    503: [
        ProblemError(
            503,
            "statement_timeout",
            "Timed out",
            "The request took too long and was cancelled; retry.",
        ),
        ProblemError(
            503, "pool_exhausted", "Busy", "No database connection became free in time; retry."
        ),
    ],
}


def _validation_example(operation: dict[str, Any]) -> ProblemError:
    """A 422 of an operation without a body: its `limit`, else its first path parameter."""
    params = operation.get("parameters", [])
    names = {p.get("name") for p in params if p.get("in") == "query"}
    path = [p["name"] for p in params if p.get("in") == "path"]
    if "limit" in names or not path:
        error = {
            "loc": ["query", "limit"],
            "msg": "Input should be less than or equal to 200",
            "type": "less_than_equal",
        }
    else:
        error = {
            "loc": ["path", path[0]],
            "msg": "Input should be a valid UUID, invalid length: expected length 32 for simple "
            "format, found 3",
            "type": "uuid_parsing",
        }
    return ProblemError(
        422,
        "validation_failed",
        "Validation failed",
        "The request does not match the schema; see `errors`.",
        errors=[error],
    )


# What every route taking an Idempotency-Key can also answer (app/web/idempotency.py).
IDEMPOTENCY_EXAMPLES: dict[int, ProblemError] = {
    409: ProblemError(
        409,
        "idempotency_in_flight",
        "Request in progress",
        "A request with this Idempotency-Key is still being processed; retry shortly.",
    ),
    422: ProblemError(
        422,
        "idempotency_key_reused",
        "Idempotency-Key reused",
        "This Idempotency-Key was used with a different request; use a new key.",
    ),
}


def _examples(problems: Sequence[ProblemError]) -> dict[str, dict[str, Any]]:
    """A media type's `examples`: each problem as it is sent, named by its code."""
    return {
        p.code: {
            "summary": p.title,
            "value": problem_body(
                status=p.status, code=p.code, title=p.title, detail=p.detail, errors=p.errors
            ),
        }
        for p in problems
    }


def problem_responses(
    *statuses: int, examples: Sequence[ProblemError] = ()
) -> dict[int | str, dict[str, Any]]:
    """`responses=` for a route: each status documented with the Problem schema.

    `examples`: the problems this route answers, shown under their statuses in place of
    `DEFAULT_EXAMPLES` (give the default ones too when they still apply).
    """
    responses: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        content: dict[str, Any] = {"schema": {"$ref": "#/components/schemas/Problem"}}
        own = [e for e in examples if e.status == status]
        if own:
            content["examples"] = _examples(own)
        responses[status] = {
            "description": _DESCRIPTIONS.get(status, HTTPStatus(status).phrase),
            "content": {PROBLEM_MEDIA_TYPE: content},
        }
    return responses


def db_example(
    sqlstate: str, *, code: str | None = None, detail: str | None = None, field: str | None = None
) -> ProblemError:
    """For a route's documented `examples`: the problem a database error is answered with
    (`classify_postgres_error`'s answer; `field`: the column the server names, if any)."""
    entry = SQLSTATE_TABLE[sqlstate]
    code = code or entry.code
    detail = detail or entry.detail
    errors = None
    if field and entry.status == 422:
        errors = [{"loc": ["body", field], "msg": detail or entry.title, "type": code}]
    return ProblemError(entry.status, code, entry.title, detail, errors=errors)


def document_problems(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
        )
        # The passes below edit responses in place: none may be shared with a route (a route's
        # `responses=` dict) or with another operation.
        schema = copy.deepcopy(schema)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        extra = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(extra.pop("$defs", {}))
        components["Problem"] = extra
        _document_machinery_errors(schema)
        document_response_headers(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _problem_media(response: dict[str, Any]) -> dict[str, Any]:
    """The response's problem+json media type (a new one if it has none), and nothing else:
    FastAPI's own `application/json` validation error is not what the API sends."""
    media: dict[str, Any] = response.get("content", {}).get(PROBLEM_MEDIA_TYPE) or {
        "schema": {"$ref": "#/components/schemas/Problem"}
    }
    response["content"] = {PROBLEM_MEDIA_TYPE: media}
    return media


def _document_machinery_errors(schema: dict[str, Any]) -> None:
    """Errors every route can answer whatever its own `responses=` say, as they are really sent,
    each with examples of its own status.

    FastAPI documents its request-validation 422 as `application/json` (HTTPValidationError); ours
    is a problem. On every route that takes a body: a body that is not valid JSON is a 400, one
    over 1 MiB a 413, one sent as another media type a 415.
    """
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if "422" in responses:
                _problem_media(responses["422"])
            if "requestBody" in operation:
                for status in (400, 413, 415):
                    _problem_media(
                        responses.setdefault(
                            str(status),
                            {"description": _DESCRIPTIONS.get(status, HTTPStatus(status).phrase)},
                        )
                    )
            idempotent = any(
                p.get("in") == "header" and p.get("name") == "Idempotency-Key"
                for p in operation.get("parameters", [])
            )
            for status, response in responses.items():
                media = response.get("content", {}).get(PROBLEM_MEDIA_TYPE)
                if media is not None:
                    _fill_examples(media, int(status), operation, idempotent=idempotent)
    for unused in ("HTTPValidationError", "ValidationError"):
        referenced = f'"#/components/schemas/{unused}"'
        if referenced not in str(schema.get("paths", {})).replace("'", '"'):
            schema.get("components", {}).get("schemas", {}).pop(unused, None)


def _fill_examples(
    media: dict[str, Any], status: int, operation: dict[str, Any], *, idempotent: bool
) -> None:
    """The route's own examples, else the defaults (a 422 without a body: of its parameters); on
    a route taking an Idempotency-Key, also the idempotency problem of that status."""
    defaults = DEFAULT_EXAMPLES.get(status, [])
    if status == 422 and "requestBody" not in operation:
        defaults = [_validation_example(operation)]
    examples = dict(media.get("examples") or _examples(defaults))
    extra = IDEMPOTENCY_EXAMPLES.get(status) if idempotent else None
    if extra is not None:
        if status == 409 and "examples" not in media:
            examples = {}  # a create without conflicts of its own: only a retry in flight
        examples |= _examples([extra])
    if examples:
        media["examples"] = examples
