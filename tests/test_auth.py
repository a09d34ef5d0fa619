"""Issue 3: token verification (HS256 and ES256/RS256 via JWKS), roles, tenant resolution.

The JWKS endpoint is an HTTP dependency, served by an in-process httpx MockTransport; the database
is always the real one.
"""

import asyncio
import dataclasses
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from app.core.auth import JWKS_COOLDOWN_S, JWKS_TTL_S, TokenVerifier, issue_token
from app.core.config import Settings
from app.main import create_app
from tests.helpers import TEST_JWT_SECRET, User, create_user
from tests.jwt_support import (
    DROP,
    ISSUER,
    SUPABASE_URL,
    FakeJwks,
    b64url,
    bearer,
    claims,
    ec_key,
    hs256,
    raw_hs256,
    rsa_key,
    sign,
    unsigned,
)

EC1 = ec_key("ec-1")
RSA1 = rsa_key("rsa-1")
EC_ROTATED = ec_key("ec-2")
EC_UNKNOWN = ec_key("ec-unknown")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def jwks_client(
    settings: Settings, fake: FakeJwks, clock: FakeClock | None = None
) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    """An app with both HS256 and the JWKS configured, its own caches, and a fake clock."""
    s = settings.model_copy(update={"supabase_url": SUPABASE_URL})
    app = create_app(s, http_transport=fake.transport())
    async with LifespanManager(app):
        state = app.state.motomind
        if clock is not None:
            state.verifier = TokenVerifier(s, state.http, clock=clock)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield c, app


@pytest.fixture(scope="module")
def fake_jwks() -> FakeJwks:
    return FakeJwks(keys=[EC1, RSA1])


@pytest.fixture(scope="module")
async def jwks_app(settings: Settings, fake_jwks: FakeJwks) -> AsyncIterator[FastAPI]:
    s = settings.model_copy(update={"supabase_url": SUPABASE_URL})
    app = create_app(s, http_transport=fake_jwks.transport())
    async with LifespanManager(app):
        yield app


