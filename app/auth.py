"""Token -> verified Identity: python-jose wrapped once, strictly (contract §2).

Keys, not tokens, decide the algorithm: the HMAC secret verifies HS256 only, a JWKS key verifies
only the algorithm its type implies (EC P-256 -> ES256, RSA -> RS256), and python-jose always gets
a one-element `algorithms` list and a constructed key object (never a string it could reinterpret).
"""

import asyncio
import base64
import binascii
import hashlib
import json
import logging
import math
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jose import jwk, jwt  # type: ignore[import-untyped]
from jose.exceptions import ExpiredSignatureError, JWTClaimsError  # type: ignore[import-untyped]

from app.config import Settings
from app.errors import ProblemError

log = logging.getLogger("motomind.auth")

MAX_TOKEN_BYTES = 8 * 1024
LEEWAY_S = 30
JWKS_TTL_S = 600.0
JWKS_COOLDOWN_S = 30.0
JWKS_FAILURE_BACKOFF_S = 2.0
JWKS_MAX_BYTES = 64 * 1024
JWKS_TIMEOUT_S = 5.0
TOKEN_CACHE_SIZE = 10_000

HMAC_ALGORITHM = "HS256"
ASYMMETRIC_ALGORITHMS = frozenset({"ES256", "RS256"})
# Headers that would let the token choose its own key: never honoured.
FORBIDDEN_HEADERS = ("jku", "x5u", "jwk", "x5c", "x5t", "x5t#S256", "crit")
_KID = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")
_TOKEN_CHARS = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
# A UUID as PostgreSQL and Python write it (fullmatch: `$` would let a trailing newline through).
CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_PRIVATE_JWK_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")

ROLE_AUTHENTICATED = "authenticated"
ROLE_SERVICE = "service_role"
ROLE_ANON = "anon"
# The issuer of Supabase's service_role (and anon) API keys.
SUPABASE_SERVICE_ISSUER = "supabase"


class InvalidTokenError(Exception):
    """The token proves nothing: 401 invalid_token. The message is safe to show the client."""


class AuthUnavailableError(Exception):
    """The keys needed to verify the token cannot be fetched: 503, not 401."""


@dataclass(frozen=True)
class Identity:
    """Who is calling, as proven by a verified token."""

    user_id: uuid.UUID | None  # None only for service_role tokens (Supabase's come without sub)
    role: str
    tenant_id: uuid.UUID | None  # from the claims; None means "look at the profile"
    claims: Mapping[str, Any] = field(repr=False, hash=False)


@dataclass(frozen=True)
class UserIdentity(Identity):
    """An `authenticated` user's identity: always a user id (the token's `sub`)."""

    user_id: uuid.UUID


@dataclass(frozen=True, eq=False)
class VerifyingKey:
    kid: str | None
    algorithm: str
    key: Any  # a python-jose Key object
    published_as: str = ""  # a JWKS key's public members as published, to spot a change


# --- JWKS ----------------------------------------------------------------------------------------


def _b64url_decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _parse_jwk(raw: Any) -> VerifyingKey | None:
    """A public signing key we accept, or None (skipped)."""
    if not isinstance(raw, dict):
        return None
    kid = raw.get("kid")
    if not isinstance(kid, str) or not _KID.match(kid):
        return None
    if raw.get("use") not in (None, "sig"):
        return None
    ops = raw.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        return None
    kty = raw.get("kty")
    if kty == "EC" and raw.get("crv") == "P-256":
        algorithm = "ES256"
    elif kty == "RSA":
        algorithm = "RS256"
    else:  # symmetric ("oct") keys and other curves are never taken from a JWKS
        return None
    if raw.get("alg") not in (None, algorithm):
        return None
    public = {k: v for k, v in raw.items() if k not in _PRIVATE_JWK_MEMBERS}
    try:
        key = jwk.construct(public, algorithm)
    except Exception:
        log.warning("JWKS key %s could not be loaded; skipped", kid)
        return None
    return VerifyingKey(
        kid=kid, algorithm=algorithm, key=key, published_as=json.dumps(public, sort_keys=True)
    )


