"""Keyset paging: opaque, tamper-evident cursors and the Page[T] response model.

A cursor is the sort key of the last row served, signed (HMAC-SHA256) together with the list it
belongs to, so it cannot be edited, nor replayed against another list or other filters.
"""

import base64
import hashlib
import hmac
import json
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, Field

from app.core.errors import ProblemError

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_CURSOR_LENGTH = 1024

Limit = Annotated[
    int,
    Query(
        ge=1, le=MAX_LIMIT, description=f"Page size, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})."
    ),
]
Cursor = Annotated[
    str | None,
    Query(
        max_length=MAX_CURSOR_LENGTH,
        description="The `next_cursor` of the previous page, as it was given.",
    ),
]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scope_digest(scope: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(scope, sort_keys=True, default=str).encode()).hexdigest()[:16]


def encode_cursor(key: bytes, scope: dict[str, Any], position: list[Any]) -> str:
    body = json.dumps({"s": _scope_digest(scope), "p": position}, default=str).encode()
    mac = hmac.new(key, body, hashlib.sha256).digest()[:16]
    return f"{_b64(body)}.{_b64(mac)}"


def decode_cursor(key: bytes, scope: dict[str, Any], cursor: str) -> list[Any]:
    """The position a cursor encodes; 422 `invalid_cursor` for anything this list did not issue."""
    try:
        body_text, mac_text = cursor.split(".", 1)
        body = _unb64(body_text)
        mac = _unb64(mac_text)
        expected = hmac.new(key, body, hashlib.sha256).digest()[:16]
        if not hmac.compare_digest(mac, expected):
            raise ValueError("signature")
        data = json.loads(body)
        if data["s"] != _scope_digest(scope) or not isinstance(data["p"], list):
            raise ValueError("scope")
        return list(data["p"])
    except (ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
        raise decode_error() from exc


def decode_error() -> ProblemError:
    return ProblemError(
        422,
        "invalid_cursor",
        "Invalid cursor",
        "The cursor is not one this list issued; start again without a cursor.",
    )


def page_of(
    rows: list[T], limit: int, key: bytes, scope: dict[str, Any], position_of: Any
) -> tuple[list[T], str | None]:
    """Queries fetch limit + 1 rows: the extra row only says whether there is a next page."""
    if len(rows) <= limit:
        return rows, None
    items = rows[:limit]
    return items, encode_cursor(key, scope, position_of(items[-1]))
