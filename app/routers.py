"""Every domain's router, registered on the app flat, and the sections of the OpenAPI document.

Each domain declares its routes on an APIRouter of its own (prefix, tags); `register` puts them
on the app with FastAPI's `add_api_route`, one by one, as `include_router` did before FastAPI
0.137. `include_router` now keeps each router as a node the app's router walks on every request
(and walks again inside the one that matches), at several µs per route passed; flat, a request
passes each route once, at about 1.5 µs of CPU (bench/README.md). The hot paths, the timeline and
the vehicles, still come first. The document lists its sections in `OPENAPI_TAGS` order.

A copy that could differ from its original fails closed: a router that includes another router
(a node the copy would drop) is refused, and so is a route whose copy does not equal it in every
attribute FastAPI's `APIRoute` takes, as it applies (e.g. one a later FastAPI adds and
`add_api_route` does not pass on), when the app is built.
"""

import inspect
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.datastructures import DefaultPlaceholder
from fastapi.routing import APIRoute

from app.garages.router import router as garages
from app.images.router import router as images
from app.me.router import router as me
from app.ops.router import router as ops
from app.reminders.router import router as reminders
from app.timeline.router import router as timeline
from app.vehicles.router import router as vehicles

ROUTERS: list[APIRouter] = [
    timeline,
    vehicles,
    me,
    garages,
    reminders,
    images,
    ops,
]

OPENAPI_TAGS: list[dict[str, Any]] = [
    {"name": "me", "description": "The caller's profile and tenant."},
    {"name": "garages", "description": "Where vehicles are kept."},
    {"name": "vehicles", "description": "Vehicles, their derived mileage and their timelines."},
    {"name": "reminders", "description": "Service reminders, with a computed due state."},
    {"name": "images", "description": "Images registered by storage URL."},
    {
        "name": "timeline",
        "description": "The append-only event log (fuel-ups, services, readings, documents, "
        "inspections, reminder actions) and the dashboard feed.",
    },
    {"name": "ops", "description": "Operations, for `service_role` tokens only."},
    {"name": "health", "description": "Liveness and readiness, without a token."},
]


# What add_api_route takes from the route itself; the rest is the app's (its dependency overrides).
_NOT_COPIED = frozenset({"self", "path", "endpoint", "route_class_override"})
_OWN_ATTRIBUTES = frozenset({"dependency_overrides_provider"})


def register(app: FastAPI, routers: list[APIRouter] | None = None) -> None:
    """Add every route of `routers` (default: ROUTERS, in that order) to the app, flat."""
    for router in ROUTERS if routers is None else routers:
        for route in router.routes:
            if not isinstance(route, APIRoute):
                raise TypeError(
                    f"{router.prefix or '/'}: only path operations are registered flat: {route!r}"
                )
            _add_copy(app, route)


def _add_copy(app: FastAPI, route: APIRoute) -> None:
    parameters = inspect.signature(app.router.add_api_route).parameters
    options = {name: getattr(route, name) for name in parameters if name not in _NOT_COPIED}
    app.router.add_api_route(
        route.path, route.endpoint, route_class_override=type(route), **options
    )
    copy = app.router.routes[-1]
    compared = _settings_of(type(route)) - _OWN_ATTRIBUTES
    differs = sorted(
        name
        for name in compared
        if _effective(getattr(copy, name, None)) != _effective(getattr(route, name, None))
    )
    if not isinstance(copy, APIRoute) or differs:
        raise RuntimeError(f"{route.path}: its copy on the app differs in {', '.join(differs)}")


def _settings_of(route_class: type[APIRoute]) -> set[str]:
    """The named parameters of the route class's __init__ and of every APIRoute it extends."""
    names: set[str] = set()
    for cls in route_class.__mro__:
        if isinstance(cls, type) and issubclass(cls, APIRoute) and "__init__" in vars(cls):
            names.update(
                name
                for name, parameter in inspect.signature(cls.__init__).parameters.items()
                if name != "self"
                and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
            )
    return names


def _effective(value: Any) -> Any:
    """A setting as it applies: a default left unset (FastAPI's placeholder) counts as its value."""
    return value.value if isinstance(value, DefaultPlaceholder) else value
