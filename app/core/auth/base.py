"""What every part of token handling shares: the limits, the roles, the errors, the Identity a
verified token proves."""

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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
KID_PATTERN = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")
TOKEN_CHARS = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")
# A UUID as PostgreSQL and Python write it (fullmatch: `$` would let a trailing newline through).
CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
PRIVATE_JWK_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")

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
