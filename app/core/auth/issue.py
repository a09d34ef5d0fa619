"""Issuing tokens shaped like Supabase's, for development (`motomind token`, `motomind demo`)."""

import time
from collections.abc import Mapping
from typing import Any

from jose import jwt  # type: ignore[import-untyped]

from app.core.auth.base import HMAC_ALGORITHM
from app.core.config import Settings

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
