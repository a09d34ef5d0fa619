"""The SQLSTATE -> HTTP table (PostgREST's Error.hs, as data) and the one function that reads
a database error: which problem answers it, with which code and detail."""

import re
from dataclasses import dataclass
from typing import Any

import asyncpg

# --- The SQLSTATE table (PostgREST's Error.hs, as data) ------------------------------------------


@dataclass(frozen=True)
class SqlProblem:
    status: int
    code: str
    title: str
    detail: str | None = None
    retry: bool = False
    # Use the server's DETAIL as the detail (only for errors the schema raises for clients).
    detail_from_db: bool = False


_RETRY = {"retry": True}

SQLSTATE_TABLE: dict[str, SqlProblem] = {
    # Integrity: per-tenant uniqueness only, so a duplicate is the caller's own row.
    "23505": SqlProblem(
        409, "conflict", "Conflict", "A resource with these values already exists."
    ),
    # A reference to a row the caller cannot see (nonexistent or another tenant's) looks the same.
    "23503": SqlProblem(
        422, "invalid_reference", "Invalid reference", "A referenced resource does not exist."
    ),
    "23514": SqlProblem(
        422, "invalid_value", "Invalid value", "A value is out of its allowed range."
    ),
    "23502": SqlProblem(422, "invalid_value", "Invalid value", "A required value is missing."),
    "22001": SqlProblem(422, "invalid_value", "Invalid value", "A value is too long."),
    "22003": SqlProblem(422, "invalid_value", "Invalid value", "A number is out of range."),
    "22007": SqlProblem(422, "invalid_value", "Invalid value", "A date or time is invalid."),
    "22008": SqlProblem(422, "invalid_value", "Invalid value", "A date or time is out of range."),
    "22023": SqlProblem(422, "invalid_value", "Invalid value", "A value is invalid."),
    "22P02": SqlProblem(422, "invalid_value", "Invalid value", "A value has the wrong format."),
    # RLS WITH CHECK (or a tenant guard) refused a row naming something outside the tenant:
    # answered as if it did not exist.
    "42501": SqlProblem(404, "not_found", "Not found", "The resource does not exist."),
    # Transient: retry.
    "55P03": SqlProblem(503, "lock_timeout", "Busy", "The resource is busy; retry.", **_RETRY),
    "57014": SqlProblem(
        503,
        "statement_timeout",
        "Timed out",
        "The request took too long and was cancelled; retry.",
        **_RETRY,
    ),
    "40001": SqlProblem(
        503, "transaction_conflict", "Busy", "A concurrent change interfered; retry.", **_RETRY
    ),
    "40P01": SqlProblem(
        503, "transaction_conflict", "Busy", "A concurrent change interfered; retry.", **_RETRY
    ),
    "53300": SqlProblem(
        503, "database_unavailable", "Unavailable", "The database is unavailable; retry.", **_RETRY
    ),
    "57P01": SqlProblem(
        503, "database_unavailable", "Unavailable", "The database is unavailable; retry.", **_RETRY
    ),
    "57P03": SqlProblem(
        503, "database_unavailable", "Unavailable", "The database is unavailable; retry.", **_RETRY
    ),
    # Raised by the schema for clients (sql/300_functions.sql): DETAIL is written for them.
    "MM001": SqlProblem(409, "odometer_rollback", "Odometer rollback", detail_from_db=True),
    "MM002": SqlProblem(422, "invalid_payload", "Invalid payload", detail_from_db=True),
    "MM003": SqlProblem(409, "event_immutable", "Event immutable", detail_from_db=True),
    # References in a body to a row the caller cannot see, like 23503 (sql/400_triggers.sql).
    "MM004": SqlProblem(422, "reminder_not_found", "Invalid reference", detail_from_db=True),
    "MM005": SqlProblem(
        422, "correction_target_not_found", "Invalid reference", detail_from_db=True
    ),
    "MM006": SqlProblem(409, "already_superseded", "Already superseded", detail_from_db=True),
    "MM007": SqlProblem(
        409, "invalid_status_transition", "Invalid status change", detail_from_db=True
    ),
}
# Whole classes, when the exact SQLSTATE is not in the table.
SQLSTATE_CLASS_TABLE: dict[str, SqlProblem] = {
    "08": SqlProblem(
        503, "database_unavailable", "Unavailable", "The database is unavailable; retry.", **_RETRY
    ),
    "22": SqlProblem(422, "invalid_value", "Invalid value", "A value is invalid."),
    "23": SqlProblem(422, "invalid_value", "Invalid value", "A constraint was violated."),
    "40": SqlProblem(
        503, "transaction_conflict", "Busy", "A concurrent change interfered; retry.", **_RETRY
    ),
    "53": SqlProblem(
        503,
        "database_unavailable",
        "Unavailable",
        "The database is out of resources; retry.",
        **_RETRY,
    ),
    "57": SqlProblem(
        503, "database_unavailable", "Unavailable", "The database is unavailable; retry.", **_RETRY
    ),
}
# Serialization failure and deadlock: the transaction is rolled back whole, so the whole request
# can safely run again (app/core/retry.py). Not other class-40 states (40003: completion unknown).
RETRY_WHOLE_REQUEST = frozenset({"40001", "40P01"})
INTERNAL = SqlProblem(500, "internal_error", "Internal error", "An unexpected error occurred.")
UNAVAILABLE = SqlProblem(
    503, "database_unavailable", "Unavailable", "The database is unavailable; retry.", retry=True
)


# The schema names a client-facing error by a snake_case MESSAGE (e.g. 'date_out_of_range') and
# explains it in DETAIL; built-in PostgreSQL messages are prose and never match.
_CLIENT_MESSAGE = re.compile(r"^[a-z][a-z0-9_]{2,62}$")
_KEY_COLUMNS = re.compile(r"^Key \(([a-z0-9_, ]+)\)=")


def _unique_code(constraint: str) -> str:
    for word in ("vin", "plate"):
        if word in constraint:
            return f"duplicate_{word}"
    return "conflict"


Classified = tuple[SqlProblem, str, str | None, list[dict[str, Any]] | None]


def classify_postgres_error(exc: asyncpg.PostgresError) -> Classified:
    """(table entry, code, detail, errors) for a database error; the one place that reads them."""
    sqlstate = str(getattr(exc, "sqlstate", "") or "")
    entry = SQLSTATE_TABLE.get(sqlstate) or SQLSTATE_CLASS_TABLE.get(sqlstate[:2]) or INTERNAL
    code, detail = entry.code, entry.detail
    message = str(getattr(exc, "message", "") or "")
    db_detail = getattr(exc, "detail", None)
    if entry.detail_from_db:
        detail = db_detail or detail
    elif entry.status < 500 and _CLIENT_MESSAGE.match(message):
        code, detail = message, db_detail or detail
    errors: list[dict[str, Any]] | None = None
    if sqlstate == "23505":
        code = _unique_code(str(getattr(exc, "constraint_name", "") or ""))
        if code != "conflict":
            detail = f"A resource with this {code.removeprefix('duplicate_')} already exists."
    # Name the field (never the value, never the constraint) when the server says which one.
    column = getattr(exc, "column_name", None)
    fields: list[str] = []
    if column:
        fields = [str(column)]
    elif sqlstate in ("23503", "23505") and isinstance(db_detail, str):
        match = _KEY_COLUMNS.match(db_detail)
        if match:
            fields = [c.strip() for c in match.group(1).split(",") if c.strip() != "tenant_id"]
    if fields and entry.status == 422:
        errors = [{"loc": ["body", f], "msg": detail or entry.title, "type": code} for f in fields]
    return entry, code, detail, errors
