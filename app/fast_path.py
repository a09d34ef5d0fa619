"""Fast paths: a hot route's everyday request answered without FastAPI's per-request machinery.

For every request FastAPI solves the dependency tree level by level and re-reads each
parameter's annotation; for a timeline page that was over half of the API's own CPU
(bench/README.md). A route of class `FastPathRoute` whose endpoint carries `@fast_path(recognize)`
first offers the request to `recognize`, which answers only a request it understands completely
(a token the verifier already accepted, parameters in their canonical form, nothing else) and
returns None for anything else. What it declines goes through FastAPI's own handling, which
stays the reference: every error message, every 422, every refusal comes from there. Routing,
exception handlers, middleware and the OpenAPI document are FastAPI's either way, and
tests/timeline/test_fast_path.py holds the two to the same answers. While any dependency is
overridden (`app.dependency_overrides`), every request takes FastAPI's handling, which applies it.
"""

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import fastapi.routing
from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from app.observability import FAST_PATH_REQUESTS

Recognizer = Callable[[Request], Awaitable[Response | None]]
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])
_FAST_PATH = "__motomind_fast_path__"
# FastAPI (0.16x) builds an included route's handler under this context, which holds the route as
# included: with the include's `dependencies=`. get_route_handler reads it just so.
_INCLUDE_CONTEXT = getattr(fastapi.routing, "_effective_route_context_var", None)


def fast_path(
    recognize: Recognizer, *, replaces: Callable[..., Any]
) -> Callable[[Endpoint], Endpoint]:
    """Marks a route's endpoint: `recognize` may answer its requests (see the module). It does
    the work of the dependency `replaces`, and of no other: a route with any other dependency
    (its own, its router's, an include's) raises when FastAPI builds it (at once; for an
    include's, with the OpenAPI document or on the first request) rather than bypass it."""

    def mark(endpoint: Endpoint) -> Endpoint:
        setattr(endpoint, _FAST_PATH, (recognize, replaces))
        return endpoint

    return mark


class FastPathRoute(APIRoute):
    """An APIRoute that tries its endpoint's fast path first; without one, exactly an APIRoute."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        standard = super().get_route_handler()
        marked: tuple[Recognizer, Callable[..., Any]] | None = getattr(
            self.endpoint, _FAST_PATH, None
        )
        if marked is None:
            return standard
        recognize, replaces = marked
        bypassed = [d.call for d in self._dependant_as_included().dependencies]
        if bypassed != [replaces]:
            names = ", ".join(getattr(call, "__name__", repr(call)) for call in bypassed)
            raise RuntimeError(
                f"{self.path}: its fast path replaces {replaces.__name__} only, "
                f"but the route depends on: {names}"
            )
        taken = FAST_PATH_REQUESTS.labels(self.path)

        async def handler(request: Request) -> Response:
            # Any dependency override must be honoured, and only FastAPI's handling applies one.
            if not request.app.dependency_overrides:
                try:
                    response = await recognize(request)
                except BaseException:
                    taken.inc()  # it took the request: its error (a 404, say) is the answer
                    raise
                if response is not None:
                    taken.inc()
                    return response
            return await standard(request)

        return handler

    def _dependant_as_included(self) -> Dependant:
        context = _INCLUDE_CONTEXT.get() if _INCLUDE_CONTEXT is not None else None
        if context is not None and getattr(context, "original_route", None) is self:
            return context.dependant  # type: ignore[no-any-return]
        return self.dependant
