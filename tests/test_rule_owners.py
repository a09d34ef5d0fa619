"""One owner per rule: each rule below is enforced by the database, so direct SQL as
`authenticated` is refused, and the API answers it with one code on every route that meets it.
(Payload shapes and safe links have generated tests of their own: tests/timeline/
test_payload_agreement.py, tests/test_safe_url.py.)"""

import datetime as dt
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from tests.helpers import User, as_user, auth, create_user
from tests.timeline.support import append, make_vehicle

INSERT = """insert into public.vehicle_events (vehicle_id, date, type, miles, payload)
            values ($1, $2, $3, $4, $5)"""


async def sql_error(
    db: asyncpg.Pool, user: User, sql: str, *args: Any
) -> asyncpg.PostgresError | None:
    """Run `sql` as the user, as the API would (rolled back): its error, or None."""
    async with as_user(db, user) as conn:
        try:
            await conn.execute(sql, *args)
        except asyncpg.PostgresError as exc:
            return exc
    return None


# The odometer: 409 odometer_rollback from the timeline and from a vehicle's current_mileage ----


async def test_the_odometer_rule_is_the_databases_and_answers_409_everywhere(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    user = await create_user(db)
    vid = await make_vehicle(db, user)
    today = await db.fetchval("select (now() at time zone 'America/New_York')::date")
    first = await append(client, user, vid, miles=1000, date=today - dt.timedelta(days=2))
    assert first.status_code == 201, first.text
    named = f"conflicts with the reading of 1000 miles on {today - dt.timedelta(days=2)}"

    # Enforced by the database, whoever writes.
    lower = await sql_error(db, user, INSERT, vid, today, "odometer", 900, {})
    assert lower is not None and lower.sqlstate == "MM001" and lower.detail == named
    update = "update public.vehicles set current_mileage = 900 where id = $1"
    lowered = await sql_error(db, user, update, vid)
    assert lowered is not None and lowered.sqlstate == "MM001" and lowered.detail == named

    # One answer on both routes.
    by_timeline = await append(client, user, vid, miles=900, date=today)
    by_patch = await client.patch(
        f"/v1/vehicles/{vid}", json={"current_mileage": 900}, headers=auth(user)
    )
    for resp in (by_timeline, by_patch):
        assert resp.status_code == 409, resp.text
        assert resp.json()["code"] == "odometer_rollback"
        assert resp.json()["detail"] == named

    # The allow twins: a higher value is taken by both, and by SQL.
    assert await sql_error(db, user, INSERT, vid, today, "odometer", 1100, {}) is None
    assert await sql_error(db, user, "update public.vehicles set current_mileage = 1100") is None
    raised = await client.patch(
        f"/v1/vehicles/{vid}", json={"current_mileage": 1100}, headers=auth(user)
    )
    assert raised.status_code == 200 and raised.json()["current_mileage"] == 1100
    assert (await append(client, user, vid, miles=1200, date=today)).status_code == 201


# The date window: 1900-01-01 .. tomorrow in the vehicle's timezone -----------------------------


@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Pacific/Pago_Pago", None])
async def test_the_date_window_is_the_databases_and_the_api_agrees(
    client: httpx.AsyncClient, db: asyncpg.Pool, zone: str | None
) -> None:
    user = await create_user(db)
    vid = await make_vehicle(db, user, timezone=zone) if zone else None
    today: dt.date = await db.fetchval("select (now() at time zone $1)::date", zone or "UTC")
    type_, miles, payload = ("odometer", 1, {}) if vid else ("document", None, {"kind": "other"})
    dates = [
        dt.date(1899, 12, 31),
        dt.date(1900, 1, 1),
        today,
        today + dt.timedelta(days=1),
        today + dt.timedelta(days=2),
        dt.date(today.year + 1, 12, 31),
        dt.date(today.year + 5, 6, 1),
    ]
    for day in dates:
        refused = await sql_error(db, user, INSERT, vid, day, type_, miles, payload)
        resp = await append(client, user, vid, type_, miles=miles, date=day, payload=payload)
        assert (resp.status_code == 201) == (refused is None), (day, resp.text, refused)
        if refused is not None:
            assert resp.status_code == 422, resp.text
            assert resp.json()["code"] == "validation_failed"
            [error] = resp.json()["errors"]
            assert error["loc"][-1] == "date" and error["type"] == "date_out_of_range", error
    accepted = [d for d in dates if d <= today + dt.timedelta(days=1) and d.year >= 1900]
    assert len(accepted) == 3  # the allow twins


# A live vehicle of yours: 404 on the timeline, as for every id in a path ---------------------


async def test_a_deleted_or_foreign_vehicle_is_refused_by_the_database(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    user, stranger = await create_user(db), await create_user(db)
    live, gone, theirs = (
        await make_vehicle(db, user),
        await make_vehicle(db, user),
        await make_vehicle(db, stranger),
    )
    await db.execute("update public.vehicles set deleted_at = now() where id = $1", gone)
    for vid in (gone, theirs, uuid.uuid4()):
        refused = await sql_error(db, user, INSERT, vid, dt.date(2020, 1, 1), "odometer", 1, {})
        assert refused is not None and refused.sqlstate in ("23503", "42501"), refused
        resp = await append(client, user, vid, miles=1, date=dt.date(2020, 1, 1))
        assert resp.status_code == 404 and resp.json()["code"] == "not_found", resp.text
        # Also without a date: the default date (the vehicle's today) does not tell either.
        resp = await append(client, user, vid, miles=1)
        assert resp.status_code == 404 and resp.json()["code"] == "not_found", resp.text
    assert await sql_error(db, user, INSERT, live, dt.date(2020, 1, 1), "odometer", 1, {}) is None
    assert (await append(client, user, live, miles=1)).status_code == 201


# Which events may have no vehicle: documents and reminders only ------------------------------


@pytest.mark.parametrize(
    ("type_", "miles", "payload"),
    [
        ("fuel", 10, {"volume": 1}),
        ("maintenance", None, {"service": "wash"}),
        ("odometer", 10, {}),
        ("inspection", None, {"kind": "safety", "result": "pass"}),
    ],
)
async def test_only_documents_and_reminders_may_have_no_vehicle(
    client: httpx.AsyncClient,
    db: asyncpg.Pool,
    type_: str,
    miles: int | None,
    payload: dict[str, Any],
) -> None:
    user = await create_user(db)
    refused = await sql_error(db, user, INSERT, None, dt.date(2020, 1, 1), type_, miles, payload)
    assert refused is not None and refused.sqlstate == "MM002", refused
    assert refused.column_name == "vehicle_id"
    resp = await append(client, user, None, type_, miles=miles, payload=payload)
    assert resp.status_code == 422 and resp.json()["errors"][0]["loc"][-1] == "vehicle_id"
    # The allow twin.
    document = (None, dt.date(2020, 1, 1), "document", None, {"kind": "other"})
    assert await sql_error(db, user, INSERT, *document) is None
    assert (await append(client, user, None, "document", payload={"kind": "other"})).is_success
