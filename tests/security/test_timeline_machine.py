"""The timeline as a state machine (Hypothesis), through the real app and its real database.

Rules: append a reading (random date in a window, random miles), correct a live event, append a
reading lower than an earlier one, retry a request with the same Idempotency-Key, try to change or
delete an event (HTTP and SQL). A model predicts every answer (201 or 409, and which 409);
invariants after every step: among live events miles never decrease with date, the event count
only grows, and the live set the API shows is the model's. Each run gets a fresh vehicle.

The app runs on its own event loop thread (support.py: sync_app), so the machine is plain sync
code; SQL runs on that loop too, through the portal.
"""

import datetime as dt
import functools
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import asyncpg
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from app.core.config import Settings
from app.core.db import _init_connection
from app.main import create_app
from tests.helpers import User, as_user, auth, create_user
from tests.security.support import SyncApp, sync_app

RUNS = int(os.environ.get("MOTOMIND_MACHINE_EXAMPLES", "12"))
STEPS = int(os.environ.get("MOTOMIND_MACHINE_STEPS", "25"))
MIN_STEPS = 200  # the bar for one CI run
WINDOW_START = dt.date(2021, 1, 1)
WINDOW_DAYS = 60
# Steps taken across every run of the machine in this session.
STEP_COUNTER = {"steps": 0, "runs": 0}


@dataclass
class Ev:
    id: str
    date: dt.date
    miles: int
    live: bool = True


def conflicts(events: list[Ev], day: dt.date, miles: int, *, ignore: str | None = None) -> bool:
    """The database's rule: a live reading on/before `day` that is higher, or after it lower."""
    for e in events:
        if not e.live or e.id == ignore:
            continue
        if (e.date <= day and e.miles > miles) or (e.date > day and e.miles < miles):
            return True
    return False


