"""The benchmarked requests, each as the HTTP request wrk sends and as the SQL transaction the API
runs for it (for pgbench). The SQL is taken from the app's own constants wherever it has one, so
the two sides run the same statements; keep `transaction` in step with the route's code.

pgbench variables per transaction come from bench.targets (one row per vehicle), looked up with
`\\gset` on about one transaction in ten (the lookup is a round trip that the API does not make).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app import idempotency
from app.db import SET_REQUEST_CONTEXT
from app.timeline import queries as timeline
from app.vehicles import queries as vehicles

# resources.get_live builds this one inline.
GET_LIVE_VEHICLE = "select * from public.vehicles where id = $1 and deleted_at is null"

APPEND_PAYLOAD = '{"service": "Oil change", "cost": 49.9, "currency": "USD"}'
APPEND_BODY = '{"vehicle_id": "%s", "type": "maintenance", "payload": ' + APPEND_PAYLOAD + "}"
# What the API stores for replays: the event as JSON (same size as a real one).
STORED_RESPONSE = (
    '{"id": "00000000-0000-4000-8000-000000000000", "vehicle_id": '
    '"00000000-0000-4000-8000-000000000000", "date": "2026-01-01", "type": "maintenance", '
    '"miles": null, "payload": ' + APPEND_PAYLOAD + ', "notes": null, "created_at": '
    '"2026-01-01T00:00:00+00:00", "created_by": "00000000-0000-4000-8000-000000000000", '
    '"superseded_by": null}'
)


def bind(sql: str, names: list[str]) -> str:
    """`$n` -> `:name` (pgbench passes each as a parameter under -M prepared)."""
    for n in range(len(names), 0, -1):
        sql = re.sub(rf"\${n}(?!\d)", f":{names[n - 1]}", sql)
    return sql.strip()


CONTEXT = bind(SET_REQUEST_CONTEXT, ["role", "claims", "statement_timeout", "lock_timeout"])
LOOKUP = r"""\set pick random(0, 9)
\if :pick = 0
\set n random(1, :targets)
select claims, user_id, vehicle_id, after_date, after_created_at, after_id
from bench.targets where n = :n \gset
\endif
"""


@dataclass(frozen=True)
class Case:
    name: str
    title: str
    method: str
    statements: list[str]  # between BEGIN and COMMIT
    extra: str = ""  # pgbench meta-commands before BEGIN

    def pgbench_script(self) -> str:
        body = "\n".join(s if s.endswith("\\gset") else s + ";" for s in self.statements)
        return f"{LOOKUP}{self.extra}BEGIN;\n{CONTEXT};\n{body}\nCOMMIT;\n"


def timeline_statements(*, after: bool) -> list[str]:
    sql, names = timeline.list_sql(vehicle=True, types=False, from_=False, to=False, after=after)
    mapping = {
        "vehicle_id": "vehicle_id",
        "limit": "limit",
        "after_date": "after_date",
        "after_created_at": "after_created_at",
        "after_id": "after_id",
    }
    listing = bind(sql, [mapping[n] for n in names])
    statements = [bind(GET_LIVE_VEHICLE, ["vehicle_id"])]
    statements += list_wrapper(listing)
    return statements


def list_wrapper(listing: str) -> list[str]:
    """What list_events sends: its preamble, then the list statement."""
    return [*timeline.LIST_PREAMBLE, listing]


def cases() -> list[Case]:
    vehicle_list = bind(vehicles.LIST, ["garage_id", "pattern", "after_created_at", "after_id"])
    # pgbench cannot bind NULL: the four null filters are inlined as typed nulls.
    for name, cast in (
        ("garage_id", "uuid"),
        ("pattern", "text"),
        ("after_created_at", "timestamptz"),
        ("after_id", "uuid"),
    ):
        vehicle_list = vehicle_list.replace(f":{name}::{cast}", f"null::{cast}")
        vehicle_list = vehicle_list.replace(f":{name}", f"null::{cast}")
    vehicle_list = re.sub(r"\$5(?!\d)", ":limit", vehicle_list)
    append = [
        bind(idempotency.LOCK, ["ikey"]),
        bind(idempotency.READ, ["user_id", "ikey"]),
        bind(timeline.VEHICLE_TODAY, ["vehicle_id"]) + " \\gset",
        # miles and notes are null in the API's request: inlined (pgbench cannot bind NULL).
        bind(timeline.INSERT, ["vehicle_id", "today", "etype", "miles", "payload", "notes"])
        .replace(":miles", "null::int")
        .replace(":notes", "null::text"),
        bind(
            idempotency.STORE,
            ["user_id", "ikey", "fingerprint", "status", "stored", "stored_headers"],
        ),
    ]
    return [
        Case(
            "timeline_first",
            "timeline first page",
            "GET",
            timeline_statements(after=False),
        ),
        Case(
            "timeline_cursor",
            "timeline page via cursor",
            "GET",
            timeline_statements(after=True),
        ),
        Case("vehicle_get", "single vehicle GET", "GET", [bind(GET_LIVE_VEHICLE, ["vehicle_id"])]),
        Case(
            "append",
            "event append (Idempotency-Key)",
            "POST",
            append,
            extra="\\set ikey random(1, 1000000000000000)\n",
        ),
        Case("vehicle_list", "vehicle list", "GET", [vehicle_list]),
    ]
