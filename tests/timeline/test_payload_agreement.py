"""The payload rules are written twice: as pydantic models (app/timeline/schemas.py, for OpenAPI
and for 422s that name the field) and as SQL (private.validate_event_payload, the owner, which
refuses a bad payload whoever writes). Generated payloads, valid and invalid, per event type: the
model and the SQL function accept and refuse exactly the same ones, and what the API stores for
an accepted one (the model's dump) is accepted by the SQL too.

Deterministic (derandomized, fixed examples first); MOTOMIND_PAYLOAD_EXAMPLES raises the count.
"""

import math
import os
import uuid
from typing import Any

import asyncpg
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from app.timeline.schemas import EventCreate
from tests.factories import SPACES, URLS, non_negative, numbers, padded, positive, urls

EXAMPLES = int(os.environ.get("MOTOMIND_PAYLOAD_EXAMPLES", "600"))
VALIDATE = "select private.validate_event_payload($1, $2, $3)"
# What a refusal by the database may look like: the rule's own error, or PostgreSQL refusing to
# hold the value at all (NUL in a jsonb string, before the function runs).
REFUSALS = {"MM002", "22P05"}
EVENT = TypeAdapter(EventCreate)
VEHICLE = "9b2f3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d"
A_UUID = "0b5e9c1d-3f2a-4e6b-8c7d-9a1b2c3d4e5f"

# --- Values -----------------------------------------------------------------------------------


# Whitespace of every kind the two languages might disagree on: ASCII, Unicode's White_Space,
# and Python's extra information separators (\x1c-\x1f).
def sized(length: int) -> st.SearchStrategy[str]:
    return st.sampled_from(["a", "é", "\u3000", " "]).map(lambda c: c * length)


plain_text = st.one_of(
    st.text(max_size=20),
    st.text(alphabet=st.sampled_from([*SPACES, "a"]), max_size=4),
    sized(499),
    sized(500),
    sized(501),
    st.sampled_from(["", "x", "oil_change", "a\x00b"]),
)
texts = st.one_of(plain_text, padded(plain_text))

DATE_TEXTS = [
    "2026-02-28",
    "2024-02-29",
    "2026-02-29",
    "1900-02-29",
    "2000-02-29",
    "0000-01-01",
    "0001-01-01",
    "9999-12-31",
    "2026-1-01",
    "2026-01-1",
    "20260101",
    "2026-01-01T00:00:00",
    "2026-01-01Z",
    "2026-13-01",
    "2026-00-10",
    "2026-04-31",
    "\u0662\u0660\u0662\u0666-\u0660\u0661-\u0660\u0661",  # Arabic-Indic digits
    "\uff12\uff10\uff12\uff16-\uff10\uff11-\uff10\uff11",  # fullwidth digits
]
dates = st.one_of(
    st.sampled_from(DATE_TEXTS),
    padded(st.sampled_from(["2026-01-01"])),
    st.dates().map(lambda d: d.isoformat()),
    st.sampled_from([20260101, None]),
)


def _spellings(u: uuid.UUID) -> list[Any]:
    text = str(u)
    return [
        text,
        text.upper(),
        text[:9] + text[9:].upper(),
        u.hex,
        "{" + text + "}",
        "urn:uuid:" + text,
        text[:-1],
        text + "0",
        " " + text,
        text + "\n",
        text.replace("-", "", 1),
        text[:8] + "-" + text[8:].replace("-", ""),
        u.int,
    ]


uuids = st.one_of(
    st.uuids().map(str),
    st.uuids().flatmap(lambda u: st.sampled_from(_spellings(u))),
    st.sampled_from(["00000000-0000-0000-0000-000000000000", "g" * 8 + A_UUID[8:]]),
)

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=8)),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=6,
)


def one_of_values(*values: str) -> st.SearchStrategy[Any]:
    near = [v.upper() for v in values] + [f" {values[0]}", values[0] + "\n", ""]
    return st.one_of(st.sampled_from(values), st.sampled_from(near))


