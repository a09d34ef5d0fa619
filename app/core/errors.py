"""Domain errors and RFC 9457 problem+json handlers.

Routes never build error bodies: they raise `ProblemError` (or let asyncpg raise) and the handlers
installed by `install_error_handlers` answer `application/problem+json` with a stable `code`
(database errors through app/core/sqlstate.py's table). What the OpenAPI document says about
errors is app/web/problem_docs.py's.
"""

import logging
from collections.abc import Callable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

import asyncpg
from fastapi import FastAPI, Request, params
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.retry import mark_retryable
from app.core.sqlstate import (
    INTERNAL,
    RETRY_WHOLE_REQUEST,
    UNAVAILABLE,
    SqlProblem,
    classify_postgres_error,
)

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
