"""The request/response model bases and the field types every domain shares."""

import functools
import re
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Self
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic_core import PydanticCustomError

from app.core.errors import MAX_JSON_DEPTH


def body_too_deep() -> PydanticCustomError:
    return PydanticCustomError(
        "body_too_deep",
        "JSON nested deeper than {max_depth} levels",
        {"max_depth": MAX_JSON_DEPTH},
    )


def _check_body(value: Any) -> None:
    """NUL anywhere, nesting over MAX_JSON_DEPTH: refused. Iterative: the data is the client's,
    and a recursive walk of a body nested a few hundred levels deep overflows the stack."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise ValueError("text must not contain NUL characters")
        elif isinstance(item, dict | list | tuple):
            if depth > MAX_JSON_DEPTH:
                raise body_too_deep()
            children = item.items() if isinstance(item, dict) else enumerate(item)
            for key, child in children:
                if isinstance(key, str) and "\x00" in key:
                    raise ValueError("text must not contain NUL characters")
                stack.append((child, depth + 1))


class RequestModel(BaseModel):
    """Unknown (and so server-owned) fields are a 422; strings are trimmed; NUL is refused;
    nesting is bounded.

    PostgreSQL text cannot hold NUL, so it is refused here rather than failing in the database.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _no_nul_bounded_depth(cls, data: Any) -> Any:
        _check_body(data)
        return data

    @model_validator(mode="before")
    @classmethod
    def _lengths_as_sent(cls, data: Any) -> Any:
        # Trimming must not let a string longer than the published maxLength through: the limit
        # applies to what the client sent, as the OpenAPI document says.
        if isinstance(data, dict):
            for name, limit in _max_lengths(cls).items():
                value = data.get(name)
                # Only padded strings: others get pydantic's own error, at the field.
                if isinstance(value, str) and len(value) > limit and value != value.strip():
                    raise PydanticCustomError(
                        "string_too_long",
                        "{field}: String should have at most {max_length} characters",
                        {"field": name, "max_length": limit},
                    )
        return data


@functools.cache
def _max_lengths(model: type[BaseModel]) -> dict[str, int]:
    """Field name -> the maxLength its JSON schema publishes (also inside `anyOf` for optionals)."""
    properties = model.model_json_schema().get("properties", {})
    limits: dict[str, int] = {}
    for name, field in model.model_fields.items():
        name = field.alias or name
        prop = properties.get(name, {})
        for arm in [prop, *prop.get("anyOf", [])]:
            if isinstance(arm, dict) and isinstance(arm.get("maxLength"), int):
                limits[name] = arm["maxLength"]
    return limits


ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")  # ASCII digits only, as the database reads


def _iso_date_text(value: Any) -> Any:
    # Only "YYYY-MM-DD", as documented (`format: date`): pydantic alone would also take a number
    # (0 -> 1970-01-01, a Unix time) or a timestamp, which no client means as a day.
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not ISO_DATE.fullmatch(value):
        raise ValueError("must be a date (YYYY-MM-DD)")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date_text)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
ShortText = Annotated[str, Field(min_length=1, max_length=100)]
LongText = Annotated[str, Field(max_length=2000)]


# --- Safe links: the database's private.is_safe_url (sql/300_functions.sql), to the letter -------
# An http(s) URL whose host is ASCII letters, digits, dots and hyphens, then printable ASCII
# without spaces; or a relative storage path without `..` segments. Taken as sent (not trimmed):
# the database checks what is stored. tests/test_safe_url.py proves the two agree.
_HTTP_URL = re.compile(r"[hH][tT][tT][pP][sS]?://[A-Za-z0-9.-]+(:[0-9]{1,5})?([/?#][!-~]*)?")
_STORAGE_PATH = re.compile(r"[A-Za-z0-9_.~%+=@/-]+")
_DOT_DOT = re.compile(r"(^|/)\.\.(/|\Z)")
MAX_URL_LENGTH = 2048


def is_safe_url(value: str) -> bool:
    return len(value) <= MAX_URL_LENGTH and bool(
        _HTTP_URL.fullmatch(value)
        or (
            _STORAGE_PATH.fullmatch(value)
            and not value.startswith("//")
            and not _DOT_DOT.search(value)
        )
    )


def _safe_url(value: str) -> str:
    if not is_safe_url(value):
        raise ValueError(
            "must be a relative storage path (no `..`) or an http(s) URL (printable ASCII, "
            "no spaces)"
        )
    return value


SafeUrl = Annotated[
    str,
    StringConstraints(strip_whitespace=False, min_length=1, max_length=MAX_URL_LENGTH),
    AfterValidator(_safe_url),
]
SAFE_URL_DESCRIPTION = (
    "A path in your storage bucket (e.g. `vehicle-images/abc/front.jpg`, no `..` segments) or an "
    "`http(s)://` URL, in printable ASCII without spaces (percent-encode anything else); taken "
    "as sent, not trimmed."
)


class AuditedOut(BaseModel):
    """Fields every mutable resource carries; filled by the database."""

    id: UUID
    created_at: datetime
    updated_at: datetime
    created_by: UUID | None
    updated_by: UUID | None


class PatchModel(RequestModel):
    """A PATCH body: only the fields sent change; `not_null` fields may be omitted, not nulled."""

    not_null: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _required_stay_set(self) -> Self:
        for name in self.not_null:
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)