@st.composite
def items(draw: st.DrawFn) -> Any:
    def item() -> st.SearchStrategy[Any]:
        fields = st.fixed_dictionaries(
            {},
            optional={
                "name": st.one_of(texts, json_values),
                "cost": st.one_of(non_negative, numbers, json_values),
                "price": numbers,
            },
        )
        return st.one_of(fields, fields, fields, json_values)

    kind = draw(st.sampled_from(["few", "few", "few", "many", "huge", "not a list"]))
    if kind == "few":
        return draw(st.lists(item(), max_size=4))
    if kind == "many":
        return [{"name": "filter", "cost": 1}] * draw(st.sampled_from([99, 100, 101]))
    if kind == "huge":  # the most a payload may carry
        return [{"name": draw(sized(500)), "cost": 1.7976931348623157e308}] * 100
    return draw(json_values)


# Per type: field -> (values that should pass, values that probe the rule).
FIELDS: dict[str, dict[str, tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]]] = {
    "fuel": {
        "volume": (positive, numbers),
        "unit": (st.sampled_from(["gal", "l"]), one_of_values("gal", "l")),
        "total_cost": (non_negative, numbers),
        "price_per_unit": (non_negative, numbers),
        "currency": (st.sampled_from(["USD", "EUR"]), one_of_values("USD", "usd", "EURO")),
        "full_tank": (st.booleans(), st.sampled_from([0, 1, "true", None])),
        "missed_previous": (st.booleans(), st.sampled_from([0, 1, "false"])),
        "station": (texts, texts),
        "fuel_type": (texts, texts),
    },
    "maintenance": {
        "service": (st.sampled_from(["oil_change", " tires "]), texts),
        "items": (st.just([{"name": "oil", "cost": 30}, {"name": "labour"}]), items()),
        "cost": (non_negative, numbers),
        "currency": (st.sampled_from(["USD"]), one_of_values("USD", "Usd")),
        "shop": (texts, texts),
    },
    "odometer": {},
    "document": {
        "kind": (
            st.sampled_from(["registration", "insurance", "title", "receipt", "manual", "other"]),
            one_of_values("registration", "passport"),
        ),
        "title": (texts, texts),
        "storage_url": (st.sampled_from(URLS[:3]), urls),
        "expires_on": (st.sampled_from(["2027-02-28"]), dates),
    },
    "reminder": {
        "reminder_id": (st.just(A_UUID), uuids),
        "action": (
            st.sampled_from(["created", "completed", "dismissed", "snoozed"]),
            one_of_values("completed", "done"),
        ),
    },
    "inspection": {
        "kind": (st.sampled_from(["safety", "emissions"]), texts),
        "result": (st.sampled_from(["pass", "fail"]), one_of_values("pass", "ok")),
        "expires_on": (st.sampled_from(["2027-05-31"]), dates),
        "inspector": (texts, texts),
    },
}
for fields in FIELDS.values():
    fields["correction_of"] = (st.just(A_UUID), uuids)
REQUIRED = {
    "fuel": ("volume",),
    "maintenance": ("service",),
    "document": ("kind",),
    "reminder": ("reminder_id", "action"),
    "inspection": ("kind", "result"),
}
UNKNOWN_KEYS = st.one_of(
    st.sampled_from(["Volume", "volume ", "octane", "id", "tenant_id", "type", ""]),
    st.text(max_size=6),
)


