"""Timeline events: one request model per type (a discriminated union on `type`), each with its
payload model, mirroring the database's rules (sql/300_functions.sql, validate_event_payload),
which own them: these are their shapes for OpenAPI and for 422s that name the field.

Payload models refuse unknown keys and are strict about JSON types (a string is not a number, nor
a boolean). tests/timeline/test_payload_agreement.py generates payloads, valid and not, and proves
that the models and the database accept and refuse the same ones.

Longer than 300 lines because each of the six event types has its request and payload models,
and they read best side by side with the field rules they share.
"""

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StringConstraints,
)
from pydantic_core import PydanticCustomError

from app.web.models import (
    ISO_DATE,
    SAFE_URL_DESCRIPTION,
    IsoDate,
    LongText,
    RequestModel,
    SafeUrl,
)

EventType = Literal["fuel", "maintenance", "odometer", "document", "reminder", "inspection"]
MIN_DATE = date(1900, 1, 1)


def _examples(*items: Any) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(items)})


# --- Payload field types (the database's limits) --------------------------------------------------


def _double(value: float | int) -> float | int:
    # private.is_double: an integer beyond the largest double is refused, as it would be read as
    # infinity by any client (and by pydantic's own inf check, which fails on it instead).
    try:
        float(value)
    except OverflowError:
        raise ValueError("must be a number within ±1.7976931348623157e308") from None
    return value


# JSON numbers a double holds (an int is a number too; a bool is not); no NaN or Infinity.
Number = Annotated[
    Annotated[StrictFloat, Field(allow_inf_nan=False)] | StrictInt, AfterValidator(_double)
]
Positive = Annotated[Number, Field(gt=0)]
NonNegative = Annotated[Number, Field(ge=0)]
# Free text is trimmed (the house's rule); `min_length` then refuses what is only white space, as
# private.is_blank does. Limits count what was sent (RequestModel).
PayloadText = Annotated[str, Field(max_length=500)]
NonEmptyText = Annotated[str, Field(min_length=1, max_length=500)]
# Codes, links, dates and ids are taken as sent: the database checks them untrimmed.
Currency = Annotated[
    str,
    StringConstraints(strip_whitespace=False, pattern=r"^[A-Z]{3}$"),
    Field(description="ISO 4217 code, e.g. `USD`."),
]


def _iso_date_text(value: Any) -> Any:
    # Only "YYYY-MM-DD", as the database checks (private.is_iso_date); not timestamps or numbers.
    if not isinstance(value, str) or not ISO_DATE.fullmatch(value):
        raise ValueError("must be a date (YYYY-MM-DD)")
    return value


PayloadDate = Annotated[date, BeforeValidator(_iso_date_text)]
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _uuid_text(value: Any) -> Any:
    # Only the hyphenated form (any case), as the database checks (private.is_uuid); pydantic
    # alone would also take 32 bare digits, braces or a `urn:uuid:` prefix.
    if not isinstance(value, str) or not _UUID.fullmatch(value):
        raise ValueError("must be a uuid (8-4-4-4-12 hexadecimal digits)")
    return value


PayloadUuid = Annotated[UUID, BeforeValidator(_uuid_text)]
StorageUrl = Annotated[SafeUrl, Field(max_length=500, description=SAFE_URL_DESCRIPTION)]
CorrectionOf = Annotated[
    PayloadUuid | None,
    Field(
        default=None,
        description="The id of an event of the same vehicle that this event corrects "
        "(supersedes). A superseded event no longer counts for the odometer or derived values.",
    ),
]


class Payload(RequestModel):
    """Every payload: unknown keys are refused; any type may correct an earlier event."""

    correction_of: CorrectionOf = None


class FuelPayload(Payload):
    model_config = _examples(
        {
            "volume": 11.2,
            "unit": "gal",
            "total_cost": 41.33,
            "price_per_unit": 3.69,
            "currency": "USD",
            "full_tank": True,
            "station": "Shell, Main St",
            "fuel_type": "regular",
        }
    )

    volume: Positive
    unit: Literal["gal", "l"] | None = "gal"
    total_cost: NonNegative | None = None
    price_per_unit: NonNegative | None = None
    currency: Currency | None = "USD"
    full_tank: StrictBool | None = True
    missed_previous: StrictBool | None = False
    station: PayloadText | None = None
    fuel_type: PayloadText | None = None


class MaintenanceItem(RequestModel):
    name: NonEmptyText
    cost: NonNegative | None = None