class TimelineMachine(RuleBasedStateMachine):
    client: ClassVar[SyncApp]
    pool: ClassVar[asyncpg.Pool]
    user: ClassVar[User]

    events = Bundle("events")

    def __init__(self) -> None:
        super().__init__()
        resp = self.client.post("/v1/vehicles", json={"make": "Moto"}, headers=self.headers())
        assert resp.status_code == 201, resp.text
        self.vehicle = resp.json()["id"]
        self.model: list[Ev] = []
        self.last_post: tuple[str, dict[str, Any], int, Any] | None = None
        self.seen_count = 0
        STEP_COUNTER["runs"] += 1

    def headers(self, key: str | None = None) -> dict[str, str]:
        h = auth(self.user)
        if key is not None:
            h["Idempotency-Key"] = key
        return h

    def _post(self, body: dict[str, Any]) -> Any:
        key = uuid.uuid4().hex
        resp = self.client.post("/v1/timeline", json=body, headers=self.headers(key))
        if resp.status_code == 201:
            self.last_post = (key, body, resp.status_code, resp.json())
        return resp

    def _by_id(self, event_id: str) -> Ev:
        return next(e for e in self.model if e.id == event_id)

    # Rules --------------------------------------------------------------------------------------

    @rule(
        target=events,
        offset=st.integers(0, WINDOW_DAYS),
        miles=st.integers(0, 5_000),
    )
    def append(self, offset: int, miles: int) -> str | None:
        STEP_COUNTER["steps"] += 1
        day = WINDOW_START + dt.timedelta(days=offset)
        expect_ok = not conflicts(self.model, day, miles)
        body = {"vehicle_id": self.vehicle, "type": "odometer", "date": str(day), "miles": miles}
        resp = self._post(body)
        if expect_ok:
            assert resp.status_code == 201, resp.text
            ev = Ev(resp.json()["id"], day, miles)
            self.model.append(ev)
            return ev.id
        assert resp.status_code == 409, resp.text
        assert resp.json()["code"] == "odometer_rollback"
        return None

    @rule(
        target=events,
        target_id=consumes(events),
        offset=st.integers(0, WINDOW_DAYS),
        miles=st.integers(0, 5_000),
    )
    def correct(self, target_id: str | None, offset: int, miles: int) -> str | None:
        STEP_COUNTER["steps"] += 1
        if target_id is None:
            return None
        target = self._by_id(target_id)
        day = WINDOW_START + dt.timedelta(days=offset)
        body = {
            "vehicle_id": self.vehicle,
            "type": "odometer",
            "date": str(day),
            "miles": miles,
            "payload": {"correction_of": target_id},
        }
        resp = self._post(body)
        if not target.live:
            assert resp.status_code == 409, resp.text
            assert resp.json()["code"] == "already_superseded"
            return None
        if conflicts(self.model, day, miles, ignore=target_id):
            assert resp.status_code == 409, resp.text
            assert resp.json()["code"] == "odometer_rollback"
            return target_id  # still live: may be corrected later
        assert resp.status_code == 201, resp.text
        target.live = False
        ev = Ev(resp.json()["id"], day, miles)
        self.model.append(ev)
        return ev.id

    @precondition(lambda self: any(e.live and e.miles > 0 for e in self.model))
    @rule(data=st.data())
    def append_lower(self, data: st.DataObject) -> None:
        STEP_COUNTER["steps"] += 1
        candidates = [e for e in self.model if e.live and e.miles > 0]
        anchor = data.draw(st.sampled_from(candidates))
        later = data.draw(st.integers(0, WINDOW_DAYS - (anchor.date - WINDOW_START).days))
        day = anchor.date + dt.timedelta(days=later)
        miles = data.draw(st.integers(0, anchor.miles - 1))
        body = {"vehicle_id": self.vehicle, "type": "odometer", "date": str(day), "miles": miles}
        resp = self._post(body)
        assert resp.status_code == 409, resp.text
        problem = resp.json()
        assert problem["code"] == "odometer_rollback"
        assert "miles" in problem["detail"]  # names the conflicting reading

    @precondition(lambda self: self.last_post is not None)
    @rule()
    def retry_same_key(self) -> None:
        STEP_COUNTER["steps"] += 1
        assert self.last_post is not None
        key, body, status, first = self.last_post
        before = self._db_count()
        resp = self.client.post("/v1/timeline", json=body, headers=self.headers(key))
        assert resp.status_code == status, resp.text
        assert resp.json() == first
        assert resp.headers.get("Idempotent-Replayed") == "true"
        assert self._db_count() == before  # one row per key
        rows = self._sql("select count(*) from public.vehicle_events where id = $1", first["id"])
        assert rows == 1

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data(), method=st.sampled_from(["PUT", "PATCH", "DELETE"]))
    def try_to_change_over_http(self, data: st.DataObject, method: str) -> None:
        STEP_COUNTER["steps"] += 1
        ev = data.draw(st.sampled_from(self.model))
        resp = self.client.request(
            method, f"/v1/timeline/{ev.id}", json={"miles": 0}, headers=self.headers()
        )
        assert resp.status_code == 405, resp.text
        assert resp.headers["Allow"] == "GET"

    @precondition(lambda self: bool(self.model))
    @rule(
        data=st.data(),
        sql=st.sampled_from(
            [
                "update public.vehicle_events set miles = 0 where id = $1",
                "update public.vehicle_events set payload = '{}' where id = $1",
                "delete from public.vehicle_events where id = $1",
            ]
        ),
    )
    def try_to_change_over_sql(self, data: st.DataObject, sql: str) -> None:
        STEP_COUNTER["steps"] += 1
        ev = data.draw(st.sampled_from(self.model))

        async def attempt() -> str:
            async with as_user(self.pool, self.user) as conn:
                try:
                    await conn.execute(sql, uuid.UUID(ev.id))
                except asyncpg.PostgresError as exc:
                    return str(exc.sqlstate)
            return "succeeded"

        outcome = self.client.portal.call(attempt)
        assert outcome == "42501", f"{sql}: {outcome}"

    # Invariants ---------------------------------------------------------------------------------

    def _sql(self, query: str, *args: Any) -> Any:
        async def run() -> Any:
            return await self.pool.fetchval(query, *args)

        return self.client.portal.call(run)

    def _db_count(self) -> int:
        return int(
            self._sql(
                "select count(*) from public.vehicle_events where vehicle_id = $1",
                uuid.UUID(self.vehicle),
            )
        )

    @invariant()
    def count_only_grows_and_matches_the_model(self) -> None:
        count = self._db_count()
        assert count >= self.seen_count
        assert count == len(self.model)
        self.seen_count = count

    @invariant()
    def live_miles_never_decrease_with_date(self) -> None:
        resp = self.client.get(
            f"/v1/vehicles/{self.vehicle}/timeline", params={"limit": 200}, headers=self.headers()
        )
        assert resp.status_code == 200, resp.text
        items = resp.json()["items"]
        live = [
            (dt.date.fromisoformat(i["date"]), i["miles"], i["id"])
            for i in items
            if i["superseded_by"] is None
        ]
        assert {i for _, _, i in live} == {e.id for e in self.model if e.live}
        for d1, m1, _ in live:
            for d2, m2, _ in live:
                if d1 < d2:
                    assert m1 <= m2, f"{m1} on {d1} > {m2} on {d2}"


@pytest.fixture
def machine_client(settings: Settings, database_url: str) -> Iterator[tuple[SyncApp, Any, User]]:
    async def open_pool() -> asyncpg.Pool:
        pool = await asyncpg.create_pool(
            database_url, min_size=1, max_size=2, init=_init_connection
        )
        assert pool is not None
        return pool

    with sync_app(create_app(settings)) as client:
        pool = client.portal.call(open_pool)
        try:
            user = client.portal.call(functools.partial(create_user, pool))
            yield client, pool, user
        finally:
            client.portal.call(pool.close)


def test_timeline_state_machine(machine_client: Any) -> None:
    client, pool, user = machine_client
    TimelineMachine.client, TimelineMachine.pool, TimelineMachine.user = client, pool, user
    STEP_COUNTER.update(steps=0, runs=0)
    run_state_machine_as_test(
        TimelineMachine,
        settings=settings(
            max_examples=RUNS,
            stateful_step_count=STEPS,
            derandomize=True,
            database=None,
            deadline=None,
            print_blob=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
    assert STEP_COUNTER["steps"] >= MIN_STEPS, STEP_COUNTER
