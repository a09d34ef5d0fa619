"""Token -> verified Identity (contract §2): base (limits, roles, errors, Identity), keys (the
JWKS), verify (signature and claims, python-jose wrapped once), identity (roles and the FastAPI
dependencies), issue (development tokens)."""

from app.core.auth.base import (
    CANONICAL_UUID,
    JWKS_COOLDOWN_S,
    JWKS_TTL_S,
    ROLE_AUTHENTICATED,
    ROLE_SERVICE,
    AuthUnavailableError,
    Identity,
    InvalidTokenError,
    UserIdentity,
)
from app.core.auth.identity import (
    Bearer,
    CurrentUser,
    identity_for,
    require_user,
    service_identity,
    tenant_from_claims,
    user_identity,
)
from app.core.auth.issue import issue_token
from app.core.auth.keys import JwksCache, VerifyingKey
from app.core.auth.verify import TokenVerifier

__all__ = [
    "CANONICAL_UUID",
    "JWKS_COOLDOWN_S",
    "JWKS_TTL_S",
    "ROLE_AUTHENTICATED",
    "ROLE_SERVICE",
    "AuthUnavailableError",
    "Bearer",
    "CurrentUser",
    "Identity",
    "InvalidTokenError",
    "JwksCache",
    "TokenVerifier",
    "UserIdentity",
    "VerifyingKey",
    "identity_for",
    "issue_token",
    "require_user",
    "service_identity",
    "tenant_from_claims",
    "user_identity",
]
