"""Idempotency-Key on POST (Stripe's model), one mechanism for every create route.

The first request with a key takes a transaction-level advisory lock on (tenant, user, key), does
its work, and stores its response in the same transaction, so the row it created and the stored
response commit together or not at all. A retry while the first still runs cannot take the lock:
409. A retry after it sees the stored response: replayed. Same key, another body: 422.

"The same body" is the body as sent: its JSON, parsed and written canonically (sorted keys, no
white space, numbers as parsed), with the method and path. Not the parsed model, whose defaults
would make a retry "another body" as soon as a release adds a defaulted field.
"""

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any
from uuid import UUID

import asyncpg
from fastapi import Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from app.core.errors import ProblemError

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Any unique string (a UUID is best). A retry with the same key and body "
        "within 24 h replays the first response instead of creating a second resource.",
    ),
]


# The lock comes first, in its own statement: the read after it must see, in a fresh snapshot,
# a first request that committed while this one waited for nothing (try-lock) or just before.
# Holding the lock, it frees the key if it expired, so that the response stored after the work
# takes its place (rows live 24 h; the read ignores older ones by its filter).
LOCK = """
with claimed as (select pg_try_advisory_xact_lock(hashtextextended($1, 0)) as locked),
expired as (
  delete from public.idempotency_keys
  where user_id = $2 and key = $3 and created_at <= now() - interval '24 hours'
    and (select locked from claimed)
)
select locked from claimed
"""
# The live response stored under the key, if any. (The timeline's append reads it in the same
# statement as its insert: app/timeline/queries.py APPEND_ONCE.)
STORED_RESPONSE = """select request_hash, status_code, response_body, response_headers
from public.idempotency_keys
where user_id = {user_id} and key = {key} and created_at > now() - interval '24 hours'"""
READ = STORED_RESPONSE.format(user_id="$1", key="$2")
STORE = """
insert into public.idempotency_keys
  (user_id, key, request_hash, status_code, response_body, response_headers, completed_at)
values ($1, $2, $3, $4, $5::jsonb, $6::jsonb, now())
"""


# The only headers a replay carries besides its own (Content-Type, Content-Length, Idempotent-
# Replayed): those a create sets (app/web/crud.py `created`). Filtered when stored and again when
# replayed, since a row can also be written by other means (direct SQL, PostgREST on Supabase) and
# must not plant Set-Cookie, CORS or caching headers, or a Location off this origin.
REPLAYED_HEADERS = {"location": "Location", "etag": "ETag"}
_SAFE_VALUE = {
    # A path of this API, as `created` writes it: never another origin ("//host", "/\host").
    "location": re.compile(r"/v1/[A-Za-z0-9._~/-]{1,2000}"),
    "etag": re.compile(r'(W/)?"[\x21\x23-\x7e]{0,200}"'),
}


def replayable_headers(headers: Mapping[str, Any]) -> dict[str, str]:
    """The allowlisted headers among `headers`, under their canonical names, with sane values."""
    kept: dict[str, str] = {}
    for name, value in headers.items():
        lower = str(name).lower()
        safe = _SAFE_VALUE.get(lower)
        if safe is not None and isinstance(value, str) and safe.fullmatch(value):
            kept[REPLAYED_HEADERS[lower]] = value
    return kept


# Fingerprints of requests as sent carry this mark; a stored fingerprint without it was taken
# the earlier way (see legacy_request_hash).
FINGERPRINT_VERSION = "sent1:"


def canonical_json(value: Any) -> str:
    """One text per JSON value: keys sorted, no white space, numbers as Python parsed them,
    anything beyond ASCII escaped (so even a lone surrogate, which JSON may carry, encodes)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def request_hash(method: str, path: str, sent: Any) -> str:
    """The fingerprint of a request: method, path and the JSON body as sent (parsed)."""
    text = f"{method} {path}\n{canonical_json(sent)}"
    return FINGERPRINT_VERSION + hashlib.sha256(text.encode()).hexdigest()


async def request_fingerprint(request: Request) -> str:
    """request_hash of this request. The body was parsed already (FastAPI caches its JSON)."""
    sent = await request.json() if await request.body() else None
    return request_hash(request.method, request.url.path, sent)


def legacy_request_hash(method: str, path: str, model: BaseModel) -> str:
    """How keys stored before fingerprints were taken as sent were hashed: over the parsed model
    (with its defaults). Such keys live 24 h after an upgrade: a retry of one still replays
    unless the model changed meanwhile. Remove one release after it shipped."""
    canonical = json.dumps(
        jsonable_encoder(model.model_dump(mode="json")), sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


def in_flight() -> ProblemError:
    return ProblemError(
        409,
        "idempotency_in_flight",
        "Request in progress",
        "A request with this Idempotency-Key is still being processed; retry shortly.",
        headers={"Retry-After": "1"},
    )


async def claim(conn: asyncpg.Connection, *, key: str, user_id: UUID) -> None:
    """Take the key's lock for this transaction (freeing it if it expired); 409 while another
    request holds it."""
    # User ids are unique across tenants, so (user, key) is already tenant-scoped.
    locked = await conn.fetchval(LOCK, f"idempotency:{user_id}:{key}", user_id, key)
    if not locked:
        raise in_flight()


def replay(
    stored: asyncpg.Record | Mapping[str, Any], *, fingerprint: str, legacy: Callable[[], str]
) -> JSONResponse:
    """The stored response again, if it answered the same request; else 422. `legacy`: this
    request's fingerprint as keys stored before fingerprints were taken as sent have it."""
    expected = stored["request_hash"]
    same = (
        expected == fingerprint
        if str(expected).startswith(FINGERPRINT_VERSION)
        else expected == legacy()
    )
    if not same:
        raise ProblemError(
            422,
            "idempotency_key_reused",
            "Idempotency-Key reused",
            "This Idempotency-Key was used with a different request; use a new key.",
        )
    headers_stored = stored["response_headers"]
    headers = replayable_headers(headers_stored if isinstance(headers_stored, dict) else {})
    headers["Idempotent-Replayed"] = "true"
    return JSONResponse(stored["response_body"], status_code=stored["status_code"], headers=headers)


async def replay_or_claim(
    conn: asyncpg.Connection,
    *,
    key: str | None,
    user_id: UUID,
    fingerprint: str,
    legacy: Callable[[], str],
) -> JSONResponse | None:
    """The stored response to replay, or None when this request is the first and should run."""
    if key is None:
        return None
    await claim(conn, key=key, user_id=user_id)
    row = await conn.fetchrow(READ, user_id, key)
    if row is None:
        return None
    return replay(row, fingerprint=fingerprint, legacy=legacy)


async def remember(
    conn: asyncpg.Connection,
    *,
    key: str | None,
    user_id: UUID,
    fingerprint: str,
    response: JSONResponse,
) -> JSONResponse:
    """Store the response under the key, in the request's transaction; returns it unchanged."""
    if key is None:
        return response
    stored_headers = replayable_headers(response.headers)
    await conn.execute(
        STORE,
        user_id,
        key,
        fingerprint,
        response.status_code,
        json.loads(bytes(response.body)),
        stored_headers,
    )
    return response
