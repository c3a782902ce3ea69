"""The QuickBooks connect flow `ccm connect quickbooks` and the server's connect pages drive
(`AdapterSpec.connect`): begin (authorize URL), exchange (code and realmId -> tokens), revoke. Saving the
company as the tenant's connection is the core's (`connector.flow.save_grant`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from adapters.quickbooks import auth
from adapters.quickbooks.settings import quickbooks_settings
from connector import oauth
from connector.config import Settings
from connector.flow import Choice, Grant
from connector.ledger import AuthExpired
from connector.oauth import TokenVault
from connector.store import Store


class QuickBooksFlow:
    """Connecting a QuickBooks company (Intuit uses no PKCE)."""

    def redirect_uri(self, settings: Settings) -> str:
        return quickbooks_settings(settings).redirect_uri

    def begin(self, settings: Settings, state: str) -> tuple[str, str | None]:
        """The URL to send the person to."""
        return auth.authorization_url(quickbooks_settings(settings), state), None

    def exchange(
        self,
        settings: Settings,
        callback: Mapping[str, str],
        code_verifier: str | None,
        now: datetime | None = None,
    ) -> Grant:
        """Trade the callback's code for tokens; the company (realmId) it came with is the one choice."""
        realm = callback.get("realmId", "")
        if not realm.isdigit():
            raise AuthExpired(f"the QuickBooks callback carried no valid realmId (got {realm!r})")
        qbo = quickbooks_settings(settings)
        client_id, secret = auth._client(qbo)  # the adapter's own credentials reader
        tokens = oauth.exchange_code(
            auth.endpoints(qbo),
            client_id,
            secret,
            qbo.redirect_uri,
            callback["code"],
            verify=auth.verify(qbo),
            now=now,
        )
        return Grant(tokens, (Choice(realm, f"QuickBooks company {realm}", "company"),))

    def revoke(self, settings: Settings, store: Store, tenant_id: str) -> str:
        """Revoke the tenant's refresh token at Intuit; says what was done."""
        tokens = TokenVault.open(store, settings).get(tenant_id)
        if tokens is None:
            raise AuthExpired(f"tenant {tenant_id!r} holds no tokens to revoke")
        qbo = quickbooks_settings(settings)
        client_id, secret = auth._client(qbo)
        oauth.revoke(auth.endpoints(qbo), client_id, secret, tokens.refresh_token, verify=auth.verify(qbo))
        return "the consent was revoked at QuickBooks"


FLOW = QuickBooksFlow()
# The steps as functions, for callers that drive one flow directly (benches, tests).
begin, exchange, revoke = FLOW.begin, FLOW.exchange, FLOW.revoke