@pytest.fixture
async def jc(jwks_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=jwks_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


@pytest.fixture(scope="module")
async def user(db: asyncpg.Pool) -> User:
    return await create_user(db)


def mint(mode: str, payload: dict[str, Any], **headers: Any) -> str:
    if mode == "hs":
        return hs256(payload, **headers)
    if mode == "rs":
        return sign(RSA1, payload, **headers)
    return sign(EC1, payload, **headers)


def assert_invalid_token(resp: httpx.Response) -> None:
    assert resp.status_code == 401, resp.text
    assert resp.headers["content-type"] == "application/problem+json"
    body = resp.json()
    assert body["code"] == "invalid_token"
    assert body["status"] == 401
    assert resp.headers["www-authenticate"].startswith(
        'Bearer error="invalid_token", error_description="'
    )


# --- Allow twins -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["hs", "es", "rs"])
async def test_a_valid_token_is_accepted(jc: httpx.AsyncClient, user: User, mode: str) -> None:
    resp = await jc.get("/v1/me", headers=bearer(mint(mode, claims(user.id))))
    assert resp.status_code == 200, resp.text
    assert resp.json()["id"] == str(user.id)


async def test_hs256_only_app_accepts_a_token_without_issuer(
    client: httpx.AsyncClient, user: User
) -> None:
    token = hs256(claims(user.id, issuer=None))
    assert (await client.get("/v1/me", headers=bearer(token))).status_code == 200


async def test_issue_token_makes_a_token_the_app_accepts(
    client: httpx.AsyncClient, settings: Settings, user: User
) -> None:
    token = issue_token(
        settings, sub=str(user.id), role="authenticated", ttl=60, extra={"email": user.email}
    )
    resp = await client.get("/v1/me", headers=bearer(token))
    assert resp.status_code == 200
    assert resp.json()["email"] == user.email
    with pytest.raises(ValueError, match="secret"):
        issue_token(
            settings.model_copy(update={"supabase_jwt_secret": None}),
            sub=None,
            role="service_role",
            ttl=60,
            extra=None,
        )


async def test_leeway_accepts_a_token_expired_a_few_seconds_ago(
    jc: httpx.AsyncClient, user: User
) -> None:
    now = int(time.time())
    token = mint("es", claims(user.id, exp=now - 10, iat=now - 100))
    assert (await jc.get("/v1/me", headers=bearer(token))).status_code == 200


# --- The attack catalogue, on both paths ---------------------------------------------------------

EVIL = "https://evil.test/jwks.json"


def _now() -> int:
    return int(time.time())


def _tamper(token: str) -> str:
    """Same signature, a payload claiming another user."""
    header, _, sig = token.split(".")
    body = b64url(json.dumps(claims(uuid.uuid4())).encode())
    return f"{header}.{body}.{sig}"


async def me_status(c: httpx.AsyncClient, token: str) -> int:
    return (await c.get("/v1/me", headers=bearer(token))).status_code


ATTACKS: dict[str, Callable[[str, uuid.UUID], str]] = {
    "garbage": lambda m, u: "garbage",
    "two_segments": lambda m, u: mint(m, claims(u)).rsplit(".", 1)[0],
    "four_segments": lambda m, u: mint(m, claims(u)) + ".AAAA",
    "bad_base64_header": lambda m, u: "!!!." + mint(m, claims(u)).split(".", 1)[1],
    "header_not_object": lambda m, u: b64url(b"[1]") + "." + mint(m, claims(u)).split(".", 1)[1],
    "alg_none": lambda m, u: unsigned(claims(u), "none"),
    "alg_None": lambda m, u: unsigned(claims(u), "None"),
    "alg_NONE": lambda m, u: unsigned(claims(u), "NONE"),
    "alg_nOnE": lambda m, u: unsigned(claims(u), "nOnE"),
    "wrong_secret": lambda m, u: (
        hs256(claims(u), secret="wrong-" + "y" * 40)
        if m == "hs"
        else sign(dataclasses.replace(EC_UNKNOWN, kid="ec-1"), claims(u))
    ),
    "tampered_payload": lambda m, u: _tamper(mint(m, claims(u))),
    "expired": lambda m, u: mint(m, claims(u, exp=_now() - 120, iat=_now() - 3600)),
    "nbf_future": lambda m, u: mint(m, claims(u, nbf=_now() + 3600)),
    "wrong_aud": lambda m, u: mint(m, claims(u, aud="someone-else")),
    "wrong_aud_list": lambda m, u: mint(m, claims(u, aud=["a", "b"])),
    "missing_aud": lambda m, u: mint(m, claims(u, aud=DROP)),
    "missing_exp": lambda m, u: mint(m, claims(u, exp=DROP)),
    "missing_sub": lambda m, u: mint(m, claims(u, sub=DROP)),
    "non_uuid_sub": lambda m, u: mint(m, claims("not-a-uuid")),
    "wrong_iss": lambda m, u: mint(m, claims(u, iss="https://evil.test/auth/v1")),
    "missing_iss": lambda m, u: mint(m, claims(u, iss=DROP)),
    "role_anon": lambda m, u: mint(m, claims(u, role="anon")),
    "role_missing": lambda m, u: mint(m, claims(u, role=DROP)),
    "role_postgres": lambda m, u: mint(m, claims(u, role="postgres")),
    "exp_string": lambda m, u: mint(m, claims(u, exp="soon")),
    "exp_numeric_string": lambda m, u: mint(m, claims(u, exp=str(_now() + 3600))),
    "exp_list": lambda m, u: mint(m, claims(u, exp=[_now() + 3600])),
    "exp_object": lambda m, u: mint(m, claims(u, exp={"at": 1})),
    "exp_null": lambda m, u: mint(m, claims(u, exp=None)),
    "nbf_string": lambda m, u: mint(m, claims(u, nbf="later")),
    "tenant_not_uuid": lambda m, u: mint(m, claims(u, tenant_id="acme")),
    "oversized_64k": lambda m, u: mint(m, claims(u, pad="x" * 64 * 1024)),
    "es256_unknown_key": lambda m, u: sign(EC_UNKNOWN, claims(u)),
    "unknown_kid": lambda m, u: sign(dataclasses.replace(EC1, kid="nope"), claims(u)),
    "kid_path": lambda m, u: sign(dataclasses.replace(EC1, kid="../../etc/passwd"), claims(u)),
    "kid_url": lambda m, u: sign(dataclasses.replace(EC1, kid="https://evil.test/k"), claims(u)),
    "kid_not_string": lambda m, u: mint(m, claims(u), kid=7),
    "hs256_secret_is_pem": lambda m, u: raw_hs256(
        {"alg": "HS256", "typ": "JWT", "kid": "ec-1"}, claims(u), EC1.public_pem
    ),
    "hs256_secret_is_der": lambda m, u: raw_hs256(
        {"alg": "HS256", "typ": "JWT", "kid": "ec-1"}, claims(u), EC1.public_der
    ),
    "hs256_secret_is_jwk_x": lambda m, u: raw_hs256(
        {"alg": "HS256", "kid": "ec-1"}, claims(u), EC1.jwk["x"].encode()
    ),
    "hs256_secret_is_jwk_json": lambda m, u: raw_hs256(
        {"alg": "HS256", "kid": "rsa-1"}, claims(u), json.dumps(RSA1.jwk).encode()
    ),
    "hs256_secret_is_rsa_pem": lambda m, u: raw_hs256(
        {"alg": "HS256", "kid": "rsa-1"}, claims(u), RSA1.public_pem
    ),
    "rs256_header_on_ec_key": lambda m, u: sign(dataclasses.replace(RSA1, kid="ec-1"), claims(u)),
    "es384": lambda m, u: unsigned(claims(u), "ES384"),
    "jku": lambda m, u: mint(m, claims(u), jku=EVIL),
    "x5u": lambda m, u: mint(m, claims(u), x5u=EVIL),
    "jwk_embedded": lambda m, u: sign(EC_UNKNOWN, claims(u), jwk=EC_UNKNOWN.jwk),
    "x5c": lambda m, u: mint(m, claims(u), x5c=["MIIB"]),
    "crit": lambda m, u: mint(m, claims(u), crit=["exp"]),
}


@pytest.mark.parametrize("mode", ["hs", "es"])
@pytest.mark.parametrize("attack", sorted(ATTACKS))
async def test_attack_is_401(
    jc: httpx.AsyncClient, fake_jwks: FakeJwks, user: User, mode: str, attack: str
) -> None:
    token = ATTACKS[attack](mode, user.id)
    before = list(fake_jwks.requests)
    resp = await jc.get("/v1/me", headers=bearer(token))
    assert_invalid_token(resp)
    assert "Traceback" not in resp.text
    new = fake_jwks.requests[len(before) :]
    # Never an outbound request anywhere but the configured JWKS URL (jku, x5u, kid paths).
    assert all(str(r.url).startswith(f"{SUPABASE_URL}/auth/v1/.well-known/") for r in new)
    assert not any("evil" in str(r.url) or "passwd" in str(r.url) for r in fake_jwks.requests)


async def test_no_token_is_401_with_bare_challenge(jc: httpx.AsyncClient) -> None:
    resp = await jc.get("/v1/me")
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"] == "Bearer"
    assert resp.json()["code"] == "missing_token"
    for header in ("Basic dXNlcjpwYXNz", "Bearer", "Bearer  ", "token abc"):
        resp = await jc.get("/v1/me", headers={"Authorization": header})
        assert resp.status_code == 401, header
        assert resp.headers["www-authenticate"].startswith("Bearer")


async def test_asymmetric_token_on_an_hmac_only_app_is_401(
    client: httpx.AsyncClient, user: User
) -> None:
    assert_invalid_token(await client.get("/v1/me", headers=bearer(mint("es", claims(user.id)))))
    assert_invalid_token(await client.get("/v1/me", headers=bearer(mint("rs", claims(user.id)))))


async def test_oversized_token_under_the_limit_still_works(
    jc: httpx.AsyncClient, user: User
) -> None:
    token = mint("hs", claims(user.id, pad="x" * 4000))
    assert len(token) < 8192
    assert (await jc.get("/v1/me", headers=bearer(token))).status_code == 200


# --- Roles --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["hs", "es"])
async def test_service_role_is_403_on_tenant_routes(jc: httpx.AsyncClient, mode: str) -> None:
    token = mint(mode, claims(role="service_role", sub=DROP))
    resp = await jc.get("/v1/me", headers=bearer(token))
    assert resp.status_code == 403
    assert resp.json()["code"] == "forbidden"
    resp = await jc.patch("/v1/tenant", headers=bearer(token), json={"name": "x"})
    assert resp.status_code == 403


# --- JWKS: cache, rotation, cooldown, availability -----------------------------------------------


async def test_jwks_is_cached_and_refetched_after_ten_minutes(
    settings: Settings, user: User
) -> None:
    fake, clock = FakeJwks(keys=[EC1]), FakeClock()
    async with jwks_client(settings, fake, clock) as (c, _):
        for i in range(20):
            token = sign(EC1, claims(user.id, n=i))
            assert await me_status(c, token) == 200
        assert fake.jwks_fetches == 1
        clock.now += JWKS_TTL_S + 1
        token = sign(EC1, claims(user.id, n="after-ttl"))
        assert await me_status(c, token) == 200
        assert fake.jwks_fetches == 2


async def test_key_rotation_is_picked_up_without_a_restart(settings: Settings, user: User) -> None:
    fake, clock = FakeJwks(keys=[EC1]), FakeClock()
    async with jwks_client(settings, fake, clock) as (c, _):
        assert (
            await c.get("/v1/me", headers=bearer(sign(EC1, claims(user.id))))
        ).status_code == 200
        fake.keys.append(EC_ROTATED)
        clock.now += JWKS_COOLDOWN_S + 1
        resp = await c.get("/v1/me", headers=bearer(sign(EC_ROTATED, claims(user.id))))
        assert resp.status_code == 200
        assert fake.jwks_fetches == 2
        # The old key keeps working while it is published.
        assert (
            await c.get("/v1/me", headers=bearer(sign(EC1, claims(user.id, n=1))))
        ).status_code == 200
        assert fake.jwks_fetches == 2


async def test_unknown_kid_flood_costs_one_fetch_per_cooldown(
    settings: Settings, user: User
) -> None:
    fake, clock = FakeJwks(keys=[EC1]), FakeClock()
    async with jwks_client(settings, fake, clock) as (c, _):
        assert (
            await c.get("/v1/me", headers=bearer(sign(EC1, claims(user.id))))
        ).status_code == 200
        assert fake.jwks_fetches == 1

        def flood(n: int) -> list[str]:
            return [
                sign(dataclasses.replace(EC_UNKNOWN, kid=f"k{uuid.uuid4().hex}"), claims(user.id))
                for _ in range(n)
            ]

        clock.now += JWKS_COOLDOWN_S + 1
        tokens = flood(100)
        results = await asyncio.gather(*(c.get("/v1/me", headers=bearer(t)) for t in tokens))
        assert {r.status_code for r in results} == {401}
        assert fake.jwks_fetches == 2  # one refetch for the whole flood
        for t in flood(50):  # still inside the cooldown: none
            assert await me_status(c, t) == 401
        assert fake.jwks_fetches == 2
        clock.now += JWKS_COOLDOWN_S + 1
        for t in flood(50):
            assert await me_status(c, t) == 401
        assert fake.jwks_fetches == 3


async def test_jwks_unreachable_without_cached_keys_is_503(settings: Settings, user: User) -> None:
    fake, clock = FakeJwks(keys=[EC1], reachable=False), FakeClock()
    async with jwks_client(settings, fake, clock) as (c, _):
        resp = await c.get("/v1/me", headers=bearer(sign(EC1, claims(user.id))))
        assert resp.status_code == 503
        assert resp.headers["content-type"] == "application/problem+json"
        assert resp.headers["retry-after"]
        assert resp.json()["code"] == "auth_unavailable"
        # HS256 does not depend on the JWKS.
        assert await me_status(c, hs256(claims(user.id))) == 200
        fake.reachable = True
        clock.now += 5
        resp = await c.get("/v1/me", headers=bearer(sign(EC1, claims(user.id, n=2))))
        assert resp.status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        b"x" * (128 * 1024),
        b'{"keys": [' + b",".join([b'{"kty":"EC"}'] * 20000) + b"]}",
        b"not json",
        b'{"keys": "nope"}',
    ],
)
async def test_a_bad_or_huge_jwks_is_not_trusted(
    settings: Settings, user: User, body: bytes
) -> None:
    fake = FakeJwks(keys=[EC1], body=body)
    async with jwks_client(settings, fake, FakeClock()) as (c, _):
        resp = await c.get("/v1/me", headers=bearer(sign(EC1, claims(user.id))))
        assert resp.status_code == 503