class JwksCache:
    """Keys from `{SUPABASE_URL}/auth/v1/.well-known/jwks.json`.

    Fresh for at most JWKS_TTL_S; an unknown `kid` triggers at most one refetch per
    JWKS_COOLDOWN_S; one fetch at a time, concurrent callers share its result.
    """

    def __init__(
        self,
        url: str,
        http: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._http = http
        self._clock = clock
        self._lock = asyncio.Lock()
        self._keys: dict[str, VerifyingKey] | None = None
        self._fetched_at = -math.inf
        self._last_attempt = -math.inf
        self._last_failed = False
        self._generation = 0
        self.fetches = 0  # attempts, for tests and metrics

    def _fresh(self, now: float) -> bool:
        return self._keys is not None and now - self._fetched_at < JWKS_TTL_S

    def current(self, kid: str) -> VerifyingKey | None:
        """The key published as `kid` in the fresh key set, else None; never fetches (it answers
        the verified-token cache: a token is taken from there only while its key is current)."""
        keys = self._keys
        if keys is None or self._clock() - self._fetched_at >= JWKS_TTL_S:
            return None
        return keys.get(kid)

    async def get(self, kid: str) -> VerifyingKey | None:
        """The key named `kid`, None if unknown; AuthUnavailableError when no fresh keys exist."""
        now = self._clock()
        if self._fresh(now) and self._keys is not None:
            found = self._keys.get(kid)
            if found is not None:
                return found
            await self._refresh(unknown_kid=True)
            return self._keys.get(kid) if self._keys is not None else None
        await self._refresh(unknown_kid=False)
        if not self._fresh(self._clock()) or self._keys is None:
            raise AuthUnavailableError("signing keys unavailable")
        return self._keys.get(kid)

    async def _refresh(self, *, unknown_kid: bool) -> None:
        seen = self._generation
        async with self._lock:
            if self._generation != seen:
                return  # another caller fetched while this one waited: use its result
            now = self._clock()
            since = now - self._last_attempt
            if unknown_kid and since < JWKS_COOLDOWN_S:
                return
            if self._last_failed and since < JWKS_FAILURE_BACKOFF_S:
                return
            self._last_attempt = now
            self.fetches += 1
            try:
                keys = await self._fetch()
            except Exception as exc:
                self._last_failed = True
                log.warning("JWKS fetch from %s failed: %s", self.url, type(exc).__name__)
                if not self._fresh(now):
                    self._keys = None  # never verify with keys older than the TTL
            else:
                self._last_failed = False
                # A key published unchanged stays the same object: tokens it verified stay cached.
                previous = self._keys or {}
                for kid, key in keys.items():
                    kept = previous.get(kid)
                    if kept is not None and kept.published_as == key.published_as:
                        keys[kid] = kept
                self._keys, self._fetched_at = keys, now
            finally:
                self._generation += 1

    async def _fetch(self) -> dict[str, VerifyingKey]:
        async with self._http.stream(
            "GET",
            self.url,
            timeout=JWKS_TIMEOUT_S,
            follow_redirects=False,
            headers={"Accept": "application/json"},
        ) as response:
            if response.status_code != 200:
                raise ValueError(f"JWKS answered {response.status_code}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > JWKS_MAX_BYTES:
                    raise ValueError("JWKS response too large")
        document = json.loads(bytes(body))
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ValueError("not a JWKS document")
        keys: dict[str, VerifyingKey] = {}
        for raw in document["keys"]:
            parsed = _parse_jwk(raw)
            if parsed is not None and parsed.kid is not None:
                keys[parsed.kid] = parsed
        return keys


# --- Verification --------------------------------------------------------------------------------


class _TokenCache:
    """Verified claims by sha256 of the token, each until its `exp` (bounded, LRU), with the key
    that verified it: the caller takes an entry only while that key is still the one in use."""

    def __init__(self, size: int = TOKEN_CACHE_SIZE) -> None:
        self._size = size
        self._entries: OrderedDict[bytes, tuple[dict[str, Any], float, VerifyingKey]] = (
            OrderedDict()
        )

    def get(self, digest: bytes) -> tuple[dict[str, Any], VerifyingKey] | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        claims, expires, key = entry
        if time.time() >= expires:
            del self._entries[digest]
            return None
        self._entries.move_to_end(digest)
        return claims, key

    def discard(self, digest: bytes) -> None:
        self._entries.pop(digest, None)

    def put(self, digest: bytes, claims: dict[str, Any], expires: float, key: VerifyingKey) -> None:
        self._entries[digest] = (claims, expires, key)
        self._entries.move_to_end(digest)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _describe(exc: Exception) -> str:
    """Which check failed, in words that name no key or secret (the 401's detail)."""
    if isinstance(exc, ExpiredSignatureError):
        return "token expired"
    message = str(exc)
    if isinstance(exc, JWTClaimsError):
        if "nbf" in message or "not yet valid" in message:
            return "token not yet valid"
        if "iat" in message or "issued at" in message:
            return "invalid issued-at time"
        return "invalid claims"
    if "Signature verification failed" in message:
        return "bad signature"
    return "malformed token"


class TokenVerifier:
    """Signature and standard claims (exp, nbf, iat, aud, iss). Roles are checked by the caller."""

    def __init__(
        self,
        settings: Settings,
        http: httpx.AsyncClient | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.audience = settings.jwt_audience
        self.issuer = settings.expected_issuer
        secret = settings.supabase_jwt_secret
        self._hmac: VerifyingKey | None = None
        if secret is not None:
            self._hmac = VerifyingKey(
                kid=None,
                algorithm=HMAC_ALGORITHM,
                key=jwk.construct(secret.get_secret_value().encode(), HMAC_ALGORITHM),
            )
        self.jwks: JwksCache | None = None
        if settings.supabase_url:
            if http is None:
                raise ValueError("SUPABASE_URL is set: an HTTP client is needed for the JWKS")
            url = f"{settings.supabase_url}/auth/v1/.well-known/jwks.json"
            self.jwks = JwksCache(url, http, clock=clock)
        self._cache = _TokenCache()

    async def verify(self, token: str) -> dict[str, Any]:
        """The verified claims. Raises InvalidTokenError or AuthUnavailableError, nothing else."""
        if len(token) > MAX_TOKEN_BYTES:
            raise InvalidTokenError("token too large")
        if not _TOKEN_CHARS.match(token):
            raise InvalidTokenError("malformed token")
        digest = hashlib.sha256(token.encode()).digest()
        cached = self._cached(digest)
        if cached is not None:
            return cached
        key = await self._select_key(token)
        # python-jose checks the signature and the times; audience and issuer are checked below,
        # where Supabase's service_role key (no `aud`, `iss: supabase`) can be told apart.
        options = {
            "verify_signature": True,
            "verify_aud": False,
            "verify_iat": True,
            "verify_exp": True,
            "verify_nbf": True,
            "verify_iss": False,
            "verify_sub": True,
            "verify_jti": True,
            "verify_at_hash": False,
            "require_exp": True,
            "leeway": LEEWAY_S,
        }
        try:
            claims = jwt.decode(token, key.key, algorithms=[key.algorithm], options=options)
        except Exception as exc:  # python-jose raises more than JWTError on hostile input
            raise InvalidTokenError(_describe(exc)) from None
        if not isinstance(claims, dict):
            raise InvalidTokenError("invalid claims")
        for name in ("exp", "nbf", "iat"):
            if name in claims and not _is_number(claims[name]):
                raise InvalidTokenError(f"{name} must be a number")
        self._check_audience_and_issuer(claims)
        self._cache.put(digest, claims, float(claims["exp"]), key)
        return claims

    def _check_audience_and_issuer(self, claims: Mapping[str, Any]) -> None:
        """User tokens: `aud` must name our audience, `iss` must be the configured issuer.
        Supabase's service_role key carries no `aud` and `iss: "supabase"`: accepted as such (it
        is signed with the project's key; identity_for admits the role on /v1/ops only)."""
        service = claims.get("role") == ROLE_SERVICE
        if not (service and "aud" not in claims):
            audience = claims.get("aud")
            if audience is None:
                raise InvalidTokenError("missing audience")
            audiences = [audience] if isinstance(audience, str) else audience
            if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
                raise InvalidTokenError("malformed audience")
            if self.audience not in audiences:
                raise InvalidTokenError("wrong audience")
        if self.issuer is None:
            return
        issuer = claims.get("iss")
        if issuer is None:
            raise InvalidTokenError("missing issuer")
        if issuer != self.issuer and not (service and issuer == SUPABASE_SERVICE_ISSUER):
            raise InvalidTokenError("wrong issuer")

    def _cached(self, digest: bytes) -> dict[str, Any] | None:
        """A cached token's claims while its key is in use: the HMAC secret, or a JWKS key still
        published, unchanged, in a fresh key set. So a key's removal ends its tokens at the next
        refresh of the key set, and a key set past its lifetime is fetched again (by `verify`)
        before any of its tokens is taken again."""
        entry = self._cache.get(digest)
        if entry is None:
            return None
        claims, key = entry
        if key.kid is not None and (self.jwks is None or self.jwks.current(key.kid) is not key):
            self._cache.discard(digest)
            return None
        return claims

    async def _select_key(self, token: str) -> VerifyingKey:
        try:
            header = json.loads(_b64url_decode(token.split(".", 1)[0]))
        except (ValueError, binascii.Error, UnicodeDecodeError, RecursionError):
            raise InvalidTokenError("malformed token header") from None
        if not isinstance(header, dict):
            raise InvalidTokenError("malformed token header")
        alg = header.get("alg")
        if not isinstance(alg, str) or alg.strip().lower() == "none":
            raise InvalidTokenError("unsigned tokens are not accepted")
        for name in FORBIDDEN_HEADERS:
            if name in header:
                raise InvalidTokenError(f"header {name} is not accepted")
        kid = header.get("kid")
        if kid is not None and (not isinstance(kid, str) or not _KID.match(kid) or ".." in kid):
            raise InvalidTokenError("malformed kid")
        if alg == HMAC_ALGORITHM:
            # The HMAC secret only; never a JWKS key, whatever `kid` names.
            if self._hmac is None:
                raise InvalidTokenError("HS256 tokens are not accepted")
            return self._hmac
        if alg not in ASYMMETRIC_ALGORITHMS or self.jwks is None:
            raise InvalidTokenError("signing algorithm not accepted")
        if kid is None:
            raise InvalidTokenError("token has no kid")
        found = await self.jwks.get(kid)
        if found is None:
            raise InvalidTokenError("unknown signing key")
        return found


# --- Identity and roles --------------------------------------------------------------------------


def _tenant_from(value: Any) -> uuid.UUID:
    if not isinstance(value, str) or not CANONICAL_UUID.fullmatch(value.lower()):
        raise InvalidTokenError("tenant_id is not a UUID")
    return uuid.UUID(value)


def tenant_from_claims(claims: Mapping[str, Any]) -> uuid.UUID | None:
    """Top-level `tenant_id`, else `app_metadata.tenant_id`; `user_metadata` is never read."""
    if claims.get("tenant_id") is not None:
        return _tenant_from(claims["tenant_id"])
    app_metadata = claims.get("app_metadata")
    if isinstance(app_metadata, dict) and app_metadata.get("tenant_id") is not None:
        return _tenant_from(app_metadata["tenant_id"])
    return None


def _user_id(claims: Mapping[str, Any]) -> uuid.UUID:
    sub = claims.get("sub")
    if not isinstance(sub, str) or not CANONICAL_UUID.fullmatch(sub):
        raise InvalidTokenError("sub must be a UUID")
    return uuid.UUID(sub)


def identity_for(claims: Mapping[str, Any], *, role: str) -> Identity:
    """Check the token's role against the route's (`authenticated` or `service_role`)."""
    token_role = claims.get("role")
    if token_role == ROLE_ANON:
        raise InvalidTokenError("anonymous tokens are not accepted")
    if token_role not in (ROLE_AUTHENTICATED, ROLE_SERVICE):
        raise InvalidTokenError("role not accepted")
    if token_role != role:
        raise ProblemError(
            403,
            "forbidden",
            "Forbidden",
            f"This route needs a token with role {role}.",
            headers={"WWW-Authenticate": 'Bearer error="insufficient_scope"'},
        )
    if role == ROLE_SERVICE:
        user_id = _user_id(claims) if claims.get("sub") is not None else None
        return Identity(user_id=user_id, role=role, tenant_id=None, claims=claims)
    return UserIdentity(
        user_id=_user_id(claims),
        role=role,
        tenant_id=tenant_from_claims(claims),
        claims=claims,
    )


# --- FastAPI dependencies ------------------------------------------------------------------------

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="SupabaseJWT",
    bearerFormat="JWT",
    description="A Supabase access token: `Authorization: Bearer <token>`.",
)


def invalid_token(description: str) -> ProblemError:
    safe = re.sub(r"[^A-Za-z0-9 ._:()-]", "", description)[:200]
    return ProblemError(
        401,
        "invalid_token",
        "Invalid token",
        safe,
        headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{safe}"'},
    )


def missing_token() -> ProblemError:
    return ProblemError(
        401,
        "missing_token",
        "Authentication required",
        "Send `Authorization: Bearer <access token>`.",
        headers={"WWW-Authenticate": "Bearer"},
    )


def get_verifier(request: Request) -> TokenVerifier:
    verifier = request.app.state.motomind.verifier
    if not isinstance(verifier, TokenVerifier):
        raise TypeError("app state has no TokenVerifier")
    return verifier


# The bearer scheme as a dependency: what puts the security scheme on every operation of the
# OpenAPI document. The connection dependencies (app/db.py) and the ones below take it.
Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]


async def verified_claims(
    request: Request, credentials: HTTPAuthorizationCredentials | None
) -> dict[str, Any]:
    """The token's verified claims, or the problem to answer (401, or 503 without keys)."""
    if credentials is None:
        if request.headers.get("authorization"):
            raise invalid_token("expected a Bearer token")
        raise missing_token()
    try:
        return await get_verifier(request).verify(credentials.credentials)
    except InvalidTokenError as exc:
        raise invalid_token(str(exc)) from None
    except AuthUnavailableError:
        raise ProblemError(
            503,
            "auth_unavailable",
            "Authentication unavailable",
            "The signing keys cannot be fetched right now; retry.",
            headers={"Retry-After": "5"},
        ) from None
    except Exception:  # defence in depth: nothing a token contains may become a 500
        log.exception("token verification failed unexpectedly")
        raise invalid_token("invalid token") from None


def _identity(claims: dict[str, Any], role: str) -> Identity:
    try:
        return identity_for(claims, role=role)
    except InvalidTokenError as exc:
        raise invalid_token(str(exc)) from None


async def user_identity(
    request: Request, credentials: HTTPAuthorizationCredentials | None
) -> UserIdentity:
    """An `authenticated` user's verified identity (tenant routes), else the 401/403."""
    identity = _identity(await verified_claims(request, credentials), ROLE_AUTHENTICATED)
    if not isinstance(identity, UserIdentity):  # pragma: no cover - identity_for makes one
        raise TypeError("an authenticated identity without a user id")
    return identity


async def service_identity(
    request: Request, credentials: HTTPAuthorizationCredentials | None
) -> Identity:
    """A `service_role` token's verified identity (the /v1/ops routes only), else the 401/403."""
    return _identity(await verified_claims(request, credentials), ROLE_SERVICE)


async def require_user(request: Request, credentials: Bearer) -> UserIdentity:
    """The caller, for a route that needs the user id besides its connection (which verifies the
    same token again: a hit of the verified-token cache)."""
    return await user_identity(request, credentials)


CurrentUser = Annotated[UserIdentity, Depends(require_user)]


# --- Issuing (development: `motomind token`) -----------------------------------------------------


def issue_token(
    settings: Settings,
    *,
    sub: str | None,
    role: str,
    ttl: int,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """An HS256 token shaped like Supabase's, signed with SUPABASE_JWT_SECRET."""
    if settings.supabase_jwt_secret is None:
        raise ValueError("no HS256 secret configured (SUPABASE_JWT_SECRET): cannot sign")
    if ttl <= 0:
        raise ValueError("ttl must be positive")
    now = int(time.time())
    claims: dict[str, Any] = dict(extra or {})
    claims.update({"aud": settings.jwt_audience, "role": role, "iat": now, "exp": now + ttl})
    if sub is not None:
        claims["sub"] = sub
    if settings.expected_issuer:
        claims["iss"] = settings.expected_issuer
    token = jwt.encode(
        claims, settings.supabase_jwt_secret.get_secret_value(), algorithm=HMAC_ALGORITHM
    )
    return str(token)
