"""The caller's profile and tenant."""

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, Field

from app.web.models import RequestModel

Name = Annotated[str, Field(min_length=1, max_length=200)]


class TenantOut(BaseModel):
    id: UUID
    name: str


class TenantFull(TenantOut):
    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "id": "0e8f4a52-6b0c-4c59-8d0e-5d2b1c6a7f10",
                    "name": "Rivera family",
                    "created_at": "2025-03-01T12:00:00Z",
                    "updated_at": "2025-03-04T09:30:00Z",
                }
            ]
        }
    }

    created_at: datetime
    updated_at: datetime


class MeOut(BaseModel):
    id: UUID
    email: str
    name: str | None
    created_at: datetime
    tenant: TenantOut

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "id": "6f1c2a9e-0b7e-4a57-9d3c-3f1f0f6b2c11",
                    "email": "sam@example.com",
                    "name": "Sam Rivera",
                    "created_at": "2025-03-01T12:00:00Z",
                    "tenant": {
                        "id": "0e8f4a52-6b0c-4c59-8d0e-5d2b1c6a7f10",
                        "name": "Rivera family",
                    },
                }
            ]
        }
    }


class MePatch(RequestModel):
    """Only `name`; `null` clears it."""

    name: Name | None = Field(default=None, examples=["Sam Rivera"])


class TenantPatch(RequestModel):
    name: Name = Field(examples=["Rivera family"])