@st.composite
def events(draw: st.DrawFn) -> tuple[str, int | None, Any]:
    """Mostly valid events with one or two fields probed, so that a disagreement on one field is
    not hidden by another field both refuse."""
    type_ = draw(st.sampled_from(sorted(FIELDS)))
    fields = FIELDS[type_]
    probed = draw(st.sets(st.sampled_from(sorted(fields)), max_size=2)) if fields else set()
    payload: dict[str, Any] = {}
    for name, (good, probe) in fields.items():
        if name in probed:
            payload[name] = draw(st.one_of(probe, probe, probe, json_values, st.none()))
        elif draw(st.integers(0, 3)) or name in REQUIRED.get(type_, ()):
            payload[name] = draw(good)
        elif draw(st.booleans()):
            payload[name] = None
    if draw(st.integers(0, 9)) == 0:
        payload[draw(UNKNOWN_KEYS)] = draw(json_values)
    if draw(st.integers(0, 19)) == 0:
        payload.pop(draw(st.sampled_from(sorted(payload) or [""])), None)
    body: Any = payload
    if draw(st.integers(0, 29)) == 0:
        body = draw(json_values)
    miles = draw(st.one_of(st.integers(0, 2**31 - 1), st.integers(0, 2**31 - 1), st.none()))
    return type_, miles, body


# --- The two judges -----------------------------------------------------------------------------


def model_verdict(type_: str, miles: int | None, payload: Any) -> dict[str, Any] | None:
    """What the API would store as the payload, or None if the model refuses the event."""
    try:
        event = EVENT.validate_python(
            {"type": type_, "vehicle_id": VEHICLE, "miles": miles, "payload": payload}
        )
    except ValidationError:
        return None
    return event.payload_json()


async def sql_accepts(db: asyncpg.Pool, type_: str, miles: int | None, payload: Any) -> bool:
    try:
        await db.execute(VALIDATE, type_, miles, payload)
    except asyncpg.PostgresError as exc:
        assert exc.sqlstate in REFUSALS, (exc.sqlstate, exc)
        return False
    return True


def _has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_non_finite(v) for v in value)
    return False


@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(event=events())
@example(event=("fuel", 10, {"volume": 1e308}))
@example(event=("fuel", 10, {"volume": 10**400}))
@example(event=("fuel", 10, {"volume": 5e-324}))
@example(event=("fuel", 10, {"volume": -0.0}))
@example(event=("fuel", 10, {"volume": 1, "total_cost": -0.0}))
@example(event=("fuel", 10, {"volume": 1, "currency": " USD"}))
@example(event=("fuel", 10, {"volume": 1, "station": "s" * 500}))
@example(event=("fuel", 10, {"volume": 1, "station": " " + "s" * 500}))
@example(event=("maintenance", None, {"service": "\t"}))
@example(event=("maintenance", None, {"service": "\u3000"}))
@example(event=("maintenance", None, {"service": "\x1c"}))
@example(event=("maintenance", None, {"service": "x", "items": [{"name": "\xa0"}]}))
@example(event=("maintenance", None, {"service": "x", "items": [{"name": "n" * 500}] * 100}))
@example(event=("document", None, {"kind": "other", "storage_url": " receipts/a.jpg"}))
@example(event=("document", None, {"kind": "other", "storage_url": "https://x.example/a\xa0b"}))
@example(event=("document", None, {"kind": "other", "storage_url": "https://x.example/a\u2003"}))
@example(event=("document", None, {"kind": "other", "expires_on": "2026-02-29"}))
@example(event=("reminder", None, {"reminder_id": A_UUID.replace("-", ""), "action": "created"}))
@example(event=("reminder", None, {"reminder_id": "{" + A_UUID + "}", "action": "created"}))
@example(event=("reminder", None, {"reminder_id": A_UUID.upper(), "action": "created"}))
@example(event=("odometer", 5, {"correction_of": "urn:uuid:" + A_UUID}))
async def test_the_model_and_the_sql_accept_the_same_payloads(
    db: asyncpg.Pool, event: tuple[str, int | None, Any]
) -> None:
    type_, miles, payload = event
    stored = model_verdict(type_, miles, payload)
    if _has_non_finite(payload):  # JSON cannot carry them: the API never receives one
        assert stored is None
        return
    assert (stored is not None) == await sql_accepts(db, type_, miles, payload), event
    if stored is not None:  # what the API writes is what the database takes
        assert await sql_accepts(db, type_, miles, stored), (event, stored)