async def test_symmetric_and_private_keys_in_the_jwks_are_ignored(
    settings: Settings, user: User
) -> None:
    oct_key = {"kty": "oct", "kid": "oct-1", "k": b64url(b"s" * 32), "alg": "HS256"}
    fake = FakeJwks(body=json.dumps({"keys": [oct_key, EC1.jwk]}).encode())
    async with jwks_client(settings, fake, FakeClock()) as (c, _):
        forged = raw_hs256({"alg": "HS256", "kid": "oct-1"}, claims(user.id), b"s" * 32)
        assert_invalid_token(await c.get("/v1/me", headers=bearer(forged)))
        assert (
            await c.get("/v1/me", headers=bearer(sign(EC1, claims(user.id))))
        ).status_code == 200


async def test_verified_tokens_are_cached_until_exp(settings: Settings, user: User) -> None:
    verifier = TokenVerifier(settings)
    token = hs256(claims(user.id, issuer=None, exp=int(time.time()) + 1))
    first = await verifier.verify(token)
    assert await verifier.verify(token) is first  # served from the cache: no signature check
    await asyncio.sleep(1.5)
    # Past `exp` the cache no longer answers (the 30 s leeway then applies to a full check).
    again = await verifier.verify(token)
    assert again is not first
    assert again == first


