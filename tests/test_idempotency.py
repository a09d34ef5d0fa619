"""Idempotent replays (app/web/idempotency.py) carry only the headers the API itself sets on a
create, whatever the stored row says: a row can be written by other means than the API. A request
is the same request when its body as sent is (its JSON, not the model parsed from it)."""

import json
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from app.garages.schemas import GarageCreate
from app.web.idempotency import FINGERPRINT_VERSION, legacy_request_hash, request_hash
from tests.helpers import User, auth, create_user


async def _create(client: httpx.AsyncClient, user: User, key: str) -> httpx.Response:
    headers = auth(user) | {"Idempotency-Key": key}
    return await client.post("/v1/garages", json={"name": "Shop"}, headers=headers)


async def _plant(db: asyncpg.Pool, user: User, key: str, headers: dict[str, object]) -> None:
    """Overwrite the stored headers as the table's owner, as direct SQL could."""
    done = await db.execute(
        "update public.idempotency_keys set response_headers = $3::jsonb"
        " where user_id = $1 and key = $2",
        user.id,
        key,
        headers,  # the pool's codec writes it as a JSON object
    )
    assert done == "UPDATE 1"
    stored = await db.fetchval(
        "select response_headers from public.idempotency_keys where user_id = $1 and key = $2",
        user.id,
        key,
    )
    assert stored == headers


