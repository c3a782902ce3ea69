"""The token answer carries an id_token, a signed JWT with the usual claims, when `openid` was granted.

Sources: xero-identity.yaml (../shared/reference/xero-openapi) components/schemas/AccessToken.id_token;
LEDGER-API-FACTS.md "the token answer carries an id_token when openid was granted" and the xero-python getter
that accepts `id_token`; the claims are OpenID Connect Core 1.0 section 2 (iss, sub, aud, exp, iat,
auth_time, nonce, at_hash) plus Xero's xero_userid and global_session_id.
"""

from __future__ import annotations

import base64
import hashlib
import json

import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.xero_sandbox.conftest import NOON, REDIRECT, code_from, token


def _part(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _int(segment: str) -> int:
    return int.from_bytes(_part(segment), "big")


def exchange(sb, scopes: tuple[str, ...], nonce: str | None = None) -> dict:
    params = {
        "response_type": "code",
        "client_id": sb.client_id,
        "redirect_uri": REDIRECT,
        "scope": " ".join(scopes),
        "state": "s",
    }
    if nonce:
        params["nonce"] = nonce
    answer = requests.get(
        f"{sb.base_url}/identity/connect/authorize",
        params=params,
        verify=str(sb.ca_path),
        allow_redirects=False,
        timeout=10,
    )
    code = code_from(answer)["code"]
    body = token(sb, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT})
    assert body.status_code == 200, body.text
    return body.json()


def test_openid_grant_gets_a_verifiable_id_token_with_the_usual_claims(fixed):
    sb = fixed.sandbox
    body = exchange(sb, ("openid", "profile", "email", "offline_access", "accounting.contacts"), nonce="n-42")
    head, payload, signature = body["id_token"].split(".")
    header, claims = json.loads(_part(head)), json.loads(_part(payload))
    assert header["alg"] == "RS256"
    conf = requests.get(f"{sb.base_url}/.well-known/openid-configuration", verify=str(sb.ca_path), timeout=10)
    jwks = requests.get(conf.json()["jwks_uri"], verify=str(sb.ca_path), timeout=10).json()
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    public = rsa.RSAPublicNumbers(_int(key["e"]), _int(key["n"])).public_key()
    public.verify(_part(signature), f"{head}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
    now = int(NOON.timestamp())
    assert claims["iss"] == "https://identity.xero.com" and claims["aud"] == sb.client_id
    assert claims["iat"] == now and claims["exp"] > now and claims["auth_time"] == now
    assert claims["nonce"] == "n-42" and claims["sub"] and claims["xero_userid"]
    assert claims["email"] and claims["given_name"] and claims["family_name"]
    digest = hashlib.sha256(body["access_token"].encode()).digest()[:16]
    assert claims["at_hash"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def test_no_openid_no_id_token_and_no_profile_no_names(fixed):
    sb = fixed.sandbox
    assert "id_token" not in exchange(sb, ("offline_access", "accounting.contacts"))
    bare = exchange(sb, ("openid", "accounting.contacts"))
    claims = json.loads(_part(bare["id_token"].split(".")[1]))
    assert "email" not in claims and "given_name" not in claims and "nonce" not in claims