class MaintenancePayload(Payload):
    model_config = _examples(
        {
            "service": "oil_change",
            "items": [{"name": "5W-30 oil, 5 qt", "cost": 32.5}, {"name": "Filter"}],
            "cost": 79.9,
            "currency": "USD",
            "shop": "Quick Lube",
        }
    )

    service: NonEmptyText = Field(examples=["oil_change"])
    items: list[MaintenanceItem] | None = Field(default=None, max_length=100)
    cost: NonNegative | None = None
    currency: Currency | None = None
    shop: PayloadText | None = None


class OdometerPayload(Payload):
    """No fields of its own: the reading is the event's `miles`."""

    model_config = _examples({})


DocumentKind = Literal["registration", "insurance", "title", "receipt", "manual", "other"]


class DocumentPayload(Payload):
    model_config = _examples(
        {
            "kind": "insurance",
            "title": "Policy 2026",
            "storage_url": "documents/insurance-2026.pdf",
            "expires_on": "2026-12-31",
        }
    )

    kind: DocumentKind
    title: PayloadText | None = None
    storage_url: StorageUrl | None = None
    expires_on: PayloadDate | None = None


class ReminderPayload(Payload):
    """`completed` and `dismissed` also change the reminder's status, in the same transaction."""

    model_config = _examples(
        {"reminder_id": "0b5e9c1d-3f2a-4e6b-8c7d-9a1b2c3d4e5f", "action": "completed"}
    )

    reminder_id: PayloadUuid
    action: Literal["created", "completed", "dismissed", "snoozed"]


class InspectionPayload(Payload):
    model_config = _examples(
        {
            "kind": "emissions",
            "result": "pass",
            "expires_on": "2027-05-31",
            "inspector": "State station 12",
        }
    )

    kind: NonEmptyText = Field(examples=["safety", "emissions"])
    result: Literal["pass", "fail"]
    expires_on: PayloadDate | None = None
    inspector: PayloadText | None = None


# --- Requests: one model per type -----------------------------------------------------------------

Miles = Annotated[
    int, Field(strict=True, ge=0, le=2_147_483_647, description="The odometer reading.")
]


def _not_before_1900(value: date) -> date:
    # The date window's lower bound, as the error of its upper one (the insert's trigger, mapped
    # by queries.refusal): one rule, one error type. The database has both bounds.
    if value < MIN_DATE:
        raise PydanticCustomError(
            "date_out_of_range",
            "date must be between 1900-01-01 and tomorrow in the vehicle's timezone",
        )
    return value


EventDate = Annotated[
    IsoDate,
    AfterValidator(_not_before_1900),
    Field(
        description="The day it happened (default: today in the vehicle's timezone). "
        "From 1900-01-01 to tomorrow in the vehicle's timezone.",
    ),
]
VehicleId = Annotated[UUID, Field(description="The vehicle (yours, not deleted).")]


class _EventCreate(RequestModel):
    vehicle_id: VehicleId | None = None
    date: EventDate | None = None
    miles: Miles | None = None
    notes: LongText | None = None
    payload: Payload

    def payload_json(self) -> dict[str, Any]:
        # Absent and null mean the same; defaults (unit, currency, ...) are stored explicitly.
        return self.payload.model_dump(mode="json", exclude_none=True)


class FuelEventCreate(_EventCreate):
    """A fill-up. `miles` is required."""

    model_config = _examples(
        {
            "type": "fuel",
            "vehicle_id": "9b2f3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d",
            "date": "2026-03-01",
            "miles": 42180,
            "payload": {"volume": 11.2, "total_cost": 41.33, "full_tank": True},
        }
    )

    type: Literal["fuel"]
    vehicle_id: VehicleId
    miles: Miles
    payload: FuelPayload


class MaintenanceEventCreate(_EventCreate):
    """A service, with what was done and what it cost."""

    model_config = _examples(
        {
            "type": "maintenance",
            "vehicle_id": "9b2f3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d",
            "miles": 42000,
            "payload": {"service": "oil_change", "cost": 79.9, "shop": "Quick Lube"},
        }
    )

    type: Literal["maintenance"]
    vehicle_id: VehicleId
    miles: Miles | None = None
    payload: MaintenancePayload


