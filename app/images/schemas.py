"""Vehicle images: registered by URL after the client uploaded the file to storage."""

from typing import Annotated, Any
from uuid import UUID

from pydantic import ConfigDict, Field

from app.web import models as common
from app.web.models import AuditedOut, PatchModel, RequestModel

EXAMPLE: dict[str, Any] = {
    "id": "c4e2a7b1-3f5d-4a8c-9b6e-1d2f3a4b5c6d",
    "vehicle_id": "9b7e4c1a-5d2f-4e8b-a1c3-7f6e5d4c3b2a",
    "storage_url": "vehicle-images/9b7e4c1a/front.jpg",
    "thumbnail_url": "vehicle-images/9b7e4c1a/front-thumb.jpg",
    "caption": "After the wash",
    "created_at": "2026-03-01T12:00:00Z",
    "updated_at": "2026-03-01T12:00:00Z",
    "created_by": "6f1c2a9e-0b7e-4a57-9d3c-3f1f0f6b2c11",
    "updated_by": "6f1c2a9e-0b7e-4a57-9d3c-3f1f0f6b2c11",
}


# The rule of private.is_safe_url (app/web/models.py). The table's own CHECKs are a looser
# spelling of it (they also take non-ASCII and control characters after the host).
SafeUrl = Annotated[
    common.SafeUrl,
    Field(description=common.SAFE_URL_DESCRIPTION, examples=["vehicle-images/9b7e4c1a/front.jpg"]),
]
Caption = Annotated[str, Field(max_length=500, examples=["After the wash"])]


class ImageCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "vehicle_id": EXAMPLE["vehicle_id"],
                    "storage_url": EXAMPLE["storage_url"],
                    "thumbnail_url": EXAMPLE["thumbnail_url"],
                    "caption": "After the wash",
                }
            ]
        }
    )

    vehicle_id: UUID = Field(description="One of your vehicles.")
    storage_url: SafeUrl
    thumbnail_url: SafeUrl | None = None
    caption: Caption | None = None


class ImageUpdate(PatchModel):
    """Only the caption can change; `null` clears it."""

    caption: Caption | None = Field(default=None, examples=["Front left, after the body shop"])


class Image(AuditedOut):
    model_config = ConfigDict(json_schema_extra={"examples": [EXAMPLE]})

    vehicle_id: UUID | None
    storage_url: str
    thumbnail_url: str | None
    caption: str | None
