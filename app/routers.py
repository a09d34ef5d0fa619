"""Every domain's router, in the order the OpenAPI document lists them."""

from fastapi import APIRouter

from app.garages.router import router as garages
from app.me.router import router as me

ROUTERS: list[APIRouter] = [me, garages]
