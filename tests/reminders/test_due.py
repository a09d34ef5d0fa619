"""The pure due_state rules at their boundaries, with a fixed clock."""

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from app.reminders.due import DueState, due_state, local_today

# 03:00 UTC on 1 March: still 28 February in Los Angeles, already 1 March in Berlin.
NOW = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)
TODAY_UTC = date(2026, 3, 1)


def reminder(**over: Any) -> dict[str, Any]:
    return {
        "status": "active",
        "due_date": None,
        "due_mileage": None,
        "soon_days": 30,
        "soon_miles": 500,
        **over,
    }


def state(r: dict[str, Any], miles: int | None = None, tz: str | None = "UTC") -> DueState:
    return due_state(r, current_mileage=miles, timezone=tz, now=NOW)


@pytest.mark.parametrize(
    ("days_from_today", "expected"),
    [
        (-1, DueState.overdue),
        (0, DueState.due_soon),  # due today: not overdue yet
        (30, DueState.due_soon),  # the threshold is inclusive
        (31, DueState.upcoming),
    ],
)
def test_by_date(days_from_today: int, expected: DueState) -> None:
    due = TODAY_UTC + timedelta(days=days_from_today)
    assert state(reminder(due_date=due)) == expected


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        (10_001, DueState.overdue),
        (10_000, DueState.due_soon),  # reaching it exactly: due now, not past
        (9_500, DueState.due_soon),
        (9_499, DueState.upcoming),
        (None, DueState.upcoming),  # unknown mileage cannot make it due
    ],
)
def test_by_mileage_only(current: int | None, expected: DueState) -> None:
    assert state(reminder(due_mileage=10_000), miles=current) == expected


def test_whichever_comes_first() -> None:
    far_date = TODAY_UTC + timedelta(days=365)
    past_date = TODAY_UTC - timedelta(days=1)
    # Date far away, mileage passed: overdue.
    assert state(reminder(due_date=far_date, due_mileage=1000), miles=1001) == DueState.overdue
    # Date passed, mileage far away: overdue.
    assert state(reminder(due_date=past_date, due_mileage=50_000), miles=10) == DueState.overdue
    # Date far away, mileage close: due soon.
    assert state(reminder(due_date=far_date, due_mileage=1000), miles=600) == DueState.due_soon
    # Both far: upcoming.
    assert state(reminder(due_date=far_date, due_mileage=50_000), miles=10) == DueState.upcoming


def test_thresholds_are_per_reminder() -> None:
    in_40_days = TODAY_UTC + timedelta(days=40)
    wide = reminder(due_date=in_40_days, soon_days=45, due_mileage=5000, soon_miles=2000)
    default = reminder(due_date=in_40_days, due_mileage=5000)
    assert state(wide, miles=3100) == DueState.due_soon
    assert state(default, miles=3100) == DueState.upcoming
    assert state(reminder(due_mileage=5000, soon_miles=2000), miles=2999) == DueState.upcoming
    assert state(reminder(due_mileage=5000, soon_miles=2000), miles=3000) == DueState.due_soon


def test_today_is_the_vehicles_today() -> None:
    assert local_today(NOW, "America/Los_Angeles") == date(2026, 2, 28)
    assert local_today(NOW, "Europe/Berlin") == date(2026, 3, 1)
    assert local_today(NOW, None) == date(2026, 3, 1)
    assert local_today(NOW, "Not/AZone") == date(2026, 3, 1)  # unknown: UTC, never an error
    due_feb_28 = reminder(due_date=date(2026, 2, 28))
    assert state(due_feb_28, tz="America/Los_Angeles") == DueState.due_soon  # today there
    assert state(due_feb_28, tz="Europe/Berlin") == DueState.overdue  # yesterday there
    assert state(due_feb_28, tz=None) == DueState.overdue  # no vehicle: UTC


@pytest.mark.parametrize("status", ["completed", "dismissed"])
def test_finished_reminders_say_so(status: str) -> None:
    overdue = reminder(status=status, due_date=TODAY_UTC - timedelta(days=9))
    assert state(overdue) == DueState(status)
