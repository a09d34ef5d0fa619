"""Reminders: something to do by a date and/or a mileage, for a vehicle, a garage or the tenant."""

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Self
from uuid import UUID

from pydantic import ConfigDict, Field, model_validator

from app.reminders.due import DueState
from app.web.models import AuditedOut, IsoDate, LongText, Name, PatchModel, RequestModel


class Status(StrEnum):
    active = "active"
    completed = "completed"
    dismissed = "dismissed"


EXAMPLE: dict[str, Any] = {
    "id": "5a1d9c3e-7b2f-4c6a-8e1d-2f3a4b5c6d7e",
    "vehicle_id": "9b7e4c1a-5d2f-4e8b-a1c3-7f6e5d4c3b2a",
    "garage_id": None,
    "title": "Oil change",
    "description": "10W-40, new filter",
    "due_date": "2026-06-01",
    "due_mileage": 16000,
    "status": "active",
    "soon_days": 30,
    "soon_miles": 500,
    "completed_at": None,
    "due_state": "due_soon",
    "created_at": "2026-03-01T12:00:00Z",
    "updated_at": "2026-03-01T12:00:00Z",
    "created_by": "6f1c2a9e-0b7e-4a57-9d3c-3f1f0f6b2c11",
    "updated_by": "6f1c2a9e-0b7e-4a57-9d3c-3f1f0f6b2c11",
}

# strict: a JSON integer, as documented; not `true` (lax mode's 1) nor "5".
Mileage = Annotated[int, Field(strict=True, ge=0, le=2_147_483_647, examples=[16000])]
SoonDays = Annotated[
    int,
    Field(
        strict=True,
        ge=1,
        le=3650,
        description="`due_state` is `due_soon` this many days before `due_date` (default 30).",
    ),
]
SoonMiles = Annotated[
    int,
    Field(
        strict=True,
        ge=1,
        le=1_000_000,
        description="`due_state` is `due_soon` this many miles before `due_mileage` (default 500).",
    ),
]


class ReminderCreate(RequestModel):
    """At least one of `due_date` and `due_mileage`; both is fine (whichever comes first)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "vehicle_id": EXAMPLE["vehicle_id"],
                    "title": "Oil change",
                    "due_date": "2026-06-01",
                    "due_mileage": 16000,
                    "soon_miles": 1000,
                }
            ]
        }
    )

    vehicle_id: UUID | None = Field(default=None, description="One of your vehicles.")
    garage_id: UUID | None = Field(
        default=None, description="One of your garages (for a reminder about a whole garage)."
    )
    title: Name = Field(examples=["Oil change"])
    description: LongText | None = Field(default=None, examples=["10W-40, new filter"])
    due_date: IsoDate | None = Field(default=None, examples=["2026-06-01"])
    due_mileage: Mileage | None = None
    soon_days: SoonDays = 30
    soon_miles: SoonMiles = 500

    @model_validator(mode="after")
    def _needs_a_due_point(self) -> Self:
        if self.due_date is None and self.due_mileage is None:
            raise ValueError("give due_date, due_mileage, or both")
        return self


class ReminderUpdate(PatchModel):
    """Only the fields you send change. `status`: `active` → `completed` or `dismissed`;
    a dismissed reminder may be made `active` again; a completed one is final."""

    not_null = ("title", "status", "soon_days", "soon_miles")

    vehicle_id: UUID | None = None
    garage_id: UUID | None = None
    title: Name | None = Field(default=None, examples=["Oil and filter change"])
    description: LongText | None = None
    due_date: IsoDate | None = None
    due_mileage: Mileage | None = None
    status: Status | None = Field(default=None, examples=["completed"])
    soon_days: SoonDays | None = None
    soon_miles: SoonMiles | None = None


class Reminder(AuditedOut):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE]})

    vehicle_id: UUID | None
    garage_id: UUID | None
    title: str
    description: str | None
    due_date: date | None
    due_mileage: int | None
    status: Status
    soon_days: int
    soon_miles: int
    completed_at: datetime | None
    due_state: DueState = Field(
        description="Computed on every read: `overdue`, `due_soon` or `upcoming` by date (in the "
        "vehicle's time zone; UTC without a vehicle) and by mileage (against the vehicle's "
        "`current_mileage`), the more urgent of the two; or `completed` / `dismissed`."
    )
