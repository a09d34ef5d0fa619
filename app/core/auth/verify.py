"""Signature and standard claims, python-jose wrapped once, strictly (contract §2).

Keys, not tokens, decide the algorithm: the HMAC secret verifies HS256 only, a JWKS key verifies
only the algorithm its type implies (EC P-256 -> ES256, RSA -> RS256), and python-jose always gets
a one-element `algorithms` list and a constructed key object (never a string it could reinterpret).
"""

import binascii
import hashlib
import json
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from jose import jwk, jwt  # type: ignore[import-untyped]
from jose.exceptions import ExpiredSignatureError, JWTClaimsError  # type: ignore[import-untyped]

from app.core.auth.base import (
    ASYMMETRIC_ALGORITHMS,
    FORBIDDEN_HEADERS,
    HMAC_ALGORITHM,
    KID_PATTERN,
    LEEWAY_S,
    MAX_TOKEN_BYTES,
    ROLE_SERVICE,
    SUPABASE_SERVICE_ISSUER,
    TOKEN_CACHE_SIZE,
    TOKEN_CHARS,
    InvalidTokenError,
)
from app.core.auth.keys import JwksCache, VerifyingKey, b64url_decode
from app.core.config import Settings

log = logging.getLogger("motomind.auth")


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
        if not TOKEN_CHARS.match(token):
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
            header = json.loads(b64url_decode(token.split(".", 1)[0]))
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
        if kid is not None and (
            not isinstance(kid, str) or not KID_PATTERN.match(kid) or ".." in kid
        ):
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
