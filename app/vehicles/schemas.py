"""Vehicles: what a user owns or drives, optionally grouped in a garage."""

import re
from collections.abc import Mapping
from datetime import date
from functools import lru_cache
from typing import Annotated, Any, Self
from uuid import UUID
from zoneinfo import available_timezones

from pydantic import AfterValidator, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from app.web.models import AuditedOut, PatchModel, RequestModel, ShortText

FIRST_YEAR = 1886  # the Benz Patent-Motorwagen
DEFAULT_TIMEZONE = "America/New_York"
_VIN = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")

EXAMPLE: dict[str, Any] = {
    "id": "9b7e4c1a-5d2f-4e8b-a1c3-7f6e5d4c3b2a",
    "garage_id": "3d6f0a8e-2c1b-4f7a-9e5d-8b2a1c0d9e7f",
    "year": 2019,
    "make": "Honda",
    "model": "CB500X",
    "trim": "ABS",
    "color": "Red",
    "vin": "MLHPC4614K5100123",
    "license_plate": "7ABC123",
    "nickname": "Red bike",
    "timezone": "America/Los_Angeles",
    "current_mileage": 12480,
    "created_at": "2026-03-01T12:00:00Z",
    "updated_at": "2026-03-01T12:00:00Z",
    "created_by": "6f1c2a9e-0b7e-4a57-9d3c-3f1f0f6b2c11",
    "updated_by": "6f1c2a9e-0b7e-4a57-9d3c-3f1f0f6b2c11",
}


def _year(value: int) -> int:
    # The upper bound moves with time, so it cannot be a static `le=`.
    last = date.today().year + 1
    if not FIRST_YEAR <= value <= last:
        raise ValueError(f"year must be between {FIRST_YEAR} and {last}")
    return value


def _vin(value: str) -> str:
    vin = value.upper()
    if not _VIN.match(vin):
        raise ValueError("a VIN is 17 letters and digits, without I, O or Q")
    return vin


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _timezone(value: str) -> str:
    if value not in _zones():
        raise ValueError("not an IANA time zone (e.g. 'Europe/Berlin')")
    return value


Year = Annotated[
    int,
    Field(
        strict=True,
        ge=FIRST_YEAR,
        description=f"Model year, {FIRST_YEAR} to next year.",
        examples=[2019],
    ),
    AfterValidator(_year),
]
Vin = Annotated[
    str,
    Field(
        min_length=17,
        max_length=17,
        description="17 characters, no I, O or Q; any case in, upper case out. "
        "Unique among your live vehicles.",
        examples=["MLHPC4614K5100123"],
    ),
    AfterValidator(_vin),
]
Plate = Annotated[
    str,
    Field(
        min_length=1,
        max_length=20,
        description="Unique (ignoring case) among your live vehicles.",
        examples=["7ABC123"],
    ),
]
Color = Annotated[str, Field(min_length=1, max_length=50, examples=["Red"])]
TimeZone = Annotated[
    str,
    Field(
        max_length=64,
        description="IANA time zone; decides what 'today' means for this vehicle's timeline "
        "and reminders.",
        examples=["America/Los_Angeles"],
    ),
    AfterValidator(_timezone),
]


# A vehicle must be recognisable in a list: a body without any of these is a 422. Not a database
# constraint: vehicles stored before this rule, and direct SQL, may still lack all of them.
IDENTITY_FIELDS = ("make", "model", "nickname", "vin", "license_plate")
IDENTITY_ERROR = "missing_identity"
IDENTITY_MESSAGE = "give at least one of make, model, nickname, vin, license_plate"


def unidentified(values: Mapping[str, Any]) -> bool:
    return all(values.get(name) is None for name in IDENTITY_FIELDS)


class VehicleCreate(RequestModel):
    """At least one of `make`, `model`, `nickname`, `vin`, `license_plate` (else 422
    `validation_failed`, error type `missing_identity`). `current_mileage` is not accepted here:
    it follows the timeline's odometer readings."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "garage_id": EXAMPLE["garage_id"],
                    "year": 2019,
                    "make": "Honda",
                    "model": "CB500X",
                    "vin": "mlhpc4614k5100123",
                    "license_plate": "7ABC123",
                    "nickname": "Red bike",
                    "timezone": "America/Los_Angeles",
                }
            ]
        }
    )

    garage_id: UUID | None = Field(default=None, description="One of your garages, or none.")
    year: Year | None = None
    make: ShortText | None = Field(default=None, examples=["Honda"])
    model: ShortText | None = Field(default=None, examples=["CB500X"])
    trim: ShortText | None = Field(default=None, examples=["ABS"])
    color: Color | None = None
    vin: Vin | None = None
    license_plate: Plate | None = None
    nickname: ShortText | None = Field(default=None, examples=["Red bike"])
    timezone: TimeZone = DEFAULT_TIMEZONE

    @model_validator(mode="after")
    def _identified(self) -> Self:
        if unidentified(self.model_dump(include=set(IDENTITY_FIELDS))):
            raise PydanticCustomError(IDENTITY_ERROR, IDENTITY_MESSAGE)
        return self


class VehicleUpdate(PatchModel):
    """Only the fields you send change; `null` clears a field (except `timezone`), but not the
    last one of `make`, `model`, `nickname`, `vin`, `license_plate` (422 `missing_identity`)."""

    not_null = ("timezone", "current_mileage")

    garage_id: UUID | None = None
    year: Year | None = None
    make: ShortText | None = None
    model: ShortText | None = None
    trim: ShortText | None = None
    color: Color | None = None
    vin: Vin | None = None
    license_plate: Plate | None = None
    nickname: ShortText | None = Field(default=None, examples=["Commuter"])
    timezone: TimeZone | None = None
    current_mileage: int | None = Field(
        default=None,
        strict=True,
        ge=0,
        le=2_147_483_647,
        description="May only be raised (e.g. to match the dashboard): a value below a reading "
        "on the timeline is a 409 `odometer_rollback`. Normally it follows the timeline's "
        "odometer readings; raising it records one.",
    )


class Vehicle(AuditedOut):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE]})

    garage_id: UUID | None
    year: int | None
    make: str | None
    model: str | None
    trim: str | None
    color: str | None
    vin: str | None
    license_plate: str | None
    nickname: str | None
    timezone: str
    current_mileage: int | None = Field(
        description="The highest odometer reading on the timeline (read-only except upwards)."
    )
