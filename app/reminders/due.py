"""A reminder's `due_state`: the one place it is computed (pure: no I/O, no clock). The list's
`due_state` filter restates these rules in SQL (app/reminders/queries.py DUE_STATE); tests hold the
two to the same answers.

Rules, each criterion on its own, then the more urgent of the two wins ("whichever comes first"):

- by date, with "today" in the vehicle's time zone (UTC for a reminder without a vehicle):
  `overdue` once `due_date` has passed (due today is not overdue yet), `due_soon` when
  `due_date` is at most `soon_days` days away, else `upcoming`;
- by mileage, against the vehicle's `current_mileage` (skipped while it is unknown):
  `overdue` once `current_mileage` is past `due_mileage`, `due_soon` when `due_mileage` is at
  most `soon_miles` away (reaching it exactly counts as due now, not overdue), else `upcoming`.

A reminder that is no longer active is simply `completed` or `dismissed`.
"""

from collections.abc import Mapping
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class DueState(StrEnum):
    overdue = "overdue"
    due_soon = "due_soon"
    upcoming = "upcoming"
    completed = "completed"
    dismissed = "dismissed"


_URGENCY = {DueState.upcoming: 0, DueState.due_soon: 1, DueState.overdue: 2}


def local_today(now: datetime, timezone: str | None) -> date:
    """The calendar date at `now` in `timezone` (UTC when there is none or it is unknown)."""
    try:
        zone = ZoneInfo(timezone) if timezone else UTC
    except (ZoneInfoNotFoundError, ValueError):
        zone = UTC
    return now.astimezone(zone).date()


def _by_distance(remaining: int, soon: int) -> DueState:
    if remaining < 0:
        return DueState.overdue
    if remaining <= soon:
        return DueState.due_soon
    return DueState.upcoming


def due_state(
    reminder: Mapping[str, Any],
    *,
    current_mileage: int | None,
    timezone: str | None,
    now: datetime,
) -> DueState:
    """`reminder` needs status, due_date, due_mileage, soon_days, soon_miles; `now` is aware."""
    status = reminder["status"]
    if status == "completed":
        return DueState.completed
    if status == "dismissed":
        return DueState.dismissed
    states: list[DueState] = []
    due_date: date | None = reminder["due_date"]
    if due_date is not None:
        days_left = (due_date - local_today(now, timezone)).days
        states.append(_by_distance(days_left, reminder["soon_days"]))
    due_mileage: int | None = reminder["due_mileage"]
    if due_mileage is not None and current_mileage is not None:
        states.append(_by_distance(due_mileage - current_mileage, reminder["soon_miles"]))
    if not states:
        return DueState.upcoming
    return max(states, key=_URGENCY.__getitem__)
