"""Schemathesis over every operation of the OpenAPI document, in-process against the ASGI app.

A real tenant's token on every case (a `service_role` token on /v1/ops), real rows to find (path,
query and body ids are steered to the seeded tenant's objects about half of the time), positive and
negative data, and the checks the API promises. Deterministic: a fixed seed and derandomized
Hypothesis, so a run with CI=true (Hypothesis's "ci" profile) behaves exactly like one without.

MOTOMIND_FUZZ_EXAMPLES raises the examples per operation (the long run: see README.md).
"""

import json
import os
import re
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, settings
from pydantic import SecretStr
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from app.core.auth import issue_token
from app.core.config import Settings
from app.main import create_app
from tests.factories import openapi_document as _openapi
from tests.helpers import TEST_JWT_SECRET, token_for
from tests.security.support import PARAM_RESOURCES, World, as_uuid

# Schemathesis's own strategies for operations without a body or auth draw from `random`; that is
# its business, not a finding about this API (warnings are errors in this suite).
pytestmark = pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module:hypothesis.errors.HypothesisDeprecationWarning"
)
EXAMPLES = int(os.environ.get("MOTOMIND_FUZZ_EXAMPLES", "8"))
SEED = 20260501
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,
    unsupported_method,
]
# Never in an error body: a stack trace, SQL text, a driver's name (constraint names: see below).
LEAKS = re.compile(
    r"Traceback|File \"|asyncpg|psycopg|SQLSTATE|\b(select|insert|update|delete)\b.{0,80}"
    r"\b(from|into|set|where)\b|\bviolates\b|\brelation\b",
    re.IGNORECASE | re.DOTALL,
)


def _service_token() -> str:
    signer = Settings(supabase_jwt_secret=SecretStr(TEST_JWT_SECRET))
    return issue_token(signer, sub=None, role="service_role", ttl=24 * 3600)


# The document of the app under test (same routers), built without a database, so collection
# needs no server; the requests go to the `fuzz_app` fixture's instance.
schema = schemathesis.openapi.from_dict(_openapi())
schema.config.seed = SEED
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
    max_examples=EXAMPLES,
    deterministic=True,
    # Documented exclusions (README.md): unknown query parameters are ignored, as HTTP APIs do
    # (cache busters, tracing); request *bodies* refuse unknown fields, and that is fuzzed.
    allow_extra_parameters=False,
    # The real token is sent on every case; ignored_auth probes without it and with a bad one.
    with_security_parameters=False,
)
TOKENS: dict[str, str] = {}


class _AppUnderTest:
    """The ASGI app the cases (and the checks' probes) go to, set by the `fuzz_app` fixture.

    Collection happens before any fixture runs, so the schema is bound to this stand-in.
    """

    target: FastAPI | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        assert self.target is not None, "fuzz_app fixture not set up"
        await self.target(scope, receive, send)


APP = _AppUnderTest()
schema.app = APP


@pytest.fixture(scope="session")
def fuzz_app(settings: Settings, world: World) -> FastAPI:
    """A second app instance: schemathesis runs its lifespan on its own event loop thread."""
    TOKENS["user"] = token_for(world.user, ttl=24 * 3600)
    TOKENS["service"] = _service_token()
    APP.target = create_app(settings)
    return APP.target


def _steer(case: Case, world: World) -> None:
    """Replace about half of the generated UUIDs with the ids of real rows of the right kind."""
    deleting = case.method.upper() == "DELETE"
    for name, value in list((case.path_parameters or {}).items()):
        parsed = as_uuid(value)
        if name in PARAM_RESOURCES and parsed and parsed.int % 2 == 0:
            kind = PARAM_RESOURCES[name]
            case.path_parameters[name] = world.real_id(kind, parsed.int, deleting=deleting)
    for name, value in list((case.query or {}).items()):
        parsed = as_uuid(value)
        if name in PARAM_RESOURCES and parsed and parsed.int % 2 == 0:
            case.query[name] = world.ids[PARAM_RESOURCES[name]]
    if isinstance(case.body, dict):
        targets = [case.body]
        if isinstance(case.body.get("payload"), dict):
            targets.append(case.body["payload"])
        for target in targets:
            for name, value in list(target.items()):
                parsed = as_uuid(value)
                if name in PARAM_RESOURCES and parsed and parsed.int % 2 == 0:
                    target[name] = world.ids[PARAM_RESOURCES[name]]


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=list(HealthCheck),
    phases=[Phase.explicit, Phase.generate],
)
def test_every_operation_conforms(
    case: Case, world: World, fuzz_app: FastAPI, constraint_names: frozenset[str]
) -> None:
    _steer(case, world)
    # The seeded tenant's token; a `service_role` token on /v1/ops, the only routes it may use.
    token = TOKENS["service" if case.path.startswith("/v1/ops") else "user"]
    headers = {"Authorization": f"Bearer {token}"}
    response = case.call_and_validate(checks=CHECKS, headers=headers)
    if response.status_code >= 400:
        assert_no_leak(response.text, constraint_names)


def assert_no_leak(text: str, constraint_names: frozenset[str]) -> None:
    """An error body says what and where, never how the server is built."""
    try:
        body = json.loads(text)
    except ValueError:
        body = text
    if isinstance(body, dict):
        body.pop("instance", None)  # the request path, as the client sent it
    flat = json.dumps(body)
    match = LEAKS.search(flat)
    assert match is None, f"error body leaks {match.group(0)!r}: {flat[:500]}"
    words = set(re.findall(r"[a-z0-9_]+", flat))
    assert not words & constraint_names, f"error body names a constraint: {flat[:500]}"
