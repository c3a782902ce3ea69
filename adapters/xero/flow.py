"""The connect flow `ccm connect xero` and the server's connect pages drive: begin (authorize URL with
PKCE), exchange (code -> tokens -> the organisations granted), save (one organisation as the tenant's
connection), revoke."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime

from adapters.xero import connect
from connector import oauth
from connector.config import Settings
from connector.flow import Choice, Grant
from connector.ledger import AuthExpired, Fatal
from connector.model import Tenant
from connector.oauth import TokenVault
from connector.store import Store
from connector.store.tenants import get_connection


def begin(settings: Settings, state: str) -> tuple[str, str | None]:
    """The URL to send the person to, and the PKCE verifier to keep for `exchange`."""
    auth = connect.begin(settings.xero, state)
    return auth.url, auth.code_verifier


def exchange(
    settings: Settings, callback: Mapping[str, str], code_verifier: str | None, now: datetime | None = None
) -> Grant:
    """Trade the callback's code for tokens; the organisations they reach are the choices."""
    tokens, orgs = connect.complete(settings.xero, callback["code"], code_verifier, now or datetime.now(UTC))
    if not orgs:
        raise Fatal("the person granted access to no Xero organisation")
    return Grant(tokens, tuple(Choice(o.tenant_id, o.name, o.tenant_type) for o in orgs))


def save(
    settings: Settings,
    store: Store,
    tenant: Tenant,
    grant: Grant,
    choice: Choice,
    vault: TokenVault | None = None,
) -> str:
    """Store the chosen organisation as the tenant's connection (tokens in the vault first)."""
    named = replace(tenant, name=tenant.name or choice.name, ledger="xero")
    org = connect.Organisation(choice.id, choice.name, choice.kind, "")
    connect.save(store, vault or TokenVault.open(store, settings), named, org, grant.tokens, grant.id)
    return choice.name


def revoke(settings: Settings, store: Store, tenant_id: str) -> str:
    """End ccm's access to the tenant's organisation at Xero; says what was done.

    A consent that other tenants share stays: only this organisation's connection is removed from it.
    Otherwise the refresh token is revoked, which removes the consent and its connections.
    """
    vault = TokenVault.open(store, settings)
    tokens = vault.get(tenant_id)
    if tokens is None:
        raise AuthExpired(f"tenant {tenant_id!r} holds no tokens to revoke")
    others = vault.sharing(tenant_id)
    if others:
        with store.read() as conn:
            link = get_connection(conn, tenant_id)
        if link is not None:
            connect.remove_connection(settings.xero, tokens, link.external_id)
        return f"its organisation was removed from a consent {', '.join(others)} still use"
    client_id, secret = connect.credentials(settings.xero)
    oauth.revoke(connect.endpoints(settings.xero), client_id, secret, tokens.refresh_token,
                 verify=connect.verify(settings.xero))  # fmt: skip
    return "the consent was revoked at Xero"
