"""Verified claims -> the caller's Identity and role, and the FastAPI dependencies that give a
route its caller (401 with the failed check, 403 for the wrong role)."""

import logging
import re
import uuid
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.core.auth.base import (
    CANONICAL_UUID,
    ROLE_ANON,
    ROLE_AUTHENTICATED,
    ROLE_SERVICE,
    AuthUnavailableError,
    Identity,
    InvalidTokenError,
    UserIdentity,
)
from app.core.auth.verify import TokenVerifier
from app.core.errors import ProblemError

log = logging.getLogger("motomind.auth")


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
# OpenAPI document. The connection dependencies (app/core/db.py) and the ones below take it.
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
