"""Every domain's router, and the sections of the OpenAPI document.

A request is matched against the routes one after another, in the order they were included, at
about 1.5 µs of CPU per route passed (bench/README.md): the hot paths, the timeline and the
vehicles, come first. The document lists its sections in `OPENAPI_TAGS` order, whatever this one.
"""

from typing import Any

from fastapi import APIRouter

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
