"""What every request passes before routing, as ONE ASGI layer.

In this order: the request id (the client's X-Request-ID if sane, else new), one access line and
the metrics; the header-size limit (431) and the body-size limit (413, before anything parses the
body); then the retry of a request whose transaction lost a serialization race (app/core/retry.py),
inside the body limit so the body it buffers for a replay is at most 1 MiB.

The CORS layer sits inside this one, so that its preflight answers carry the request id too. The
edge's own answers (413, 431, the last-resort 500) never pass through it: they get the same CORS
headers here, from Starlette's CORSMiddleware with the same options, or a browser could not read
them ("Failed to fetch" instead of the problem).

One layer rather than four: each ASGI middleware costs every request a coroutine and, when it
watches the response, a wrapper around every message sent (bench/README.md measures it).
"""

import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import problem_response, unexpected_error
from app.core.observability import (
    ACCESS_LOGGER_NAME,
    LATENCY,
    REQUESTS,
    VALID_REQUEST_ID,
    access_log,
    request_id_var,
)
from app.core.retry import run_with_retries

ACCESS_LOGGER = logging.getLogger(ACCESS_LOGGER_NAME)
MAX_BODY_BYTES = 1024 * 1024
# uvicorn's default HTTP parser (httptools) sets no limit of its own, so the app keeps the bound.
# Generous on purpose: a token over 8 KiB (but under this) still gets the contract's 401.
MAX_HEADER_BYTES = 128 * 1024


class _BodyTooLargeError(Exception):
    pass


# The metrics' children by (method, route, status): prometheus_client's labels() validates and
# looks its child up under a lock on every call (~6 us a request); these are the same children,
# as many as the registry holds anyway.
_METRIC_CHILDREN: dict[tuple[str, str, str], tuple[Any, Any]] = {}


def _observe(method: str, route: str, status: str, elapsed: float) -> None:
    key = (method, route, status)
    children = _METRIC_CHILDREN.get(key)
    if children is None:
        children = _METRIC_CHILDREN[key] = (
            REQUESTS.labels(method, route, status),
            LATENCY.labels(method, route),
        )
    children[0].inc()
    children[1].observe(elapsed)


def _route_of(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"


class EdgeMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int = MAX_BODY_BYTES,
        max_header_bytes: int = MAX_HEADER_BYTES,
        cors: Mapping[str, Any] | None = None,
    ) -> None:
        """`cors`: the CORSMiddleware options of the layer inside, or None without one."""
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes
        self.cors = dict(cors) if cors is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_headers = dict(scope["headers"])
        incoming = request_headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = [*message.get("headers", ()), (b"x-request-id", request_id.encode())]
                message = {**message, "headers": headers}
            await send(message)

        try:
            try:
                await self._limited(scope, request_headers, receive, send_with_id)
            except _BodyTooLargeError:
                if response_started:
                    raise
                await self._too_large(scope, receive, send_with_id)
            except Exception as exc:
                if response_started:
                    raise
                response = await unexpected_error(Request(scope), exc)
                await self._answer(response, scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = _route_of(scope)
            _observe(scope["method"], route, str(status), elapsed)
            if ACCESS_LOGGER.isEnabledFor(logging.INFO):  # else not even built (LOG_LEVEL)
                state = scope.get("state", {})
                access_log.info(
                    "request",
                    method=scope["method"],
                    route=route,
                    path=scope["path"],
                    status=status,
                    duration_ms=round(elapsed * 1000, 2),
                    tenant_id=state.get("tenant_id"),
                    user_id=state.get("user_id"),
                )
            request_id_var.reset(token)

    async def _limited(
        self, scope: Scope, headers: dict[bytes, bytes], receive: Receive, send: Send
    ) -> None:
        """The size limits, then the app (with retries)."""
        if sum(len(k) + len(v) + 4 for k, v in scope["headers"]) > self.max_header_bytes:
            await self._refuse(
                scope,
                receive,
                send,
                431,
                "headers_too_large",
                "Request header fields too large",
                f"Request headers are limited to {self.max_header_bytes} bytes in total.",
            )
            return
        declared = headers.get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            raise _BodyTooLargeError
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise _BodyTooLargeError
            return message

        await run_with_retries(
            self.app, scope, counting_receive, send, max_body_bytes=self.max_body_bytes
        )

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._refuse(
            scope,
            receive,
            send,
            413,
            "payload_too_large",
            "Payload too large",
            f"Request bodies are limited to {self.max_body_bytes} bytes.",
        )

    async def _refuse(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        status: int,
        code: str,
        title: str,
        detail: str,
    ) -> None:
        """A limit's problem response, before any route has seen the request."""
        problem = problem_response(
            Request(scope), status=status, code=code, title=title, detail=detail
        )
        await self._answer(problem, scope, receive, send)

    async def _answer(self, response: Response, scope: Scope, receive: Receive, send: Send) -> None:
        """Send one of the edge's own answers, with the CORS headers the inner layer would add.

        Only a simple response's headers, even to a preflight: a refusal keeps its status (a
        preflight answered with anything but 2xx fails in the browser anyway).
        """
        if self.cors is None:
            await response(scope, receive, send)
            return
        cors = CORSMiddleware(response, **self.cors)
        await cors.simple_response(scope, receive, send, request_headers=Headers(scope=scope))
