"""What tests share: objects made through the real API or as the owner would write them, the
OpenAPI document they are steered by, and generated inputs. Test files import from here, never
from each other."""

import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from hypothesis import strategies as st
from pydantic import SecretStr

from app.core.config import Settings
from app.main import create_app
from tests.helpers import TEST_JWT_SECRET, User, auth, create_user

# --- The OpenAPI document, and one object of each resource through the API (cross-tenant tests) --

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
WITH_BODY = {"POST", "PUT", "PATCH"}


def openapi_document() -> dict[str, Any]:
    """The document of the app the tests run (same routers), built without a database."""
    settings = Settings(
        database_url="postgresql://collect-only@127.0.0.1:1/none",
        supabase_jwt_secret=SecretStr(TEST_JWT_SECRET),
        supabase_url=None,
        jwt_issuer=None,
    )
    return create_app(settings).openapi()


SPEC = openapi_document()
ID_PATHS = sorted(p for p in SPEC["paths"] if "{" in p)
LIST_PATHS = sorted(
    p for p, ops in SPEC["paths"].items() if "{" not in p and p.startswith("/v1/") and "get" in ops
)

# Path prefix (up to the first parameter) -> the resource whose id goes there.
PREFIXES = {
    "/v1/garages/{": "garage",
    "/v1/vehicles/{": "vehicle",
    "/v1/reminders/{": "reminder",
    "/v1/images/{": "image",
    "/v1/timeline/{": "event",
}
# A minimal valid body per resource, for the methods that take one.
BODIES: dict[str, dict[str, Any]] = {
    "garage": {"name": "pwned"},
    "vehicle": {"nickname": "pwned"},
    "reminder": {"title": "pwned"},
    "image": {"caption": "pwned"},
    "event": {"notes": "pwned"},
}
# Where each resource is read back, to see that it did not change.
CANONICAL = {
    "garage": "/v1/garages/{}",
    "vehicle": "/v1/vehicles/{}",
    "reminder": "/v1/reminders/{}",
    "image": "/v1/images/{}",
    "event": "/v1/timeline/{}",
}
# Lists that must show the owner its own object (the allow twin of "B never sees it").
OWN_LISTS = {
    "/v1/garages": "garage",
    "/v1/vehicles": "vehicle",
    "/v1/reminders": "reminder",
    "/v1/images": "image",
    "/v1/timeline": "event",
}


def resource_of(path: str) -> str:
    prefix = path[: path.index("{") + 1]
    if prefix not in PREFIXES:
        pytest.fail(f"{path}: no factory for prefix {prefix!r}; add it to the cross-tenant matrix")
    return PREFIXES[prefix]


@dataclass
class Objects:
    """One object of each resource, created lazily (with what it depends on) by one user."""

    client: httpx.AsyncClient
    user: User
    ids: dict[str, str]

    async def _post(self, url: str, body: dict[str, Any]) -> str:
        resp = await self.client.post(url, json=body, headers=auth(self.user))
        assert resp.status_code == 201, f"factory {url}: {resp.status_code} {resp.text}"
        return str(resp.json()["id"])

    async def get(self, resource: str) -> str:
        if resource not in self.ids:
            self.ids[resource] = await self._create(resource)
        return self.ids[resource]

    async def _create(self, resource: str) -> str:
        if resource == "garage":
            return await self._post("/v1/garages", {"name": "A's garage"})
        if resource == "vehicle":
            garage_id = await self.get("garage")
            return await self._post(
                "/v1/vehicles", {"garage_id": garage_id, "nickname": "A's bike", "make": "Moto"}
            )
        vehicle_id = await self.get("vehicle")
        if resource == "reminder":
            return await self._post(
                "/v1/reminders", {"vehicle_id": vehicle_id, "title": "A's", "due_mileage": 1000}
            )
        if resource == "image":
            return await self._post(
                "/v1/images", {"vehicle_id": vehicle_id, "storage_url": "a/front.jpg"}
            )
        if resource == "event":
            return await self._post(
                "/v1/timeline", {"vehicle_id": vehicle_id, "type": "odometer", "miles": 100}
            )
        pytest.fail(f"no factory for {resource}")

    async def all(self) -> dict[str, str]:
        for resource in CANONICAL:
            await self.get(resource)
        return dict(self.ids)


# --- A user with one row in every table, written by the owner (RLS tests) -----------------------

TABLES = [
    "tenants",
    "profiles",
    "garages",
    "vehicles",
    "vehicle_events",
    "vehicle_images",
    "reminders",
    "idempotency_keys",
]


@dataclass
class Seed:
    user: User
    garage: uuid.UUID
    vehicle: uuid.UUID
    image: uuid.UUID
    reminder: uuid.UUID
    event: uuid.UUID
    key: str

    def row_id(self, table: str) -> object:
        """The value that identifies this tenant's row of `table` (see KEY_COLUMN)."""
        return {
            "tenants": self.user.tenant_id,
            "profiles": self.user.id,
            "garages": self.garage,
            "vehicles": self.vehicle,
            "vehicle_events": self.event,
            "vehicle_images": self.image,
            "reminders": self.reminder,
            "idempotency_keys": self.key,
        }[table]


