"""Connecting a company (OAuth 2.0 with authlib) and keeping its tokens fresh through the vault.

The company's realmId is the connection's external_id. Tokens live only in the vault; every refresh runs
under the vault's per-tenant lock and stores the rotated refresh token before the new access token is used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from adapters.quickbooks.settings import QuickBooksSettings
from connector import oauth
from connector.config import ConfigError, check_ca_bundle
from connector.flow import Choice, Grant, save_grant
from connector.ledger import AuthExpired, Fatal, OAuthEndpoints
from connector.oauth import TokenSet, TokenVault
from connector.redact import register_secret
from connector.store import Store
from connector.store.tenants import get_tenant

LEDGER = "quickbooks"
SCOPES = ("com.intuit.quickbooks.accounting",)
MARGIN = timedelta(minutes=5)  # refresh this long before the hour-long access token ends
Now = Callable[[], datetime]  # what tells the time (not connector.clock.Clock)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def endpoints(qbo: QuickBooksSettings) -> OAuthEndpoints:
    return OAuthEndpoints(qbo.authorize_url, qbo.token_url, qbo.revoke_url)


class CaBundleMissing(Fatal, ConfigError):
    """quickbooks.ca_bundle names no readable file: a setting to fix (exit 2 on the command line), and a
    Fatal for the tenant's run (retrying will not help)."""


def verify(qbo: QuickBooksSettings) -> Path | bool:
    """The CA to trust for QuickBooks: the configured bundle (the sandbox's), else the system's.

    A bundle that is not a readable file is CaBundleMissing, naming the setting and the path.
    """
    if not qbo.ca_bundle:
        return True
    try:
        return check_ca_bundle(qbo.ca_bundle) or True
    except ValueError as exc:
        raise CaBundleMissing(f"quickbooks.ca_bundle: {exc}: {str(qbo.ca_bundle)!r}") from None


def _client(qbo: QuickBooksSettings) -> tuple[str, str]:
    if not qbo.client_id or not qbo.client_secret:
        raise AuthExpired("quickbooks.client_id and quickbooks.client_secret must be set to connect")
    register_secret(qbo.client_secret)
    return qbo.client_id, qbo.client_secret


def refresher(qbo: QuickBooksSettings, now: Now = _utcnow) -> Callable[[TokenSet], TokenSet]:
    """The call that trades a refresh token for new tokens at Intuit (Basic client auth)."""
    client_id, secret = _client(qbo)
    verify(qbo)  # at once: a missing CA is said when the ledger is built, not as a TLS error mid-run

    def refresh(tokens: TokenSet) -> TokenSet:
        return oauth.refresh_tokens(endpoints(qbo), client_id, secret, tokens, verify=verify(qbo), now=now())

    return refresh


def authorization_url(qbo: QuickBooksSettings, state: str) -> str:
    """Where to send the person who connects a company."""
    client_id, _ = _client(qbo)
    return oauth.authorization_url(endpoints(qbo), client_id, qbo.redirect_uri, SCOPES, state)


def complete(qbo: QuickBooksSettings, store: Store, vault: TokenVault, tenant_id: str, code: str,
             realm_id: str, now: Now = _utcnow) -> TokenSet:  # fmt: skip
    """Finish the callback: exchange the code, store the tokens, keep realmId as the connection's id."""
    if not realm_id.isdigit():
        raise AuthExpired(f"the QuickBooks callback carried no valid realmId (got {realm_id!r})")
    client_id, secret = _client(qbo)
    tokens = oauth.exchange_code(
        endpoints(qbo), client_id, secret, qbo.redirect_uri, code, verify=verify(qbo)
    )
    with store.read() as conn:
        tenant = get_tenant(conn, tenant_id)
    grant = Grant(tokens, (Choice(realm_id, f"QuickBooks company {realm_id}", "company"),))
    save_grant(store, vault, replace(tenant, ledger=LEDGER), grant, grant.choices[0])
    return tokens


class VaultTokens:
    """The client's TokenSource: the vault's tokens for one tenant, refreshed before they expire."""

    def __init__(
        self,
        vault: TokenVault,
        tenant_id: str,
        refresh: Callable[[TokenSet], TokenSet],
        clock: Now = _utcnow,
    ) -> None:
        self.vault = vault
        self.tenant_id = tenant_id
        self.refresh = refresh
        self.clock = clock
        self._tokens: TokenSet | None = None

    def access_token(self) -> str:
        tokens = self._tokens
        if tokens is None or tokens.expires_within(MARGIN, self.clock()):
            tokens = self._tokens = self.vault.fresh(self.tenant_id, self.refresh, MARGIN)
        return tokens.access_token

    def after_unauthorized(self, rejected: str) -> str:
        stored = self.vault.get(self.tenant_id)
        if stored is not None and stored.access_token != rejected:
            self._tokens = stored  # another holder refreshed meanwhile
        else:
            self._tokens = self.vault.refresh(self.tenant_id, self.refresh, force=True)
        return self._tokens.access_token