async def _timeline_status(c: httpx.AsyncClient, token: str) -> int:
    """GET /v1/timeline's status: a list route, which verifies its token like every route."""
    return (await c.get("/v1/timeline", headers=bearer(token))).status_code


async def test_a_removed_key_ends_its_cached_tokens_at_the_next_refresh(
    settings: Settings, user: User
) -> None:
    """Refreshed for an unknown kid (after the cooldown): the tokens of a key no longer
    published are refused at once, on every route; a still-published key's are not."""
    fake, clock = FakeJwks(keys=[EC1, EC_ROTATED]), FakeClock()
    async with jwks_client(settings, fake, clock) as (c, _):
        for_list, for_me, kept = (
            sign(EC1, claims(user.id, n="list")),
            sign(EC1, claims(user.id, n="me")),
            sign(EC_ROTATED, claims(user.id)),
        )
        for token in (for_list, for_me, kept):
            assert await me_status(c, token) == 200  # verified and cached
            assert await _timeline_status(c, token) == 200  # taken from the cache
        assert fake.jwks_fetches == 1

        fake.keys.remove(EC1)
        # Not refreshed yet: the key set is fresh and still has EC1.
        assert await _timeline_status(c, for_list) == 200

        clock.now += JWKS_COOLDOWN_S + 1
        assert await me_status(c, sign(EC_UNKNOWN, claims(user.id))) == 401
        assert fake.jwks_fetches == 2  # the refresh: EC1 is gone
        assert await _timeline_status(c, for_list) == 401
        assert_invalid_token(await c.get("/v1/me", headers=bearer(for_me)))
        assert await _timeline_status(c, for_me) == 401
        # Allow twin: a key still published keeps its cached tokens, with no fetch.
        assert await _timeline_status(c, kept) == 200
        assert await me_status(c, kept) == 200
        assert await me_status(c, hs256(claims(user.id))) == 200
        assert fake.jwks_fetches == 2


