"""The benchmarked requests, each as the HTTP request wrk sends and as the SQL transaction the API
runs for it (for pgbench). The SQL is taken from the app's own constants wherever it has one, so
the two sides run the same statements; keep `transaction` in step with the route's code.

pgbench variables per transaction come from bench.targets (one row per vehicle), looked up with
`\\gset` on about one transaction in ten (the lookup is a round trip that the API does not make).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.core.db import SET_LIST_CONTEXT, SET_REQUEST_CONTEXT
from app.timeline import queries as timeline
from app.vehicles import queries as vehicles
from app.web import idempotency

APPEND_PAYLOAD = '{"service": "Oil change", "cost": 49.9, "currency": "USD"}'
APPEND_BODY = '{"vehicle_id": "%s", "type": "maintenance", "payload": ' + APPEND_PAYLOAD + "}"


def _colon_free(literal: re.Match[str]) -> str:
    """pgbench reads `:name` even inside a string literal as a variable: the same constant as an
    escape string with its colons spelled `\\x3a` (PostgreSQL parses both to the same value)."""
    text = literal.group(0)
    if ":" not in text:
        return text
    return "E" + text.replace("\\", "\\\\").replace(":", "\\x3a")


def bind(sql: str, names: list[str]) -> str:
    """`$n` -> `:name` (pgbench passes each as a parameter under -M prepared)."""
    sql = re.sub(r"'(?:[^']|'')*'", _colon_free, sql)
    for n in range(len(names), 0, -1):
        sql = re.sub(rf"\${n}(?!\d)", f":{names[n - 1]}", sql)
    return sql.strip()


CONTEXT_PARAMS = ["role", "claims", "statement_timeout", "lock_timeout"]
CONTEXT = bind(SET_REQUEST_CONTEXT, CONTEXT_PARAMS)
LIST_CONTEXT = bind(SET_LIST_CONTEXT, CONTEXT_PARAMS)
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
    statements: list[str]  # between the context statement and COMMIT
    extra: str = ""  # pgbench meta-commands before BEGIN
    context: str = CONTEXT  # the request's first statement (db.set_request_context)

    def pgbench_script(self) -> str:
        body = "\n".join(s if s.endswith("\\gset") else s + ";" for s in self.statements)
        # The API sends BEGIN and the context as one message (db.begin_with_context): one round
        # trip, as the two pipelined here.
        begin = f"\\startpipeline\nBEGIN;\n{self.context};\n\\endpipeline\n"
        return f"{LOOKUP}{self.extra}{begin}{body}\nCOMMIT;\n"


def timeline_statements(*, after: bool) -> list[str]:
    sql, names = timeline.list_sql(vehicle=True, types=False, from_=False, to=False, after=after)
    mapping = {
        "vehicle_id": "vehicle_id",
        "limit": "limit",
        "after_date": "after_date",
        "after_created_at": "after_created_at",
        "after_id": "after_id",
    }
    # On a ListConn (LIST_CONTEXT); the vehicle is looked up only when the page is empty.
    return [bind(sql, [mapping[n] for n in names])]


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
    # The API's append with an Idempotency-Key (app/timeline/router.py): the key's lock, then
    # one statement that appends and stores the response (the database checks the rest).
    append = [
        bind(idempotency.LOCK, ["ikey", "user_id", "ikey"]),
        # date, miles and notes are null in the API's request: inlined (pgbench cannot bind NULL).
        bind(
            timeline.APPEND_ONCE,
            [
                *("vehicle_id", "day", "etype", "miles", "payload", "notes"),
                *("user_id", "ikey", "fingerprint"),
            ],
        )
        .replace(":day::date", "null::date")
        .replace(":miles::int", "null::int")
        .replace(":notes::text", "null::text"),
    ]
    return [
        Case(
            "timeline_first",
            "timeline first page",
            "GET",
            timeline_statements(after=False),
            context=LIST_CONTEXT,
        ),
        Case(
            "timeline_cursor",
            "timeline page via cursor",
            "GET",
            timeline_statements(after=True),
            context=LIST_CONTEXT,
        ),
        Case("vehicle_get", "single vehicle GET", "GET", [bind(vehicles.GET, ["vehicle_id"])]),
        Case(
            "append",
            "event append (Idempotency-Key)",
            "POST",
            append,
            extra="\\set ikey random(1, 1000000000000000)\n",
        ),
        Case("vehicle_list", "vehicle list", "GET", [vehicle_list]),
    ]
