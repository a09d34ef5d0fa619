"""Idempotent replays (app/idempotency.py) carry only the headers the API itself sets on a create,
whatever the stored row says: a row can be written by other means than the API."""

import uuid

import asyncpg
import httpx
import pytest

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
