"""OpenID Connect id_tokens as Xero's identity service issues them: RS256 JWTs with the usual claims.

The token answer carries an `id_token` when the grant holds the `openid` scope; `profile` adds the names and
`email` the e-mail address. Each sandbox signs with its own RSA key, published (like Xero's) as a JWKS at
/.well-known/openid-configuration/jwks beside a discovery document, so clients can verify the signature.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

ISSUER = "https://identity.xero.com"
ID_TOKEN_TTL = timedelta(minutes=5)


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _int_bytes(number: int) -> bytes:
    return number.to_bytes((number.bit_length() + 7) // 8, "big")


@dataclass(frozen=True, slots=True)
class User:
    """The sandbox's one Xero user, who gives consent."""

    user_id: str
    given_name: str = "Sandbox"
    family_name: str = "Owner"
    email: str = "owner@sandbox.example"


@dataclass
class Signer:
    """The sandbox's signing key (made on first use: most sandboxes never issue an id_token)."""

    kid: str = field(default_factory=lambda: uuid.uuid4().hex)
    _key: rsa.RSAPrivateKey | None = field(default=None, repr=False)

    @property
    def key(self) -> rsa.RSAPrivateKey:
        if self._key is None:
            self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return self._key

    def jwk(self) -> dict[str, str]:
        numbers = self.key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "e": b64url(_int_bytes(numbers.e)),
            "n": b64url(_int_bytes(numbers.n)),
        }

    def sign(self, claims: Mapping[str, Any]) -> str:
        header = {"alg": "RS256", "kid": self.kid, "typ": "JWT"}
        head = b64url(json.dumps(header, separators=(",", ":")).encode())
        body = b64url(json.dumps(dict(claims), separators=(",", ":")).encode())
        signature = self.key.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{head}.{body}.{b64url(signature)}"


def claims(
    user: User,
    client_id: str,
    scopes: tuple[str, ...],
    access_token: str,
    now: datetime,
    session_id: str,
    nonce: str | None = None,
) -> dict[str, Any]:
    """The id_token's claims: the standard ones, Xero's user ids, then names and e-mail by scope."""
    at = int(now.timestamp())
    out: dict[str, Any] = {
        "iss": ISSUER,
        "sub": user.user_id.replace("-", ""),
        "aud": client_id,
        "iat": at,
        "nbf": at,
        "exp": at + int(ID_TOKEN_TTL.total_seconds()),
        "auth_time": at,
        "at_hash": b64url(hashlib.sha256(access_token.encode()).digest()[:16]),
        "sid": session_id,
        "amr": ["pwd"],
        "xero_userid": user.user_id,
        "global_session_id": session_id,
    }
    if nonce:
        out["nonce"] = nonce
    if "profile" in scopes:
        out |= {
            "given_name": user.given_name,
            "family_name": user.family_name,
            "name": f"{user.given_name} {user.family_name}",
            "preferred_username": user.email,
        }
    if "email" in scopes:
        out["email"] = user.email
    return out


def discovery(base_url: str) -> dict[str, Any]:
    return {
        "issuer": ISSUER,
        "jwks_uri": f"{base_url}/.well-known/openid-configuration/jwks",
        "authorization_endpoint": f"{base_url}/identity/connect/authorize",
        "token_endpoint": f"{base_url}/connect/token",
        "revocation_endpoint": f"{base_url}/connect/revocation",
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
    }


def routes_for(signer: Signer) -> tuple[Any, Any]:
    """(discovery endpoint, JWKS endpoint) for the sandbox's app."""

    async def config(request: Request) -> Response:
        return JSONResponse(discovery(str(request.base_url).rstrip("/")))

    async def jwks(request: Request) -> Response:
        del request
        return JSONResponse({"keys": [signer.jwk()]})

    return config, jwks