class OdometerEventCreate(_EventCreate):
    """A reading. Readings never decrease with the date (a lower one later is a 409)."""

    model_config = _examples(
        {
            "type": "odometer",
            "vehicle_id": "9b2f3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d",
            "miles": 42250,
        }
    )

    type: Literal["odometer"]
    vehicle_id: VehicleId
    miles: Miles
    payload: OdometerPayload = Field(default_factory=OdometerPayload)


class DocumentEventCreate(_EventCreate):
    """A document; without `vehicle_id` it belongs to the tenant (e.g. a fleet policy)."""

    model_config = _examples(
        {
            "type": "document",
            "vehicle_id": "9b2f3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d",
            "payload": {"kind": "registration", "expires_on": "2027-01-31"},
        }
    )

    type: Literal["document"]
    vehicle_id: VehicleId | None = None
    miles: Miles | None = None
    payload: DocumentPayload


class ReminderEventCreate(_EventCreate):
    """An action on a reminder; `vehicle_id` may be null for a garage-level reminder."""

    model_config = _examples(
        {
            "type": "reminder",
            "vehicle_id": "9b2f3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d",
            "payload": {
                "reminder_id": "0b5e9c1d-3f2a-4e6b-8c7d-9a1b2c3d4e5f",
                "action": "completed",
            },
        }
    )

    type: Literal["reminder"]
    vehicle_id: VehicleId | None = None
    miles: Miles | None = None
    payload: ReminderPayload


class InspectionEventCreate(_EventCreate):
    """A safety or emissions inspection and its result."""

    model_config = _examples(
        {
            "type": "inspection",
            "vehicle_id": "9b2f3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d",
            "payload": {"kind": "safety", "result": "pass", "expires_on": "2027-03-01"},
        }
    )

    type: Literal["inspection"]
    vehicle_id: VehicleId
    miles: Miles | None = None
    payload: InspectionPayload


EventCreate = Annotated[
    FuelEventCreate
    | MaintenanceEventCreate
    | OdometerEventCreate
    | DocumentEventCreate
    | ReminderEventCreate
    | InspectionEventCreate,
    Field(discriminator="type"),
]

# --- Responses ------------------------------------------------------------------------------------

EVENT_EXAMPLE: dict[str, Any] = {
    "id": "5c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
    "vehicle_id": "9b2f3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d",
    "date": "2026-03-01",
    "type": "fuel",
    "miles": 42180,
    "payload": {
        "volume": 11.2,
        "unit": "gal",
        "total_cost": 41.33,
        "currency": "USD",
        "full_tank": True,
        "missed_previous": False,
    },
    "notes": None,
    "created_at": "2026-03-01T18:04:05Z",
    "created_by": "6f1c2a9e-0b7e-4a57-9d3c-3f1f0f6b2c11",
    "superseded_by": None,
}


class Event(BaseModel):
    """A timeline event as stored. `payload` follows the schema of its `type` (see the request
    models); `superseded_by` is the id of the event that corrects this one, or null."""

    model_config = _examples(EVENT_EXAMPLE)

    id: UUID
    vehicle_id: UUID | None
    date: date
    type: EventType
    miles: int | None
    payload: dict[str, Any]
    notes: str | None
    created_at: datetime
    created_by: UUID | None
    superseded_by: UUID | None = None


class FeedItem(BaseModel):
    """One live vehicle's summary over its events that are not superseded."""

    vehicle_id: UUID
    last_event_date: date | None
    last_miles: int | None
    event_count: int
    fuel_count: int
    maintenance_count: int
    odometer_count: int
    document_count: int
    reminder_count: int
    inspection_count: int
    fuel_spend: float = Field(description="Sum of fuel `total_cost` (currencies as recorded).")
    maintenance_spend: float = Field(description="Sum of maintenance `cost`.")


class Feed(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "vehicle_id": "9b2e7c1a-4d3f-4e8a-b6c5-1f0e2d3c4b5a",
                            "last_event_date": "2026-11-20",
                            "last_miles": 41250,
                            "event_count": 57,
                            "fuel_count": 41,
                            "maintenance_count": 6,
                            "odometer_count": 5,
                            "document_count": 2,
                            "reminder_count": 2,
                            "inspection_count": 1,
                            "fuel_spend": 1712.4,
                            "maintenance_spend": 842.0,
                        }
                    ],
                    "refreshed_at": "2026-11-25T10:05:00Z",
                }
            ]
        }
    )

    items: list[FeedItem]
    refreshed_at: datetime | None = Field(
        description="When the feed was last refreshed; null if never. Newer events appear after "
        "the next refresh (every few minutes)."
    )
