"""The project's signing keys from its JWKS: fetched, cached, refreshed; a key's own type decides
its algorithm."""

import asyncio
import base64
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from jose import jwk  # type: ignore[import-untyped]

from app.core.auth.base import (
    JWKS_COOLDOWN_S,
    JWKS_FAILURE_BACKOFF_S,
    JWKS_MAX_BYTES,
    JWKS_TIMEOUT_S,
    JWKS_TTL_S,
    KID_PATTERN,
    PRIVATE_JWK_MEMBERS,
    AuthUnavailableError,
)

log = logging.getLogger("motomind.auth")


@dataclass(frozen=True, eq=False)
class VerifyingKey:
    kid: str | None
    algorithm: str
    key: Any  # a python-jose Key object
    published_as: str = ""  # a JWKS key's public members as published, to spot a change


# --- JWKS ----------------------------------------------------------------------------------------


def b64url_decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _parse_jwk(raw: Any) -> VerifyingKey | None:
    """A public signing key we accept, or None (skipped)."""
    if not isinstance(raw, dict):
        return None
    kid = raw.get("kid")
    if not isinstance(kid, str) or not KID_PATTERN.match(kid):
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
    public = {k: v for k, v in raw.items() if k not in PRIVATE_JWK_MEMBERS}
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
