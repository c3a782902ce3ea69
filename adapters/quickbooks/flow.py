"""The connect flow `ccm connect quickbooks` and the server's connect pages drive: begin (authorize URL),
exchange (code and realmId -> tokens), save (the company as the tenant's connection), revoke."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from adapters.quickbooks import auth
from connector import oauth
from connector.config import Settings
from connector.flow import Choice, Grant
from connector.ledger import AuthExpired
from connector.model import Connection, Tenant
from connector.oauth import TokenVault
from connector.store import Store
from connector.store.tenants import save_connection, save_tenant


def begin(settings: Settings, state: str) -> tuple[str, str | None]:
    """The URL to send the person to (Intuit uses no PKCE)."""
    return auth.authorization_url(settings.quickbooks, state), None


def exchange(
    settings: Settings, callback: Mapping[str, str], code_verifier: str | None, now: datetime | None = None
) -> Grant:
    """Trade the callback's code for tokens; the company (realmId) it came with is the one choice."""
    realm = callback.get("realmId", "")
    if not realm.isdigit():
        raise AuthExpired(f"the QuickBooks callback carried no valid realmId (got {realm!r})")
    qbo = settings.quickbooks
    client_id, secret = auth._client(qbo)  # the adapter's own credentials reader
    tokens = oauth.exchange_code(auth.endpoints(qbo), client_id, secret, qbo.redirect_uri, callback["code"],
                                 verify=auth.verify(qbo), now=now)  # fmt: skip
    return Grant(tokens, (Choice(realm, f"QuickBooks company {realm}", "company"),))


def save(
    settings: Settings,
    store: Store,
    tenant: Tenant,
    grant: Grant,
    choice: Choice,
    vault: TokenVault | None = None,
) -> str:
    """Store the company as the tenant's connection (tokens in the vault first)."""
    named = replace(tenant, name=tenant.name or choice.name, ledger="quickbooks")
    (vault or TokenVault.open(store, settings)).put(tenant.id, grant.tokens)
    with store.begin() as conn:
        save_tenant(conn, named)
        save_connection(conn, Connection(tenant.id, auth.LEDGER, choice.id))
    return f"company {choice.id}"


def revoke(settings: Settings, store: Store, tenant_id: str) -> str:
    """Revoke the tenant's refresh token at Intuit; says what was done."""
    tokens = TokenVault.open(store, settings).get(tenant_id)
    if tokens is None:
        raise AuthExpired(f"tenant {tenant_id!r} holds no tokens to revoke")
    client_id, secret = auth._client(settings.quickbooks)
    oauth.revoke(auth.endpoints(settings.quickbooks), client_id, secret, tokens.refresh_token,
                 verify=auth.verify(settings.quickbooks))  # fmt: skip
    return "the consent was revoked at QuickBooks"
