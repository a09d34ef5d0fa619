"""Strong ETags for single resources, and the If-Match precondition for PATCH and DELETE."""

import hashlib
from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import Header

from app.core.errors import ProblemError

IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        max_length=1024,
        description="The `ETag` of the version you read; refused (412) if it has changed since.",
    ),
]


def etag_of(resource_id: UUID, updated_at: datetime) -> str:
    digest = hashlib.sha256(f"{resource_id}:{updated_at.isoformat()}".encode()).hexdigest()[:20]
    return f'"{digest}"'


def check_if_match(if_match: str | None, current: str) -> None:
    """RFC 9110 §13.1.1 with strong comparison: `*` or a list containing the current tag."""
    if if_match is None:
        return
    tags = [t.strip() for t in if_match.split(",")]
    if "*" in tags or current in tags:
        return
    raise ProblemError(
        412,
        "precondition_failed",
        "Precondition failed",
        "The resource changed since you read it; GET it again and retry with its new ETag.",
    )
