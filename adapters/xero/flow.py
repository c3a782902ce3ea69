"""The Xero connect flow `ccm connect xero` and the server's connect pages drive (`AdapterSpec.connect`):
begin (authorize URL with PKCE), exchange (code -> tokens -> the organisations granted), revoke. Saving the
chosen organisation is the core's (`connector.flow.save_grant`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from adapters.xero.settings import xero_settings
from connector import oauth
from connector.config import Settings
from connector.flow import Choice, Grant
from connector.ledger import AuthExpired, Fatal
from connector.oauth import TokenVault
from connector.store import Store
from connector.store.tenants import get_connection


class XeroFlow:
    """Connecting Xero organisations (the SDK loads only when a step runs)."""

    def redirect_uri(self, settings: Settings) -> str:
        return xero_settings(settings).redirect_uri

    def begin(self, settings: Settings, state: str) -> tuple[str, str | None]:
        """The URL to send the person to, and the PKCE verifier to keep for `exchange`."""
        from adapters.xero import connect

        auth = connect.begin(xero_settings(settings), state)
        return auth.url, auth.code_verifier

    def exchange(
        self,
        settings: Settings,
        callback: Mapping[str, str],
        code_verifier: str | None,
        now: datetime | None = None,
    ) -> Grant:
        """Trade the callback's code for tokens; the organisations they reach are the choices."""
        from adapters.xero import connect

        xero = xero_settings(settings)
        tokens, orgs = connect.complete(xero, callback["code"], code_verifier, now or datetime.now(UTC))
        if not orgs:
            raise Fatal("the person granted access to no Xero organisation")
        return Grant(tokens, tuple(Choice(o.tenant_id, o.name, o.tenant_type) for o in orgs))

    def revoke(self, settings: Settings, store: Store, tenant_id: str) -> str:
        """End ccm's access to the tenant's organisation at Xero; says what was done.

        A consent that other tenants share stays: only this organisation's connection is removed from it.
        Otherwise the refresh token is revoked, which removes the consent and its connections.
        """
        from adapters.xero import connect

        xero = xero_settings(settings)
        vault = TokenVault.open(store, settings)
        tokens = vault.get(tenant_id)
        if tokens is None:
            raise AuthExpired(f"tenant {tenant_id!r} holds no tokens to revoke")
        others = vault.sharing(tenant_id)
        if others:
            with store.read() as conn:
                link = get_connection(conn, tenant_id)
            if link is not None:
                connect.remove_connection(xero, tokens, link.external_id)
            return f"its organisation was removed from a consent {', '.join(others)} still use"
        client_id, secret = connect.credentials(xero)
        oauth.revoke(
            connect.endpoints(xero), client_id, secret, tokens.refresh_token, verify=connect.verify(xero)
        )
        return "the consent was revoked at Xero"


FLOW = XeroFlow()
# The steps as functions, for callers that drive one flow directly (benches, tests).
begin, exchange, revoke = FLOW.begin, FLOW.exchange, FLOW.revoke
