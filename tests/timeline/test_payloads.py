"""The API and the database agree on payloads: one table of cases drives both. Each invalid case
is a 422 from the API and an error from a direct INSERT as `authenticated`; each valid one is
accepted by both."""

import datetime as dt
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from tests.helpers import as_user, create_user
from tests.timeline.support import append, event_count, make_vehicle

A_UUID = "0b5e9c1d-3f2a-4e6b-8c7d-9a1b2c3d4e5f"

# (id, type, miles, payload)
INVALID: list[tuple[str, str, int | None, dict[str, Any]]] = [
    ("fuel-no-volume", "fuel", 10, {"total_cost": 3}),
    ("fuel-volume-zero", "fuel", 10, {"volume": 0}),
    ("fuel-volume-negative", "fuel", 10, {"volume": -1.5}),
    ("fuel-volume-string", "fuel", 10, {"volume": "10"}),
    ("fuel-volume-bool", "fuel", 10, {"volume": True}),
    ("fuel-no-miles", "fuel", None, {"volume": 5}),
    ("fuel-unit", "fuel", 10, {"volume": 5, "unit": "quart"}),
    ("fuel-currency-lower", "fuel", 10, {"volume": 5, "currency": "usd"}),
    ("fuel-currency-long", "fuel", 10, {"volume": 5, "currency": "EURO"}),
    ("fuel-total-negative", "fuel", 10, {"volume": 5, "total_cost": -1}),
    ("fuel-price-negative", "fuel", 10, {"volume": 5, "price_per_unit": -0.01}),
    ("fuel-full-tank-string", "fuel", 10, {"volume": 5, "full_tank": "yes"}),
    ("fuel-missed-number", "fuel", 10, {"volume": 5, "missed_previous": 1}),
    ("fuel-station-number", "fuel", 10, {"volume": 5, "station": 7}),
    ("fuel-station-too-long", "fuel", 10, {"volume": 5, "station": "s" * 501}),
    ("fuel-unknown-key", "fuel", 10, {"volume": 5, "octane": 95}),
    ("maintenance-no-service", "maintenance", None, {"cost": 10}),
    ("maintenance-service-blank", "maintenance", None, {"service": "   "}),
    ("maintenance-service-number", "maintenance", None, {"service": 5}),
    ("maintenance-cost-negative", "maintenance", None, {"service": "oil", "cost": -1}),
    ("maintenance-items-object", "maintenance", None, {"service": "oil", "items": {"a": 1}}),
    ("maintenance-item-no-name", "maintenance", None, {"service": "oil", "items": [{"cost": 1}]}),
    (
        "maintenance-item-unknown-key",
        "maintenance",
        None,
        {"service": "oil", "items": [{"name": "filter", "price": 1}]},
    ),
    (
        "maintenance-item-cost-negative",
        "maintenance",
        None,
        {"service": "oil", "items": [{"name": "filter", "cost": -2}]},
    ),
    ("maintenance-item-not-object", "maintenance", None, {"service": "oil", "items": ["filter"]}),
    ("odometer-no-miles", "odometer", None, {}),
    ("odometer-payload-key", "odometer", 10, {"volume": 1}),
    ("document-no-kind", "document", None, {"title": "x"}),
    ("document-kind", "document", None, {"kind": "passport"}),
    ("document-expires-invalid", "document", None, {"kind": "title", "expires_on": "2026-13-01"}),
    ("document-expires-text", "document", None, {"kind": "title", "expires_on": "tomorrow"}),
    ("document-expires-number", "document", None, {"kind": "title", "expires_on": 20260101}),
    ("document-url-javascript", "document", None, {"kind": "other", "storage_url": "javascript:x"}),
    ("document-url-dotdot", "document", None, {"kind": "other", "storage_url": "a/../../etc"}),
    ("document-url-protocol-relative", "document", None, {"kind": "other", "storage_url": "//x"}),
    ("reminder-no-action", "reminder", None, {"reminder_id": A_UUID}),
    ("reminder-no-id", "reminder", None, {"action": "completed"}),
    ("reminder-action", "reminder", None, {"reminder_id": A_UUID, "action": "done"}),
    ("reminder-id-not-uuid", "reminder", None, {"reminder_id": "42", "action": "completed"}),
    ("inspection-no-result", "inspection", None, {"kind": "safety"}),
    ("inspection-no-kind", "inspection", None, {"result": "pass"}),
    ("inspection-result", "inspection", None, {"kind": "safety", "result": "ok"}),
    ("inspection-kind-blank", "inspection", None, {"kind": "", "result": "pass"}),
    ("correction-not-uuid", "odometer", 10, {"correction_of": "the typo"}),
    ("correction-number", "maintenance", None, {"service": "oil", "correction_of": 5}),
    ("negative-miles", "odometer", -1, {}),
]

