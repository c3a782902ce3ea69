"""Intuit's OAuth 2.0 as the sandbox plays it: codes, 3,600 s access tokens, refresh tokens that roll.

A refresh token keeps its VALUE for 24 hours of the sandbox clock (a refresh before then hands back the
same value), then a refresh returns a new value; the previous value keeps working until the new one is first
used, so a lost answer can be retried. Every refresh extends the grant's life to 100 days from then, never
past 5 years from the consent. Revoking either token ends the grant.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

SCOPE = "com.intuit.quickbooks.accounting"
ACCESS_LIFE = timedelta(seconds=3600)
ROTATE_AFTER = timedelta(hours=24)
ROLLING_LIFE = timedelta(days=100)
MAX_LIFE = timedelta(days=5 * 365)
CODE_LIFE = timedelta(minutes=5)
# On a clock running faster than real time, a code also lives at least this many real seconds: five
# simulated minutes can be 40 real ms there, less than a busy machine takes from the consent redirect
# to the code exchange. At 1x, and on a stopped clock that only a test moves, the five minutes alone count.
CODE_REAL_FLOOR_S = 60.0


class OAuthError(Exception):
    """An OAuth error answer: `error` is the RFC 6749 code, `status` the HTTP status."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status


@dataclass
class Grant:
    """One consent: the company, its current refresh token value and how long the grant may live."""

    realm: str
    scope: str
    consented: datetime
    refresh_token: str
    refresh_issued: datetime
    expires: datetime
    previous: str | None = None  # still accepted until `refresh_token` is first used
    revoked: bool = False
    access: set[str] = field(default_factory=set)


@dataclass
class _Code:
    realm: str
    redirect_uri: str
    scope: str
    expires: datetime
    challenge: str | None
    issued_real: float = field(default_factory=time.monotonic)


