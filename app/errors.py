"""Domain errors, the SQLSTATE -> HTTP table, and RFC 9457 problem+json handlers.

Routes never build error bodies: they raise `ProblemError` (or let asyncpg raise) and the handlers
installed by `install_error_handlers` answer `application/problem+json` with a stable `code`.
"""

import copy
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import asyncpg
from fastapi import FastAPI, Request, params
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.openapi import document_response_headers
from app.retry import mark_retryable

log = logging.getLogger("motomind.errors")

PROBLEM_MEDIA_TYPE = "application/problem+json"
# How deep a JSON body may nest (app/web/models.py checks it; deeper is 400 body_too_deep): far
# deeper than any body this API takes (an event's payload items are 4 levels down), far shallower
# than anything that could exhaust the stack of code that walks a body recursively.
MAX_JSON_DEPTH = 64
RETRY_AFTER_S = "1"


class ProblemError(Exception):
    """An error the client can act on, answered as an RFC 9457 problem."""

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str | None = None,
        headers: Mapping[str, str] | None = None,
        errors: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {detail or title}")
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.headers = dict(headers or {})
        self.errors = [dict(e) for e in errors] if errors is not None else None


def not_found(detail: str = "The resource does not exist.") -> ProblemError:
    """Also what another tenant's id gets: existence must not leak."""
    return ProblemError(404, "not_found", "Not found", detail)


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


# --- Responses ------------------------------------------------------------------------------------