VALID: list[tuple[str, str, int | None, dict[str, Any]]] = [
    (
        "fuel-full",
        "fuel",
        10,
        {
            "volume": 11.2,
            "unit": "l",
            "total_cost": 40,
            "price_per_unit": 1.79,
            "currency": "EUR",
            "full_tank": False,
            "missed_previous": True,
            "station": "Aral",
            "fuel_type": "E10",
        },
    ),
    ("fuel-minimal", "fuel", 10, {"volume": 1}),
    (
        "maintenance-full",
        "maintenance",
        None,
        {
            "service": "oil_change",
            "items": [{"name": "oil", "cost": 30}, {"name": "labour"}],
            "cost": 0,
            "currency": "USD",
            "shop": "Joe's",
        },
    ),
    ("odometer", "odometer", 10, {}),
    (
        "document-full",
        "document",
        None,
        {
            "kind": "registration",
            "title": "Reg",
            "storage_url": "https://files.example.com/reg.pdf",
            "expires_on": "2027-02-28",
        },
    ),
    ("document-path", "document", 10, {"kind": "receipt", "storage_url": "receipts/2026/a.jpg"}),
    (
        "inspection-full",
        "inspection",
        10,
        {"kind": "emissions", "result": "fail", "inspector": "X"},
    ),
]


def _body_payload(type_: str, payload: dict[str, Any]) -> dict[str, Any] | None:
    # An odometer event may omit its (empty) payload; send it whenever a case has one.
    return payload if payload or type_ != "odometer" else None


@pytest.mark.parametrize(
    ("type_", "miles", "payload"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
async def test_invalid_payload_refused_by_api_and_sql(
    client: httpx.AsyncClient,
    db: asyncpg.Pool,
    type_: str,
    miles: int | None,
    payload: dict[str, Any],
) -> None:
    user = await create_user(db)
    vid = await make_vehicle(db, user)

    resp = await append(client, user, vid, type_, miles=miles, payload=payload)
    assert resp.status_code == 422, resp.text
    assert resp.json()["code"] == "validation_failed"
    assert resp.headers["content-type"].startswith("application/problem+json")

    async with as_user(db, user) as conn:
        with pytest.raises(asyncpg.PostgresError) as caught:
            await conn.execute(
                """insert into public.vehicle_events (vehicle_id, date, type, miles, payload)
                   values ($1, current_date, $2, $3, $4)""",
                vid,
                type_,
                miles,
                payload,
            )
    assert caught.value.sqlstate in ("MM002", "23514"), caught.value
    assert await event_count(db, vid) == 0


@pytest.mark.parametrize(
    ("type_", "miles", "payload"), [c[1:] for c in VALID], ids=[c[0] for c in VALID]
)
async def test_valid_payload_accepted_by_api_and_sql(
    client: httpx.AsyncClient,
    db: asyncpg.Pool,
    type_: str,
    miles: int | None,
    payload: dict[str, Any],
) -> None:
    user = await create_user(db)
    vid = await make_vehicle(db, user)
    resp = await append(
        client, user, vid, type_, miles=miles, payload=_body_payload(type_, payload)
    )
    assert resp.status_code == 201, resp.text
    for key, value in payload.items():
        assert resp.json()["payload"][key] == value

    async with as_user(db, user) as conn:
        eid = await conn.fetchval(
            """insert into public.vehicle_events (vehicle_id, date, type, miles, payload)
               values ($1, $2, $3, $4, $5) returning id""",
            vid,
            dt.date.today() - dt.timedelta(days=1),
            type_,
            miles,
            payload,
        )
    assert isinstance(eid, uuid.UUID)


async def test_server_owned_and_unknown_fields_are_422(
    client: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    user = await create_user(db)
    vid = await make_vehicle(db, user)
    for extra in ({"id": str(uuid.uuid4())}, {"tenant_id": str(uuid.uuid4())}, {"color": "red"}):
        resp = await append(client, user, vid, miles=5, **extra)
        assert resp.status_code == 422, extra
    no_vehicle = await append(client, user, None, "fuel", miles=5, payload={"volume": 1})
    assert no_vehicle.status_code == 422
    unknown_type = await append(client, user, vid, "wash", payload={})
    assert unknown_type.status_code == 422
    assert await event_count(db, vid) == 0

    # The OpenAPI document shows each type's schema with an example.
    spec = (await client.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    for name in ("Fuel", "Maintenance", "Odometer", "Document", "Reminder", "Inspection"):
        assert schemas[f"{name}Payload"]["additionalProperties"] is False
        assert schemas[f"{name}Payload"]["examples"]
        assert schemas[f"{name}EventCreate"]["examples"]
    body = spec["paths"]["/v1/timeline"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["discriminator"]["propertyName"] == "type"
