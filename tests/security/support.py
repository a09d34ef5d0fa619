"""Shared by the security tests: a seeded tenant (one live object of each kind, plus spares to
delete) and the helpers that steer generated requests towards those real rows."""

import contextlib
import functools
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.helpers import User, auth

# Path and query parameter names -> the resource whose id they take.
PARAM_RESOURCES = {
    "garage_id": "garage",
    "vehicle_id": "vehicle",
    "reminder_id": "reminder",
    "image_id": "image",
    "event_id": "event",
    "correction_of": "event",
}
SPARES = 3


@dataclass
class World:
    """A tenant with real rows: `ids[kind]` is never deleted on purpose; `spares[kind]` may be."""

    user: User
    ids: dict[str, str]
    spares: dict[str, list[str]] = field(default_factory=dict)

    def real_id(self, kind: str, seed: int, *, deleting: bool = False) -> str:
        pool = self.spares.get(kind) if deleting else None
        if pool:
            return pool[seed % len(pool)]
        return self.ids[kind]


async def _post(client: httpx.AsyncClient, user: User, url: str, body: dict[str, Any]) -> str:
    resp = await client.post(url, json=body, headers=auth(user))
    assert resp.status_code == 201, f"seed {url}: {resp.status_code} {resp.text}"
    return str(resp.json()["id"])


async def seed_world(client: httpx.AsyncClient, user: User) -> World:
    """One garage, vehicle, reminder, image and timeline event (and spares of each) for `user`."""

    async def one(kind: str, garage: str | None, vehicle: str | None, n: int) -> str:
        if kind == "garage":
            return await _post(client, user, "/v1/garages", {"name": f"Garage {n}"})
        if kind == "vehicle":
            body = {"garage_id": garage, "nickname": f"Bike {n}", "make": "Moto", "model": "X"}
            return await _post(client, user, "/v1/vehicles", body)
        if kind == "reminder":
            body = {"vehicle_id": vehicle, "title": f"Oil {n}", "due_mileage": 5000 + n}
            return await _post(client, user, "/v1/reminders", body)
        if kind == "image":
            body = {"vehicle_id": vehicle, "storage_url": f"vehicles/{n}.jpg"}
            return await _post(client, user, "/v1/images", body)
        body = {"vehicle_id": vehicle, "type": "odometer", "miles": 100 + n, "date": "2020-01-01"}
        return await _post(client, user, "/v1/timeline", body)

    ids: dict[str, str] = {}
    spares: dict[str, list[str]] = {}
    for n in range(SPARES + 1):
        garage = await one("garage", None, None, n)
        vehicle = await one("vehicle", garage, None, n)
        made = {"garage": garage, "vehicle": vehicle}
        for kind in ("reminder", "image", "event"):
            made[kind] = await one(kind, garage, vehicle, n)
        for kind, value in made.items():
            if n == 0:
                ids[kind] = value
            else:
                spares.setdefault(kind, []).append(value)
    spares.pop("event")  # events cannot be deleted
    return World(user=user, ids=ids, spares=spares)


def as_uuid(value: object) -> uuid.UUID | None:
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


class SyncApp:
    """The app on its own event loop thread (an anyio portal), called from plain sync code.

    For Hypothesis state machines, which are sync: requests go through httpx's ASGI transport on
    that loop, and `portal.call` runs any other coroutine (SQL) there too.
    """

    def __init__(self, portal: Any, client: httpx.AsyncClient) -> None:
        self.portal = portal
        self._client = client

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response: httpx.Response = self.portal.call(
            functools.partial(self._client.request, method, url, **kwargs)
        )
        return response

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)


@contextlib.contextmanager
def sync_app(app: Any) -> Iterator[SyncApp]:
    from anyio.from_thread import start_blocking_portal
    from asgi_lifespan import LifespanManager

    @contextlib.asynccontextmanager
    async def running() -> AsyncIterator[None]:
        async with LifespanManager(app):  # made on the portal's loop, where it runs
            yield

    with start_blocking_portal() as portal, portal.wrap_async_context_manager(running()):
        transport = httpx.ASGITransport(app=app)
        client = httpx.AsyncClient(transport=transport, base_url="http://test")
        try:
            yield SyncApp(portal, client)
        finally:
            portal.call(client.aclose)