async def test_a_key_set_past_its_lifetime_is_fetched_again_before_a_cached_token_is_taken(
    settings: Settings, user: User
) -> None:
    """Past the JWKS lifetime no cached token is taken on the old key set's word: the key set
    is fetched again (by the normal path), and a key removed meanwhile ends its tokens."""
    fake, clock = FakeJwks(keys=[EC1, EC_ROTATED]), FakeClock()
    async with jwks_client(settings, fake, clock) as (c, _):
        removed, kept = sign(EC1, claims(user.id)), sign(EC_ROTATED, claims(user.id))
        for token in (removed, kept):
            assert await _timeline_status(c, token) == 200  # verified, then cached
            assert await _timeline_status(c, token) == 200  # from the cache
        fake.keys.remove(EC1)
        clock.now += JWKS_TTL_S + 1
        # The cache declines (the key set is stale): the key set is fetched again, and refuses.
        assert await _timeline_status(c, removed) == 401
        assert fake.jwks_fetches == 2
        assert_invalid_token(await c.get("/v1/me", headers=bearer(removed)))
        # Allow twin: the key still published, unchanged, keeps its token cached.
        assert await _timeline_status(c, kept) == 200
        assert fake.jwks_fetches == 2


async def test_a_key_republished_unchanged_keeps_its_cached_tokens(
    settings: Settings, user: User
) -> None:
    """A refresh that finds a key unchanged keeps its tokens cached; a key replaced under the
    same kid does not (its old tokens fail the new key's signature check)."""
    fake, clock = FakeJwks(keys=[EC1]), FakeClock()
    async with jwks_client(settings, fake, clock) as (c, _):
        token = sign(EC1, claims(user.id))
        assert await _timeline_status(c, token) == 200
        assert await _timeline_status(c, token) == 200
        clock.now += JWKS_TTL_S + 1
        assert await me_status(c, sign(EC1, claims(user.id, n=2))) == 200  # refreshes
        assert fake.jwks_fetches == 2
        assert await _timeline_status(c, token) == 200
        fake.keys[:] = [ec_key(EC1.kid)]  # same kid, another key
        clock.now += JWKS_TTL_S + 1
        assert await me_status(c, sign(fake.keys[0], claims(user.id, n=3))) == 200  # refreshes
        assert fake.jwks_fetches == 3
        assert await _timeline_status(c, token) == 401