class OAuthServer:
    """Issues and checks tokens for one client, on an injectable clock. Thread-safe."""

    def __init__(
        self, client_id: str, client_secret: str, now: Callable[[], datetime], speed: float = 1.0
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.now = now
        self.speed = speed
        self._lock = threading.Lock()
        self._codes: dict[str, _Code] = {}
        self._access: dict[str, tuple[Grant, datetime]] = {}
        self._refresh: dict[str, Grant] = {}

    # -- client authentication -------------------------------------------------------------------

    def check_client(self, authorization: str | None, form: dict[str, str]) -> None:
        """Basic client auth (Intuit's way), or client_id/client_secret in the form.

        Raises:
            OAuthError: invalid_client (401).
        """
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        if authorization and authorization.lower().startswith("basic "):
            try:
                client_id, _, secret = base64.b64decode(authorization[6:]).decode().partition(":")
            except ValueError:
                raise OAuthError("invalid_client", "malformed Basic authorization", 401) from None
        ok = hmac.compare_digest(client_id.encode(), self.client_id.encode()) and hmac.compare_digest(
            secret.encode(), self.client_secret.encode()
        )
        if not ok:
            raise OAuthError("invalid_client", "unknown client or wrong secret", 401)

    # -- authorize -------------------------------------------------------------------------------

    def authorize(self, params: dict[str, str], realm: str) -> str:
        """Check an authorization request and issue a code for `realm`.

        Raises:
            OAuthError: a wrong client_id, response_type or scope.
        """
        if params.get("client_id") != self.client_id:
            raise OAuthError("invalid_client", f"unknown client_id {params.get('client_id')!r}")
        if params.get("response_type") != "code":
            raise OAuthError("unsupported_response_type", "response_type must be code")
        if not params.get("redirect_uri"):
            raise OAuthError("invalid_request", "redirect_uri is required")
        scopes = params.get("scope", "").split()
        if SCOPE not in scopes:
            raise OAuthError("invalid_scope", f"scope must include {SCOPE}")
        if params.get("code_challenge") and params.get("code_challenge_method", "plain") != "S256":
            raise OAuthError("invalid_request", "code_challenge_method must be S256")
        code = secrets.token_urlsafe(24)
        with self._lock:
            self._codes[code] = _Code(realm, params["redirect_uri"], " ".join(scopes),
                                      self.now() + CODE_LIFE, params.get("code_challenge"))  # fmt: skip
        return code

    # -- token endpoint --------------------------------------------------------------------------

    def token(self, form: dict[str, str]) -> dict[str, Any]:
        """The token endpoint after client authentication: authorization_code or refresh_token grants.

        Raises:
            OAuthError: invalid_grant, unsupported_grant_type, invalid_request.
        """
        kind = form.get("grant_type")
        if kind == "authorization_code":
            return self._exchange(form)
        if kind == "refresh_token":
            return self.refresh(form.get("refresh_token", ""))
        raise OAuthError("unsupported_grant_type", f"grant_type {kind!r} is not supported")

    def _exchange(self, form: dict[str, str]) -> dict[str, Any]:
        with self._lock:
            code = self._codes.pop(form.get("code", ""), None)
        now = self.now()
        floor = CODE_REAL_FLOOR_S if self.speed > 1 else 0.0
        if code is None or (code.expires < now and time.monotonic() - code.issued_real >= floor):
            raise OAuthError("invalid_grant", "the authorization code is unknown, used or expired")
        if form.get("redirect_uri") != code.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri does not match the authorization request")
        if code.challenge is not None:
            verifier = form.get("code_verifier", "").encode()
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=").decode()
            if not hmac.compare_digest(digest, code.challenge):
                raise OAuthError("invalid_grant", "code_verifier does not match the code_challenge")
        return self.grant(code.realm, code.scope)

    def grant(self, realm: str, scope: str = SCOPE) -> dict[str, Any]:
        """A new consent for `realm` (what the code exchange gives; tests may call it directly)."""
        now = self.now()
        grant = Grant(realm, scope, now, secrets.token_urlsafe(32), now, now + ROLLING_LIFE)
        with self._lock:
            self._refresh[grant.refresh_token] = grant
            return self._answer(grant, now)

    def refresh(self, refresh_token: str) -> dict[str, Any]:
        """Refresh: same refresh value within 24 h of its issue, a new one after.

        Raises:
            OAuthError: invalid_grant when the token is unknown, superseded, revoked or expired.
        """
        now = self.now()
        with self._lock:
            grant = self._refresh.get(refresh_token)
            if grant is None or grant.revoked or grant.expires <= now:
                raise OAuthError("invalid_grant", "Incorrect or invalid refresh token")
            if refresh_token == grant.refresh_token and grant.previous is not None:
                self._refresh.pop(grant.previous, None)  # the new value is in use: the old one dies
                grant.previous = None
            if refresh_token == grant.refresh_token and now - grant.refresh_issued >= ROTATE_AFTER:
                if grant.previous is not None:
                    self._refresh.pop(grant.previous, None)
                grant.previous = grant.refresh_token
                grant.refresh_token = secrets.token_urlsafe(32)
                grant.refresh_issued = now
                self._refresh[grant.refresh_token] = grant
            grant.expires = min(now + ROLLING_LIFE, grant.consented + MAX_LIFE)
            return self._answer(grant, now)

    def _answer(self, grant: Grant, now: datetime) -> dict[str, Any]:
        access = secrets.token_urlsafe(32)
        expires = min(now + ACCESS_LIFE, grant.expires)
        self._access[access] = (grant, expires)
        grant.access.add(access)
        return {
            "token_type": "bearer", "access_token": access,
            "expires_in": int((expires - now).total_seconds()), "refresh_token": grant.refresh_token,
            "x_refresh_token_expires_in": int((grant.expires - now).total_seconds()),
        }  # fmt: skip

    # -- revoke and checks -----------------------------------------------------------------------

    def revoke(self, token: str) -> None:
        """End the grant the token (access or refresh) belongs to; unknown tokens are ignored (RFC 7009)."""
        with self._lock:
            grant = self._refresh.get(token) or (self._access.get(token) or (None, None))[0]
            if grant is None:
                return
            grant.revoked = True
            for value in (grant.refresh_token, grant.previous):
                self._refresh.pop(value or "", None)
            for access in grant.access:
                self._access.pop(access, None)

    def realm_of(self, access_token: str) -> str:
        """The company an access token is for.

        Raises:
            OAuthError: the token is unknown, revoked or expired (401).
        """
        with self._lock:
            found = self._access.get(access_token)
        if found is None or found[0].revoked:
            raise OAuthError(
                "invalid_token", "AuthenticationFailed: the access token is unknown or revoked", 401
            )
        if found[1] <= self.now():
            raise OAuthError("invalid_token", "Token expired: the access token has expired", 401)
        return found[0].realm

    def revoke_all(self) -> None:
        """Disconnect every grant (the user removed the app in QBO)."""
        with self._lock:
            grants = list(self._refresh.values())
        for grant in grants:
            self.revoke(grant.refresh_token)
