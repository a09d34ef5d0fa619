"""Every domain's router, in the order the OpenAPI document lists them."""

from fastapi import APIRouter

from app.garages.router import router as garages
from app.images.router import router as images
from app.me.router import router as me
from app.ops.router import router as ops
from app.reminders.router import router as reminders
from app.timeline.router import router as timeline
from app.vehicles.router import router as vehicles

ROUTERS: list[APIRouter] = [
    me,
    garages,
    vehicles,
    reminders,
    images,
    timeline,
    ops,
]