# --- Tenant resolution ---------------------------------------------------------------------------


async def _tenant_of(c: httpx.AsyncClient, token: str) -> httpx.Response:
    return await c.get("/v1/tenant", headers=bearer(token))


async def test_tenant_from_the_claim(jc: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    a, b = await create_user(db), await create_user(db)
    resp = await _tenant_of(jc, mint("hs", claims(a.id, tenant_id=str(b.tenant_id))))
    assert resp.json()["id"] == str(b.tenant_id)


async def test_tenant_from_app_metadata(jc: httpx.AsyncClient, db: asyncpg.Pool) -> None:
    a, b = await create_user(db), await create_user(db)
    token = mint("es", claims(a.id, app_metadata={"tenant_id": str(b.tenant_id)}))
    assert (await _tenant_of(jc, token)).json()["id"] == str(b.tenant_id)


async def test_top_level_claim_wins_over_app_metadata(
    jc: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    a, b = await create_user(db), await create_user(db)
    token = mint(
        "hs",
        claims(a.id, tenant_id=str(a.tenant_id), app_metadata={"tenant_id": str(b.tenant_id)}),
    )
    assert (await _tenant_of(jc, token)).json()["id"] == str(a.tenant_id)


async def test_without_a_tenant_claim_the_profile_decides(
    jc: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    a = await create_user(db)
    resp = await _tenant_of(jc, mint("es", claims(a.id, app_metadata={"provider": "email"})))
    assert resp.status_code == 200
    assert resp.json()["id"] == str(a.tenant_id)


async def test_user_metadata_never_selects_a_tenant(
    jc: httpx.AsyncClient, db: asyncpg.Pool
) -> None:
    a, b = await create_user(db), await create_user(db)
    token = mint("hs", claims(a.id, user_metadata={"tenant_id": str(b.tenant_id)}))
    resp = await _tenant_of(jc, token)
    assert resp.status_code == 200
    assert resp.json()["id"] == str(a.tenant_id)  # the profile's, not user_metadata's
    # And with no profile at all, user_metadata does not rescue it.
    stranger = mint("hs", claims(uuid.uuid4(), user_metadata={"tenant_id": str(b.tenant_id)}))
    assert (await _tenant_of(jc, stranger)).status_code == 403


@pytest.mark.parametrize("mode", ["hs", "es"])
async def test_a_valid_token_without_a_profile_is_403_no_tenant(
    jc: httpx.AsyncClient, mode: str
) -> None:
    resp = await jc.get("/v1/me", headers=bearer(mint(mode, claims(uuid.uuid4()))))
    assert resp.status_code == 403
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.json()["code"] == "no_tenant"


async def test_issuer_is_the_supabase_one(jwks_app: FastAPI) -> None:
    assert jwks_app.state.motomind.verifier.issuer == ISSUER


async def test_openapi_documents_bearer_and_problems(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    schemes = doc["components"]["securitySchemes"]
    assert any(s["type"] == "http" and s["scheme"] == "bearer" for s in schemes.values())
    me = doc["paths"]["/v1/me"]["get"]
    assert me["summary"] and me["description"]
    assert me["security"]
    for status in ("401", "403", "503"):
        content = me["responses"][status]["content"]
        assert content["application/problem+json"]["schema"]["$ref"].endswith("/Problem")
    assert "422" in doc["paths"]["/v1/me"]["patch"]["responses"]
    assert "Problem" in doc["components"]["schemas"]


# --- Supabase's service_role key, and what a 401 says (issue 15, item 3) ------------------------


def supabase_service_key(mode: str, **override: Any) -> str:
    """Shaped like a Supabase project's service_role key: no aud, no sub, iss "supabase"."""
    now = _now()
    payload = {"iss": "supabase", "role": "service_role", "iat": now, "exp": now + 3600}
    payload.update(override)
    return mint(mode, {k: v for k, v in payload.items() if v is not DROP})


@pytest.mark.parametrize("mode", ["hs", "es"])
async def test_supabase_service_key_works_on_ops_only(jc: httpx.AsyncClient, mode: str) -> None:
    key = supabase_service_key(mode)
    resp = await jc.get("/v1/ops/health", headers=bearer(key))
    assert resp.status_code == 200, resp.text
    for path in ("/v1/me", "/v1/vehicles", "/v1/timeline"):
        resp = await jc.get(path, headers=bearer(key))
        assert resp.status_code == 403, (path, resp.text)
        assert resp.json()["code"] == "forbidden"


async def test_supabase_service_key_works_without_a_configured_issuer(
    client: httpx.AsyncClient,
) -> None:
    resp = await client.get("/v1/ops/health", headers=bearer(supabase_service_key("hs")))
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize(
    ("token", "detail"),
    [
        (lambda u: supabase_service_key("hs", iss="https://evil.test"), "wrong issuer"),
        (lambda u: supabase_service_key("hs", exp=_now() - 120), "token expired"),
        # A user's token without an audience is refused, whatever its issuer says.
        (lambda u: mint("hs", claims(u, aud=DROP, iss="supabase")), "missing audience"),
        (lambda u: mint("hs", claims(u, iss="supabase")), "wrong issuer"),
    ],
    ids=["service_wrong_iss", "service_expired", "user_without_aud", "user_iss_supabase"],
)
async def test_only_the_service_key_shape_is_relaxed(
    jc: httpx.AsyncClient, user: User, token: Callable[[uuid.UUID], str], detail: str
) -> None:
    for path in ("/v1/ops/health", "/v1/me"):
        resp = await jc.get(path, headers=bearer(token(user.id)))
        assert_invalid_token(resp)
        assert resp.json()["detail"] == detail


FAILED_CHECKS = {
    "expired": "token expired",
    "nbf_future": "token not yet valid",
    "missing_aud": "missing audience",
    "wrong_aud": "wrong audience",
    "wrong_aud_list": "wrong audience",
    "missing_iss": "missing issuer",
    "wrong_iss": "wrong issuer",
    "wrong_secret": "bad signature",
    "tampered_payload": "bad signature",
    "garbage": "malformed token",
    "bad_base64_header": "malformed token",
}


@pytest.mark.parametrize("attack", sorted(FAILED_CHECKS))
async def test_a_401_says_which_check_failed(
    jc: httpx.AsyncClient, user: User, attack: str
) -> None:
    resp = await jc.get("/v1/me", headers=bearer(ATTACKS[attack]("hs", user.id)))
    assert_invalid_token(resp)
    assert resp.json()["detail"] == FAILED_CHECKS[attack]
    assert FAILED_CHECKS[attack] in resp.headers["www-authenticate"]
    assert TEST_JWT_SECRET not in resp.text
    assert TEST_JWT_SECRET not in resp.headers["www-authenticate"]
