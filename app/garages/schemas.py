"""Garages: named groups of vehicles (\"Personal\", \"Fleet\", \"Family\")."""

from pydantic import ConfigDict, Field, JsonValue

from app.web.models import AuditedOut, LongText, Name, PatchModel, RequestModel

EXAMPLE: dict[str, JsonValue] = {
    "id": "3d6f0a8e-2c1b-4f7a-9e5d-8b2a1c0d9e7f",
    "name": "Family",
    "description": "Cars kept at home",
    "created_at": "2026-03-01T12:00:00Z",
    "updated_at": "2026-03-01T12:00:00Z",
    "created_by": "6f1c2a9e-0b7e-4a57-9d3c-3f1f0f6b2c11",
    "updated_by": "6f1c2a9e-0b7e-4a57-9d3c-3f1f0f6b2c11",
}


class GarageCreate(RequestModel):
    name: Name = Field(examples=["Family"])
    description: LongText | None = Field(default=None, examples=["Cars kept at home"])


class GarageUpdate(PatchModel):
    """Only the fields you send change; `description: null` clears it."""

    not_null = ("name",)

    name: Name | None = Field(default=None, examples=["Weekend cars"])
    description: LongText | None = None


class Garage(AuditedOut):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE]})

    name: str
    description: str | None
