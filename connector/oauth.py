"""OAuth 2.0 with the ledgers (authlib): the authorization URL, the code exchange, refresh and revoke calls.

Token-endpoint failures become what the caller does next: a grant the ledger refuses is AuthExpired (the
tenant must reconnect), anything else Retriable. The token vault (encrypted storage, one row per consent, and
refresh coordination across threads and processes) is connector.tokens; its names are re-exported here for
the callers that import them from connector.oauth.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import requests
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session

from connector.ledger import AuthExpired, OAuthEndpoints, Retriable
from connector.redact import register_secret
from connector.tokens import (
    REFRESH_TTL,
    REFRESH_WAIT,
    TokenSet,
    TokenVault,
    VaultKeyError,
    claim_key,
    load_key,
    remember,
)

AuthMethod = Literal["client_secret_basic", "client_secret_post"]
Verify = Path | str | bool
_DEAD_GRANT = {"invalid_grant", "invalid_client", "unauthorized_client", "access_denied"}


# ---- OAuth 2.0 client helpers (authlib)


def _verify(verify: Verify) -> str | bool:
    return str(verify) if isinstance(verify, Path) else verify


def _session(
    client_id: str,
    client_secret: str | None,
    redirect_uri: str | None = None,
    scopes: Sequence[str] = (),
    auth_method: AuthMethod = "client_secret_basic",
) -> OAuth2Session:
    if client_secret:
        register_secret(client_secret)
    return OAuth2Session(
        client_id, client_secret, token_endpoint_auth_method=auth_method,
        revocation_endpoint_auth_method=auth_method, redirect_uri=redirect_uri,
        scope=" ".join(scopes) or None, code_challenge_method="S256", default_timeout=30,
    )  # fmt: skip


def _call(action: Callable[[], Any]) -> Any:
    """Run a token-endpoint call, mapping failures to what the caller does next."""
    try:
        return action()
    except OAuthError as exc:
        if exc.error in _DEAD_GRANT:
            raise AuthExpired(f"the ledger refused the grant ({exc.error})") from None
        raise Retriable(f"token endpoint error: {exc.error}") from None
    except requests.RequestException as exc:
        raise Retriable(f"token endpoint unreachable: {type(exc).__name__}") from None
    except ValueError as exc:  # a non-JSON answer (a 5xx page)
        raise Retriable(f"token endpoint answered badly: {exc}") from None


def new_state() -> str:
    return os.urandom(16).hex()


def new_code_verifier() -> str:
    return os.urandom(40).hex()


def authorization_url(
    endpoints: OAuthEndpoints,
    client_id: str,
    redirect_uri: str,
    scopes: Sequence[str],
    state: str,
    code_verifier: str | None = None,
    **extra: str,
) -> str:
    """The URL to send the person to; PKCE (S256) when a code verifier is given."""
    session = _session(client_id, None, redirect_uri, scopes)
    url, _ = session.create_authorization_url(
        endpoints.authorize_url, state=state, code_verifier=code_verifier, **extra
    )
    return str(url)


def exchange_code(
    endpoints: OAuthEndpoints,
    client_id: str,
    client_secret: str,
    redirect_uri: str,
    code: str,
    code_verifier: str | None = None,
    *,
    auth_method: AuthMethod = "client_secret_basic",
    verify: Verify = True,
    now: datetime | None = None,
) -> TokenSet:
    """Trade an authorization code for tokens."""
    session = _session(client_id, client_secret, redirect_uri, auth_method=auth_method)
    extra = {"code_verifier": code_verifier} if code_verifier else {}
    token = _call(
        lambda: session.fetch_token(
            endpoints.token_url, grant_type="authorization_code", code=code, verify=_verify(verify), **extra
        )
    )
    return TokenSet.from_response(token, now=now)


def refresh_tokens(
    endpoints: OAuthEndpoints,
    client_id: str,
    client_secret: str,
    tokens: TokenSet,
    *,
    auth_method: AuthMethod = "client_secret_basic",
    verify: Verify = True,
    now: datetime | None = None,
) -> TokenSet:
    """Use the refresh token; the answer may rotate it (Xero always does, QuickBooks daily)."""
    session = _session(client_id, client_secret, auth_method=auth_method)
    token = _call(
        lambda: session.refresh_token(
            endpoints.token_url, refresh_token=tokens.refresh_token, verify=_verify(verify)
        )
    )
    return TokenSet.from_response(token, previous=tokens, now=now)


def revoke(
    endpoints: OAuthEndpoints,
    client_id: str,
    client_secret: str,
    token: str,
    *,
    auth_method: AuthMethod = "client_secret_basic",
    verify: Verify = True,
) -> None:
    """Revoke a refresh token at the ledger (disconnecting the app)."""
    if endpoints.revoke_url is None:
        return
    session = _session(client_id, client_secret, auth_method=auth_method)
    url = endpoints.revoke_url
    response = _call(
        lambda: session.revoke_token(
            url,
            token=token,
            token_type_hint="refresh_token",  # noqa: S106 - a hint's name, not a secret
            verify=_verify(verify),
        )
    )
    if response.status_code >= 500:
        raise Retriable(f"revocation failed with HTTP {response.status_code}")
    if response.status_code >= 400 and response.status_code not in (400, 401):
        raise AuthExpired(f"revocation refused with HTTP {response.status_code}")


__all__ = [
    "REFRESH_TTL", "REFRESH_WAIT", "TokenSet", "TokenVault", "VaultKeyError", "authorization_url",
    "claim_key", "exchange_code", "load_key", "new_code_verifier", "new_state", "refresh_tokens", "remember",
    "revoke",
]  # fmt: skip
