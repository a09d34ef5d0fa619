"""The safe-link rule (image URLs, a document's `storage_url`): owned by the database
(private.is_safe_url, sql/300_functions.sql), copied once in Python (app/web/models.py) so that
a 422 names the field. Generated strings: the two agree on every one, and whatever the API takes
the image table's own CHECKs take too."""

import uuid

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from app.web.models import is_safe_url
from tests.factories import URLS, urls
from tests.helpers import as_user, auth, create_user

CHECKS = ("vehicle_images_storage_url_check", "vehicle_images_thumbnail_url_check")
ascii_or_not = st.text(
    alphabet=st.one_of(st.characters(max_codepoint=0x7F), st.characters()), max_size=16
)


async def _check_expression(db: asyncpg.Pool, name: str) -> str:
    """A CHECK of vehicle_images as an expression over `$1` (its column renamed)."""
    definition: str = await db.fetchval(
        "select pg_get_constraintdef(oid) from pg_constraint where conname = $1", name
    )
    column = name.removeprefix("vehicle_images_").removesuffix("_check")
    expression = definition.removeprefix("CHECK ")
    return f"select {expression} from (select $1::text as {column}) as row"


@settings(
    max_examples=400,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(value=st.one_of(urls, ascii_or_not, ascii_or_not.map(lambda s: "https://x.example/" + s)))
@example(value="https://x.example/" + "a" * 2030)
@example(value="https://x.example/" + "a" * 2031)
async def test_python_and_sql_agree_on_safe_urls(db: asyncpg.Pool, value: str) -> None:
    if "\x00" in value:  # PostgreSQL text cannot hold it; the API refuses NUL everywhere
        return
    python = is_safe_url(value)
    assert python == await db.fetchval("select private.is_safe_url($1)", value), value
    if python:
        for name in CHECKS:
            assert await db.fetchval(await _check_expression(db, name), value), (name, value)


@pytest.mark.parametrize("url", [u for u in URLS if u and not is_safe_url(u)][:12])
async def test_an_unsafe_link_is_refused_by_the_api_and_by_sql(
    client: httpx.AsyncClient, db: asyncpg.Pool, url: str
) -> None:
    user = await create_user(db)
    vehicle = (await client.post("/v1/vehicles", json={"nickname": "v"}, headers=auth(user))).json()
    image = await client.post(
        "/v1/images", json={"vehicle_id": vehicle["id"], "storage_url": url}, headers=auth(user)
    )
    assert image.status_code == 422, image.text
    assert image.json()["errors"][0]["loc"][-1] == "storage_url"
    document = await client.post(
        "/v1/timeline",
        json={"type": "document", "payload": {"kind": "other", "storage_url": url}},
        headers=auth(user),
    )
    assert document.status_code == 422, document.text
    assert document.json()["errors"][0]["loc"][-1] == "storage_url"
    async with as_user(db, user) as conn:
        with pytest.raises(asyncpg.PostgresError) as refused:
            async with conn.transaction():
                await conn.execute(
                    """insert into public.vehicle_events (date, type, payload)
                       values (current_date, 'document', $1)""",
                    {"kind": "other", "storage_url": url},
                )
        assert refused.value.sqlstate == "MM002"
        assert refused.value.column_name == "payload.storage_url"


async def test_a_safe_link_is_taken_by_both(client: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    user = await create_user(db)
    vehicle = (await client.post("/v1/vehicles", json={"nickname": "v"}, headers=auth(user))).json()
    url = f"https://cdn.example.com/{uuid.uuid4()}/a%20b.jpg?w=1200#top"
    image = await client.post(
        "/v1/images", json={"vehicle_id": vehicle["id"], "storage_url": url}, headers=auth(user)
    )
    assert image.status_code == 201, image.text
    document = await client.post(
        "/v1/timeline",
        json={"type": "document", "payload": {"kind": "other", "storage_url": url}},
        headers=auth(user),
    )
    assert document.status_code == 201, document.text
    assert document.json()["payload"]["storage_url"] == url
