"""Test signing keys, a fake JWKS endpoint (HTTP, not the database) and token makers."""

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jwt

from tests.helpers import TEST_JWT_SECRET

SUPABASE_URL = "https://project.supabase.test"
ISSUER = f"{SUPABASE_URL}/auth/v1"
JWKS_URL = f"{SUPABASE_URL}/auth/v1/.well-known/jwks.json"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int_bytes(value: int, length: int | None = None) -> bytes:
    length = length or (value.bit_length() + 7) // 8
    return value.to_bytes(length, "big")


@dataclass
class SigningKey:
    kid: str
    algorithm: str
    private_pem: bytes
    public_pem: bytes
    public_der: bytes
    jwk: dict[str, Any]


def ec_key(kid: str) -> SigningKey:
    private = ec.generate_private_key(ec.SECP256R1())
    numbers = private.public_key().public_numbers()
    return SigningKey(
        kid=kid,
        algorithm="ES256",
        private_pem=private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        public_pem=private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        public_der=private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        jwk={
            "kty": "EC",
            "crv": "P-256",
            "kid": kid,
            "alg": "ES256",
            "use": "sig",
            "key_ops": ["verify"],
            "x": b64url(_int_bytes(numbers.x, 32)),
            "y": b64url(_int_bytes(numbers.y, 32)),
        },
    )


def rsa_key(kid: str) -> SigningKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    numbers = private.public_key().public_numbers()
    return SigningKey(
        kid=kid,
        algorithm="RS256",
        private_pem=private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        public_pem=private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        public_der=private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        jwk={
            "kty": "RSA",
            "kid": kid,
            "alg": "RS256",
            "use": "sig",
            "n": b64url(_int_bytes(numbers.n)),
            "e": b64url(_int_bytes(numbers.e)),
        },
    )


@dataclass
class FakeJwks:
    """Serves the JWKS like Supabase Auth does; records every outbound request."""

    keys: list[SigningKey] = field(default_factory=list)
    reachable: bool = True
    requests: list[httpx.Request] = field(default_factory=list)
    body: bytes | None = None  # overrides the served document

    @property
    def jwks_fetches(self) -> int:
        return sum(1 for r in self.requests if str(r.url) == JWKS_URL)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if str(request.url) != JWKS_URL:
            return httpx.Response(404)
        if not self.reachable:
            raise httpx.ConnectError("unreachable", request=request)
        if self.body is not None:
            return httpx.Response(200, content=self.body)
        return httpx.Response(200, json={"keys": [k.jwk for k in self.keys]})

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)


DROP: Any = object()  # claims(..., exp=DROP) leaves the claim out


def claims(
    user_id: uuid.UUID | str | None = None, /, *, issuer: str | None = ISSUER, **extra: Any
) -> dict[str, Any]:
    """Supabase-shaped access-token claims; keyword arguments override (DROP removes)."""
    now = int(time.time())
    out: dict[str, Any] = {
        "sub": str(user_id or uuid.uuid4()),
        "aud": "authenticated",
        "role": "authenticated",
        "iat": now,
        "exp": now + 3600,
    }
    if issuer is not None:
        out["iss"] = issuer
    out.update(extra)
    return {k: v for k, v in out.items() if v is not DROP}


def hs256(payload: dict[str, Any], *, secret: str = TEST_JWT_SECRET, **headers: Any) -> str:
    return str(jwt.encode(payload, secret, algorithm="HS256", headers=headers or None))


def sign(key: SigningKey, payload: dict[str, Any], **headers: Any) -> str:
    hdr = {"kid": key.kid, **headers}
    return str(jwt.encode(payload, key.private_pem.decode(), algorithm=key.algorithm, headers=hdr))


def raw_hs256(header: dict[str, Any], payload: dict[str, Any], secret: bytes) -> str:
    """Signed by hand, so any header and any secret (also a PEM jose would refuse) can be used."""
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def unsigned(payload: dict[str, Any], alg: str = "none") -> str:
    header = {"alg": alg, "typ": "JWT"}
    return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}."


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
