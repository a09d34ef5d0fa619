"""Fast paths: a hot route's everyday request answered without FastAPI's per-request machinery.

For every request FastAPI solves the dependency tree level by level and re-reads each
parameter's annotation; for a timeline page that was over half of the API's own CPU
(bench/README.md). A route of class `FastPathRoute` whose endpoint carries `@fast_path(recognize)`
first offers the request to `recognize`, which answers only a request it understands completely
(a token the verifier already accepted, parameters in their canonical form, nothing else) and
returns None for anything else. What it declines goes through FastAPI's own handling, which
stays the reference: every error message, every 422, every refusal comes from there. Routing,
exception handlers, middleware and the OpenAPI document are FastAPI's either way, and
tests/timeline/test_fast_path.py holds the two to the same answers.
"""

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from fastapi import Request, Response
from fastapi.routing import APIRoute

from app.observability import FAST_PATH_REQUESTS

Recognizer = Callable[[Request], Awaitable[Response | None]]
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])
_RECOGNIZER = "__motomind_fast_path__"


def fast_path(recognize: Recognizer) -> Callable[[Endpoint], Endpoint]:
    """Marks a route's endpoint: `recognize` may answer its requests (see the module)."""

    def mark(endpoint: Endpoint) -> Endpoint:
        setattr(endpoint, _RECOGNIZER, recognize)
        return endpoint

    return mark


class FastPathRoute(APIRoute):
    """An APIRoute that tries its endpoint's fast path first; without one, exactly an APIRoute."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        standard = super().get_route_handler()
        recognize: Recognizer | None = getattr(self.endpoint, _RECOGNIZER, None)
        if recognize is None:
            return standard
        served = FAST_PATH_REQUESTS.labels(self.path)

        async def handler(request: Request) -> Response:
            # A dependency override (tests) must be honoured: only FastAPI's path applies it.
            if not request.app.dependency_overrides:
                try:
                    response = await recognize(request)
                except BaseException:
                    served.inc()  # it took the request: its error (a 404, say) is the answer
                    raise
                if response is not None:
                    served.inc()
                    return response
            return await standard(request)

        return handler