def problem_response(
    request: Request | None,
    *,
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    headers: Mapping[str, str] | None = None,
    errors: Sequence[Mapping[str, Any]] | None = None,
) -> JSONResponse:
    body = problem_body(status=status, code=code, title=title, detail=detail, errors=errors)
    if request is not None:
        body["instance"] = request.url.path
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def problem_body(
    *,
    status: int,
    code: str,
    title: str,
    detail: str | None,
    errors: Sequence[Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """The RFC 9457 body, as sent and as the OpenAPI examples show it (without `instance`)."""
    body: dict[str, Any] = {
        "type": f"urn:motomind:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors is not None:
        body["errors"] = list(errors)
    return body


def _from_problem(request: Request, exc: ProblemError) -> JSONResponse:
    return problem_response(
        request,
        status=exc.status,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        headers=exc.headers,
        errors=exc.errors,
    )


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    411: "length_required",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    428: "precondition_required",
    429: "too_many_requests",
    503: "service_unavailable",
}


async def _http_exception(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, StarletteHTTPException):  # pragma: no cover - registered for that class
        raise exc
    status = exc.status_code
    if status == 400 and isinstance(exc.__cause__, RecursionError):
        # FastAPI's answer when its JSON parser ran out of stack (nesting in the thousands).
        return _too_deep(request)
    if status == 400 and isinstance(exc.__cause__, ValueError):
        # FastAPI's answer when the body could not even be decoded as text for the JSON parser.
        return _malformed_json(request, "it is not UTF-8 text")
    title = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != title else None
    if status == 404:
        detail = "The resource does not exist."
    return problem_response(
        request,
        status=status,
        code=_HTTP_CODES.get(status, "error" if status < 500 else "internal_error"),
        title=title,
        detail=detail,
        headers=exc.headers,
    )


def _loc_part(part: Any) -> str | int:
    return part if isinstance(part, int) else str(part)


def _too_deep(request: Request) -> JSONResponse:
    return problem_response(
        request,
        status=400,
        code="body_too_deep",
        title="Body nested too deep",
        detail=f"JSON bodies may be nested at most {MAX_JSON_DEPTH} levels deep.",
    )


def _malformed_json(request: Request, reason: str) -> JSONResponse:
    return problem_response(
        request,
        status=400,
        code="malformed_json",
        title="Malformed JSON",
        detail=f"The body is not valid JSON: {reason}.",
    )


def _is_json(content_type: str | None) -> bool:
    """FastAPI's own rule for parsing a body as JSON: application/json or application/*+json."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _json_body_not_sent_as_json(request: Request, errors: Sequence[Mapping[str, Any]]) -> bool:
    """A route that reads a JSON body got a body of another (or no) media type: FastAPI left it
    unparsed, and validating the raw bytes failed."""
    body_field = getattr(request.scope.get("route"), "body_field", None)
    if body_field is None or isinstance(body_field.field_info, params.Form):
        return False
    if _is_json(request.headers.get("content-type")):
        return False
    # No body at all is "missing" whatever the media type: that stays a 422.
    return any(
        tuple(err.get("loc", ()))[:1] == ("body",) and err.get("type") != "missing"
        for err in errors
    )


async def _validation_exception(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, RequestValidationError):  # pragma: no cover - registered for that class
        raise exc
    raw = exc.errors()
    syntax = next((e for e in raw if e.get("type") == "json_invalid"), None)
    if syntax is not None:
        # The parser's reason (e.g. "Expecting value") and where: never the body itself.
        reason = str((syntax.get("ctx") or {}).get("error", "JSON decode error"))
        position = [p for p in syntax.get("loc", ()) if isinstance(p, int)]
        return _malformed_json(
            request,
            f"{reason.removesuffix(' at')} at character {position[0]}" if position else reason,
        )
    if any(e.get("type") == "body_too_deep" for e in raw):
        return _too_deep(request)
    if _json_body_not_sent_as_json(request, raw):
        return problem_response(
            request,
            status=415,
            code="unsupported_media_type",
            title="Unsupported media type",
            detail="Send the body as JSON, with `Content-Type: application/json`.",
        )
    # Only where, what and why: never the input value (it may be a secret or another tenant's id).
    errors = [
        {
            "loc": [_loc_part(p) for p in err.get("loc", ())],
            "msg": str(err.get("msg", "invalid")),
            "type": str(err.get("type", "value_error")),
        }
        for err in raw
    ]
    return problem_response(
        request,
        status=422,
        code="validation_failed",
        title="Validation failed",
        detail="The request does not match the schema; see `errors`.",
        errors=errors,
    )


# --- The SQLSTATE table (PostgREST's Error.hs, as data) ------------------------------------------


@dataclass(frozen=True)
class SqlProblem:
    status: int
    code: str
    title: str
    detail: str | None = None
    retry: bool = False
    # Use the server's DETAIL as the detail (only for errors the schema raises for clients).
    detail_from_db: bool = False


_RETRY = {"retry": True}

SQLSTATE_TABLE: dict[str, SqlProblem] = {
    # Integrity: per-tenant uniqueness only, so a duplicate is the caller's own row.
    "23505": SqlProblem(
        409, "conflict", "Conflict", "A resource with these values already exists."
    ),
    # A reference to a row the caller cannot see (nonexistent or another tenant's) looks the same.
    "23503": SqlProblem(
        422, "invalid_reference", "Invalid reference", "A referenced resource does not exist."
    ),
    "23514": SqlProblem(
        422, "invalid_value", "Invalid value", "A value is out of its allowed range."
    ),
    "23502": SqlProblem(422, "invalid_value", "Invalid value", "A required value is missing."),
    "22001": SqlProblem(422, "invalid_value", "Invalid value", "A value is too long."),
    "22003": SqlProblem(422, "invalid_value", "Invalid value", "A number is out of range."),
    "22007": SqlProblem(422, "invalid_value", "Invalid value", "A date or time is invalid."),
    "22008": SqlProblem(422, "invalid_value", "Invalid value", "A date or time is out of range."),
    "22023": SqlProblem(422, "invalid_value", "Invalid value", "A value is invalid."),
    "22P02": SqlProblem(422, "invalid_value", "Invalid value", "A value has the wrong format."),
    # RLS WITH CHECK (or a tenant guard) refused a row naming something outside the tenant:
    # answered as if it did not exist.
    "42501": SqlProblem(404, "not_found", "Not found", "The resource does not exist."),
    # Transient: retry.
    "55P03": SqlProblem(503, "lock_timeout", "Busy", "The resource is busy; retry.", **_RETRY),
    "57014": SqlProblem(
        503,
        "statement_timeout",
        "Timed out",
        "The request took too long and was cancelled; retry.",
        **_RETRY,
    ),
    "40001": SqlProblem(
        503, "transaction_conflict", "Busy", "A concurrent change interfered; retry.", **_RETRY
    ),
    "40P01": SqlProblem(
        503, "transaction_conflict", "Busy", "A concurrent change interfered; retry.", **_RETRY
    ),
    "53300": SqlProblem(
        503, "database_unavailable", "Unavailable", "The database is unavailable; retry.", **_RETRY
    ),
    "57P01": SqlProblem(
        503, "database_unavailable", "Unavailable", "The database is unavailable; retry.", **_RETRY
    ),
    "57P03": SqlProblem(
        503, "database_unavailable", "Unavailable", "The database is unavailable; retry.", **_RETRY
    ),
    # Raised by the schema for clients (sql/300_functions.sql): DETAIL is written for them.
    "MM001": SqlProblem(409, "odometer_rollback", "Odometer rollback", detail_from_db=True),
    "MM002": SqlProblem(422, "invalid_payload", "Invalid payload", detail_from_db=True),
    "MM003": SqlProblem(409, "event_immutable", "Event immutable", detail_from_db=True),
    # References in a body to a row the caller cannot see, like 23503 (sql/400_triggers.sql).
    "MM004": SqlProblem(422, "reminder_not_found", "Invalid reference", detail_from_db=True),
    "MM005": SqlProblem(
        422, "correction_target_not_found", "Invalid reference", detail_from_db=True
    ),
    "MM006": SqlProblem(409, "already_superseded", "Already superseded", detail_from_db=True),
    "MM007": SqlProblem(
        409, "invalid_status_transition", "Invalid status change", detail_from_db=True
    ),
}
# Whole classes, when the exact SQLSTATE is not in the table.
SQLSTATE_CLASS_TABLE: dict[str, SqlProblem] = {
    "08": SqlProblem(
        503, "database_unavailable", "Unavailable", "The database is unavailable; retry.", **_RETRY
    ),
    "22": SqlProblem(422, "invalid_value", "Invalid value", "A value is invalid."),
    "23": SqlProblem(422, "invalid_value", "Invalid value", "A constraint was violated."),
    "40": SqlProblem(
        503, "transaction_conflict", "Busy", "A concurrent change interfered; retry.", **_RETRY
    ),
    "53": SqlProblem(
        503,
        "database_unavailable",
        "Unavailable",
        "The database is out of resources; retry.",
        **_RETRY,
    ),
    "57": SqlProblem(
        503, "database_unavailable", "Unavailable", "The database is unavailable; retry.", **_RETRY
    ),
}
# Serialization failure and deadlock: the transaction is rolled back whole, so the whole request
# can safely run again (app/retry.py). Not other class-40 states (40003: completion unknown).
RETRY_WHOLE_REQUEST = frozenset({"40001", "40P01"})
INTERNAL = SqlProblem(500, "internal_error", "Internal error", "An unexpected error occurred.")
UNAVAILABLE = SqlProblem(
    503, "database_unavailable", "Unavailable", "The database is unavailable; retry.", retry=True
)


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


# The schema names a client-facing error by a snake_case MESSAGE (e.g. 'date_out_of_range') and
# explains it in DETAIL; built-in PostgreSQL messages are prose and never match.
_CLIENT_MESSAGE = re.compile(r"^[a-z][a-z0-9_]{2,62}$")
_KEY_COLUMNS = re.compile(r"^Key \(([a-z0-9_, ]+)\)=")


def _unique_code(constraint: str) -> str:
    for word in ("vin", "plate"):
        if word in constraint:
            return f"duplicate_{word}"
    return "conflict"


Classified = tuple[SqlProblem, str, str | None, list[dict[str, Any]] | None]


def classify_postgres_error(exc: asyncpg.PostgresError) -> Classified:
    """(table entry, code, detail, errors) for a database error; the one place that reads them."""
    sqlstate = str(getattr(exc, "sqlstate", "") or "")
    entry = SQLSTATE_TABLE.get(sqlstate) or SQLSTATE_CLASS_TABLE.get(sqlstate[:2]) or INTERNAL
    code, detail = entry.code, entry.detail
    message = str(getattr(exc, "message", "") or "")
    db_detail = getattr(exc, "detail", None)
    if entry.detail_from_db:
        detail = db_detail or detail
    elif entry.status < 500 and _CLIENT_MESSAGE.match(message):
        code, detail = message, db_detail or detail
    errors: list[dict[str, Any]] | None = None
    if sqlstate == "23505":
        code = _unique_code(str(getattr(exc, "constraint_name", "") or ""))
        if code != "conflict":
            detail = f"A resource with this {code.removeprefix('duplicate_')} already exists."
    # Name the field (never the value, never the constraint) when the server says which one.
    column = getattr(exc, "column_name", None)
    fields: list[str] = []
    if column:
        fields = [str(column)]
    elif sqlstate in ("23503", "23505") and isinstance(db_detail, str):
        match = _KEY_COLUMNS.match(db_detail)
        if match:
            fields = [c.strip() for c in match.group(1).split(",") if c.strip() != "tenant_id"]
    if fields and entry.status == 422:
        errors = [{"loc": ["body", f], "msg": detail or entry.title, "type": code} for f in fields]
    return entry, code, detail, errors


def _db_problem(
    request: Request,
    entry: SqlProblem,
    code: str,
    detail: str | None,
    errors: list[dict[str, Any]] | None = None,
) -> JSONResponse:
    return problem_response(
        request,
        status=entry.status,
        code=code,
        title=entry.title,
        detail=detail,
        headers={"Retry-After": RETRY_AFTER_S} if entry.retry else None,
        errors=errors,
    )


async def _postgres_exception(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, asyncpg.PostgresError):  # pragma: no cover - registered for that class
        raise exc
    entry, code, detail, errors = classify_postgres_error(exc)
    if getattr(exc, "sqlstate", None) in RETRY_WHOLE_REQUEST:
        # The request's transaction was rolled back whole: run_with_retries may run it again.
        mark_retryable(request.scope)
    if entry.status >= 500 and not entry.retry:
        log.error("database error %s", getattr(exc, "sqlstate", "?"), exc_info=exc)
    elif entry.retry:
        log.warning("database busy: %s %s", getattr(exc, "sqlstate", "?"), type(exc).__name__)
    return _db_problem(request, entry, code, detail, errors)


async def _connection_exception(request: Request, exc: Exception) -> Response:
    log.warning("database unreachable: %s", type(exc).__name__)
    return _db_problem(request, UNAVAILABLE, UNAVAILABLE.code, UNAVAILABLE.detail)


async def unexpected_error(request: Request, exc: Exception) -> Response:
    """A bug: 500 with nothing the client could learn from. Answered by the edge middleware,
    so the response still carries the request id (Starlette's own last-resort handler would not)."""
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _db_problem(request, INTERNAL, INTERNAL.code, INTERNAL.detail)


async def _problem_exception(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, ProblemError):  # pragma: no cover - registered for that class
        raise exc
    return _from_problem(request, exc)


def install_error_handlers(app: FastAPI) -> None:
    """Every error the app can produce leaves as application/problem+json."""
    handlers: list[tuple[type[Exception], Callable[[Request, Exception], Any]]] = [
        (ProblemError, _problem_exception),
        (StarletteHTTPException, _http_exception),
        (RequestValidationError, _validation_exception),
        (asyncpg.PostgresError, _postgres_exception),
        # Connection lost, pool closed, socket errors: the database, not the request, is at fault.
        (asyncpg.InterfaceError, _connection_exception),
        (asyncpg.exceptions.PostgresConnectionError, _connection_exception),
        (OSError, _connection_exception),
        (TimeoutError, _connection_exception),
    ]
    for exc_class, handler in handlers:
        app.add_exception_handler(exc_class, handler)
    _document_problem_schema(app)


def _document_problem_schema(app: FastAPI) -> None:
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