async def test_a_replay_has_the_created_location_and_etag(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    user = await create_user(db)
    key = str(uuid.uuid4())
    first = await _create(client, user, key)
    assert first.status_code == 201, first.text
    again = await _create(client, user, key)
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers["ETag"] == first.headers["ETag"]
    assert again.headers["Content-Type"] == "application/json"
    assert again.json() == first.json()
    stored = await db.fetchval(
        "select response_headers from public.idempotency_keys where user_id = $1 and key = $2",
        user.id,
        key,
    )
    assert {name.lower() for name in stored} == {"location", "etag"}


async def test_planted_headers_are_not_replayed(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    user = await create_user(db)
    key = str(uuid.uuid4())
    first = await _create(client, user, key)
    location, etag = first.headers["Location"], first.headers["ETag"]
    await _plant(
        db,
        user,
        key,
        {
            "location": location,
            "ETAG": etag,
            "Set-Cookie": "session=planted; Path=/",
            "X-Bogus": "1",
            "Access-Control-Allow-Origin": "https://evil.example",
            "Content-Type": "text/html",
            "Cache-Control": "public, max-age=31536000",
        },
    )
    replay = await _create(client, user, key)
    assert replay.status_code == 201, replay.text
    for name in ("set-cookie", "x-bogus", "access-control-allow-origin", "cache-control"):
        assert name not in replay.headers, name
    assert replay.headers["Content-Type"] == "application/json"
    # The allowed ones, whatever case they were stored in.
    assert replay.headers["Location"] == location
    assert replay.headers["ETag"] == etag


@pytest.mark.parametrize(
    "headers",
    [
        {"Location": "https://evil.example/v1/garages/x"},
        {"Location": "//evil.example/x"},
        {"Location": "/\\evil.example/x"},
        {"Location": "/v1/garages/x\r\nSet-Cookie: a=b"},
        {"Location": 42, "ETag": ["a"]},
        {"ETag": 'W/"a"\r\nSet-Cookie: a=b'},
        {"ETag": "no-quotes"},
    ],
)
async def test_planted_values_of_allowed_headers_are_dropped(
    client: httpx.AsyncClient, db: asyncpg.Pool, headers: dict[str, object]
) -> None:
    user = await create_user(db)
    key = str(uuid.uuid4())
    await _create(client, user, key)
    await _plant(db, user, key, headers)
    replay = await _create(client, user, key)
    assert replay.status_code == 201, replay.text
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert "location" not in replay.headers and "etag" not in replay.headers
    assert "set-cookie" not in replay.headers


# The fingerprint: the body as sent ------------------------------------------------------------


async def _post_raw(
    client: httpx.AsyncClient, user: User, key: str, path: str, raw: str
) -> httpx.Response:
    headers = auth(user) | {"Idempotency-Key": key, "Content-Type": "application/json"}
    return await client.post(path, content=raw.encode(), headers=headers)


async def _stored_hash(db: asyncpg.Pool, user: User, key: str) -> str:
    stored: str = await db.fetchval(
        "select request_hash from public.idempotency_keys where user_id = $1 and key = $2",
        user.id,
        key,
    )
    return stored


@pytest.mark.parametrize("path", ["/v1/garages", "/v1/timeline"])
async def test_key_order_and_white_space_do_not_make_another_request(
    client: httpx.AsyncClient, db: asyncpg.Pool, path: str
) -> None:
    user = await create_user(db)
    if path == "/v1/garages":
        first_raw = '{"name": "Shop", "description": "back door"}'
        again_raw = '{\n  "description" : "back door",\n\t"name":"Shop"\n}'
    else:
        first_raw = '{"type": "document", "payload": {"kind": "other", "title": "A"}}'
        again_raw = ' { "payload" : { "title" : "A" , "kind" : "other" } , "type" : "document" } '
    key = str(uuid.uuid4())
    first = await _post_raw(client, user, key, path, first_raw)
    assert first.status_code == 201, first.text
    again = await _post_raw(client, user, key, path, again_raw)
    assert again.status_code == 201, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    # What is stored is the fingerprint of the body as sent, whatever the model makes of it.
    sent = json.loads(first_raw)
    assert await _stored_hash(db, user, key) == request_hash("POST", path, sent)


@pytest.mark.parametrize(
    ("path", "omitted", "explicit"),
    [
        ("/v1/garages", {"name": "Shop"}, {"name": "Shop", "description": None}),
        (
            "/v1/timeline",
            {"type": "document", "payload": {"kind": "other"}},
            {"type": "document", "payload": {"kind": "other"}, "vehicle_id": None},
        ),
    ],
)
async def test_a_default_sent_explicitly_is_another_request(
    client: httpx.AsyncClient,
    db: asyncpg.Pool,
    path: str,
    omitted: dict[str, Any],
    explicit: dict[str, Any],
) -> None:
    """As sent: the same parsed model, but not the same body. (The other way round, a default a
    later release adds to the model changes nothing: the model is not fingerprinted.)"""
    user = await create_user(db)
    key = str(uuid.uuid4())
    headers = auth(user) | {"Idempotency-Key": key}
    first = await client.post(path, json=omitted, headers=headers)
    assert first.status_code == 201, first.text
    other = await client.post(path, json=explicit, headers=headers)
    assert other.status_code == 422, other.text
    assert other.json()["code"] == "idempotency_key_reused"


async def _plant_response(db: asyncpg.Pool, user: User, key: str, fingerprint: str) -> None:
    """A key stored earlier (by another release of the API): its row, written as the owner."""
    await db.execute(
        """insert into public.idempotency_keys (tenant_id, user_id, key, request_hash,
             status_code, response_body, response_headers, completed_at)
           values ($1, $2, $3, $4, 201, $5, $6, now())""",
        user.tenant_id,
        user.id,
        key,
        fingerprint,
        {"id": "planted", "name": "Shop"},
        {"Location": "/v1/garages/planted"},
    )


@pytest.mark.parametrize("form", ["as sent", "before: over the parsed model"])
async def test_a_key_stored_earlier_still_replays(
    client: httpx.AsyncClient, db: asyncpg.Pool, form: str
) -> None:
    """Fingerprinted as this release does, or as releases before it did (over the parsed model,
    with its defaults; such keys live 24 h after the upgrade)."""
    user = await create_user(db)
    body = {"name": "Shop"}
    if form == "as sent":
        fingerprint = request_hash("POST", "/v1/garages", body)
    else:
        fingerprint = legacy_request_hash("POST", "/v1/garages", GarageCreate.model_validate(body))
        assert not fingerprint.startswith(FINGERPRINT_VERSION)
    key = str(uuid.uuid4())
    await _plant_response(db, user, key, fingerprint)
    replay = await _create(client, user, key)
    assert replay.status_code == 201, replay.text
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == {"id": "planted", "name": "Shop"}
    # Another body under the same key is still another request.
    other = await client.post(
        "/v1/garages", json={"name": "Other"}, headers=auth(user) | {"Idempotency-Key": key}
    )
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
