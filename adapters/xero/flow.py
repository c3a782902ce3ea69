"""The connect flow `ccm connect xero` drives: begin (authorize URL with PKCE), finish (code -> tokens ->
organisation -> stored connection), revoke."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime

from adapters.base import AuthExpired
from adapters.xero import connect
from connector import oauth
from connector.config import Settings
from connector.model import Tenant
from connector.oauth import TokenVault
from connector.store import Store


def begin(settings: Settings, state: str) -> tuple[str, str | None]:
    """The URL to send the person to, and the PKCE verifier to keep for `finish`."""
    auth = connect.begin(settings.xero, state)
    return auth.url, auth.code_verifier


def finish(
    settings: Settings,
    store: Store,
    tenant: Tenant,
    callback: Mapping[str, str],
    code_verifier: str | None,
    wanted: str | None = None,
) -> str:
    """Complete the flow from the callback's query; returns the organisation's name."""
    tokens, orgs = connect.complete(settings.xero, callback["code"], code_verifier, datetime.now(UTC))
    org = connect.choose(orgs, wanted)
    named = replace(tenant, name=tenant.name or org.name, ledger="xero")
    connect.save(store, TokenVault.open(store, settings), named, org, tokens)
    return org.name


def revoke(settings: Settings, store: Store, tenant_id: str) -> None:
    """Revoke the tenant's refresh token at Xero (which removes the app's connections)."""
    tokens = TokenVault.open(store, settings).get(tenant_id)
    if tokens is None:
        raise AuthExpired(f"tenant {tenant_id!r} holds no tokens to revoke")
    client_id, secret = connect.credentials(settings.xero)
    oauth.revoke(connect.endpoints(settings.xero), client_id, secret, tokens.refresh_token,
                 verify=connect.verify(settings.xero))  # fmt: skip