KEY_COLUMN = {t: "id" for t in TABLES} | {"idempotency_keys": "key"}


async def seed(db: asyncpg.Pool) -> Seed:
    """A user in a new tenant with one row in every table (written by the owner)."""
    user = await create_user(db)
    t = user.tenant_id
    garage = await db.fetchval(
        "insert into public.garages (tenant_id, name) values ($1, 'Home') returning id", t
    )
    vehicle = await db.fetchval(
        """insert into public.vehicles (tenant_id, garage_id, make, nickname)
           values ($1, $2, 'Honda', 'blue') returning id""",
        t,
        garage,
    )
    image = await db.fetchval(
        """insert into public.vehicle_images (tenant_id, vehicle_id, storage_url)
           values ($1, $2, 'vehicles/a.jpg') returning id""",
        t,
        vehicle,
    )
    reminder = await db.fetchval(
        """insert into public.reminders (tenant_id, vehicle_id, title, due_mileage)
           values ($1, $2, 'Oil', 5000) returning id""",
        t,
        vehicle,
    )
    # A tenant-level document, so the vehicle can be hard-deleted in the delete twin.
    event = await db.fetchval(
        """insert into public.vehicle_events (tenant_id, date, type, payload)
           values ($1, current_date, 'document', '{"kind": "other"}') returning id""",
        t,
    )
    key = f"key-{uuid.uuid4().hex}"
    await db.execute(
        """insert into public.idempotency_keys (tenant_id, user_id, key, request_hash)
           values ($1, $2, $3, 'h')""",
        t,
        user.id,
        key,
    )
    return Seed(user, garage, vehicle, image, reminder, event, key)


# --- Generated text: white space of every kind, padding ------------------------------------

SPACES = [" ", "\t", "\n", "\r", "\x0b", "\x0c", "\x85", "\xa0", "\u2003", "\u3000", "\x1c", "\x1f"]
spaces = st.sampled_from(SPACES)
BOUNDARY_NUMBERS: list[Any] = [
    0,
    0.0,
    -0.0,
    1,
    -1,
    0.5,
    -1e-9,
    5e-324,
    2.2250738585072014e-308,
    1e308,
    1.7976931348623157e308,
    -1e308,
    2**31,
    2**53 + 1,
    10**17,
    10**17 + 1,
    123456789012345678,
    10**308,
    10**309,
    10**400,
]
numbers = st.one_of(
    st.sampled_from(BOUNDARY_NUMBERS),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
)
non_negative = st.one_of(
    numbers.filter(lambda n: n >= 0), st.sampled_from([0, 0.0, -0.0, 1e308, 10**17])
)
positive = st.one_of(numbers.filter(lambda n: n > 0), st.sampled_from([5e-324, 1e308, 10**17]))


@st.composite
def padded(draw: st.DrawFn, text: st.SearchStrategy[str]) -> str:
    value = draw(text)
    return draw(spaces) * draw(st.integers(0, 2)) + value + draw(spaces) * draw(st.integers(0, 2))


# --- Links, valid and not (the safe-URL rule's agreement tests) ---------------------------------

URLS = [
    "https://files.example.com/reg.pdf",
    "http://files.example.com:8080/a?b=c#d",
    "HTTPS://FILES.EXAMPLE.COM/A",
    "https://files.example.com",
    "https://files.example.com:123456/",
    "https://user@files.example.com/",
    "https://files.example.com/a b",
    "https://files.example.com/a\tb",
    "https://files.example.com/a\xa0b",
    "https://files.example.com/a\u2003b",
    "https://files.example.com/a\x1cb",
    "https://files.example.com/a\x7fb",
    "https://files.example.com/a\x01b",
    "https://files.example.com/café.pdf",
    "https://fi\u212ales.example.com/",  # KELVIN SIGN: a `k` only case-insensitively
    "https://files.example.com/\n",
    "documents/insurance-2026.pdf",
    "documents/insurance-2026.pdf\n",
    "receipts/2026/a.jpg",
    "a/..b/c",
    "a/../b",
    "../a",
    "..",
    "//evil.example/x",
    "/abs/path",
    "javascript:alert(1)",
    "data:text/html,x",
    "file:///etc/passwd",
    "ftp://files.example.com/a",
    "",
    "a" * 500,
    "a" * 501,
]
url_chars = st.sampled_from([*"aZ09_.~%+=@/-:?#&\xe9 \t\x7f", "\xa0", "\u2003", "\u212a"])
urls = st.one_of(
    st.sampled_from(URLS),
    padded(st.sampled_from(URLS[:3])),
    st.text(alphabet=url_chars, max_size=12),
    st.text(alphabet=url_chars, max_size=12).map(lambda s: "https://files.example.com/" + s),
    st.text(alphabet=url_chars, max_size=8).map(lambda s: "https://" + s),
)
