"""The connect flow `ccm connect quickbooks` drives: begin (authorize URL), finish (code and realmId ->
tokens -> stored connection), revoke."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from adapters.base import AuthExpired
from adapters.quickbooks import auth
from connector import oauth
from connector.config import Settings
from connector.model import Tenant
from connector.oauth import TokenVault
from connector.store import Store
from connector.store.tenants import save_tenant


def begin(settings: Settings, state: str) -> tuple[str, str | None]:
    """The URL to send the person to (Intuit uses no PKCE)."""
    return auth.authorization_url(settings.quickbooks, state), None


def finish(
    settings: Settings,
    store: Store,
    tenant: Tenant,
    callback: Mapping[str, str],
    code_verifier: str | None,
    wanted: str | None = None,
) -> str:
    """Complete the flow from the callback's query (code and realmId); returns what was connected."""
    realm = callback.get("realmId", "")
    name = tenant.name or f"QuickBooks company {realm}"
    named = replace(tenant, name=name, ledger="quickbooks")
    with store.begin() as conn:
        save_tenant(conn, named)
    auth.complete(
        settings.quickbooks, store, TokenVault.open(store, settings), tenant.id, callback["code"], realm
    )
    return f"company {realm}"


def revoke(settings: Settings, store: Store, tenant_id: str) -> None:
    """Revoke the tenant's refresh token at Intuit."""
    tokens = TokenVault.open(store, settings).get(tenant_id)
    if tokens is None:
        raise AuthExpired(f"tenant {tenant_id!r} holds no tokens to revoke")
    client_id, secret = auth._client(settings.quickbooks)  # the adapter's own credentials reader
    oauth.revoke(auth.endpoints(settings.quickbooks), client_id, secret, tokens.refresh_token,
                 verify=auth.verify(settings.quickbooks))  # fmt: skip
