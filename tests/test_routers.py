"""The routes registered flat on the app (app/routers.py): the same API as `include_router` gives,
and a copy that could differ is refused when the app is built."""

from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from app import main
from app.core.config import Settings
from app.main import create_app
from app.routers import ROUTERS, register


def test_the_flat_app_documents_exactly_what_include_router_gives(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    flat = create_app(settings).openapi()

    def include(app: FastAPI) -> None:
        for router in ROUTERS:
            app.include_router(router)

    monkeypatch.setattr(main, "register", include)
    assert create_app(settings).openapi() == flat


def test_every_route_is_on_the_app_itself(settings: Settings) -> None:
    app = create_app(settings)
    api_routes = [r for r in app.routes if getattr(r, "path", "").startswith("/v1/")]
    assert all(isinstance(r, APIRoute) for r in api_routes)
    declared = [r for router in ROUTERS for r in router.routes]
    assert [(r.path, r.methods, r.endpoint) for r in api_routes] == [  # type: ignore[attr-defined]
        (r.path, r.methods, r.endpoint)  # type: ignore[attr-defined]
        for r in declared
    ]
    # Nothing but routes in the app's list: no router left as a node to walk.
    assert all(hasattr(r, "path") for r in app.routes)


async def _endpoint() -> dict[str, Any]:
    return {}


def test_a_router_that_includes_a_router_is_refused() -> None:
    inner, outer = APIRouter(), APIRouter()
    inner.add_api_route("/inner", _endpoint)
    outer.include_router(inner)
    with pytest.raises(TypeError, match="only path operations"):
        register(FastAPI(), [outer])


def test_a_route_whose_copy_would_differ_is_refused() -> None:
    """A route class with a setting add_api_route does not pass on (as a later FastAPI's could
    be): the copy would silently lose it, so the app is not built."""

    class LimitedRoute(APIRoute):
        def __init__(self, *args: Any, rate_limit: int = 0, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.rate_limit = rate_limit

    router = APIRouter()
    router.routes.append(LimitedRoute("/limited", _endpoint, rate_limit=5))
    with pytest.raises(RuntimeError, match="differs"):
        register(FastAPI(), [router])
    # Allow twin: the same route class without the setting is copied.
    plain = APIRouter(route_class=LimitedRoute)
    plain.add_api_route("/limited", _endpoint)
    app = FastAPI()
    register(app, [plain])
    assert isinstance(app.routes[-1], LimitedRoute)
