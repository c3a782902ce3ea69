"""Connecting a Xero organisation: the authorization-code flow (with PKCE), /connections, the vault.

`begin` gives the URL to send the person to; `complete` trades the code for tokens and lists the
organisations they granted; `choose` picks one; `save` records the tenant's connection and stores its
tokens in the encrypted vault. Both scope sets are supported: the broad one and the granular one that apps
created from March 2026 must use (`granular_scopes` in its settings).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlparse

import requests
from xero_python.api_client import ApiClient, Configuration
from xero_python.api_client.oauth2 import OAuth2Token
from xero_python.identity import IdentityApi

from adapters.xero.client import sdk_token
from adapters.xero.settings import XeroSettings, xero_settings
from connector import oauth
from connector.config import ConfigError, Settings, check_ca_bundle
from connector.flow import Choice, Grant, save_grant
from connector.ledger import AuthExpired, Fatal, OAuthEndpoints
from connector.model import Tenant
from connector.oauth import TokenSet, TokenVault
from connector.redact import register_secret
from connector.store import Store

_IDENTITY = ("openid", "profile", "email", "offline_access")
BROAD_SCOPES = (*_IDENTITY, "accounting.transactions", "accounting.contacts", "accounting.settings.read")
GRANULAR_SCOPES = (*_IDENTITY, "accounting.invoices", "accounting.payments.read", "accounting.contacts",
                   "accounting.settings.read")  # fmt: skip


class NotConfigured(Fatal):
    """The Xero app's credentials are missing from the settings."""


class CaBundleMissing(Fatal, ConfigError):
    """xero.ca_bundle names no readable file: a setting to fix (exit 2 on the command line), and a Fatal
    for the tenant's run (retrying will not help)."""


def endpoints(xero: XeroSettings) -> OAuthEndpoints:
    """Xero's authorize, token and revocation URLs (the sandbox's when the settings point there)."""
    return OAuthEndpoints(
        authorize_url=f"{xero.login_url.rstrip('/')}/identity/connect/authorize",
        token_url=f"{xero.identity_url.rstrip('/')}/connect/token",
        revoke_url=f"{xero.identity_url.rstrip('/')}/connect/revocation",
    )


def scopes(xero: XeroSettings) -> tuple[str, ...]:
    return GRANULAR_SCOPES if xero.granular_scopes else BROAD_SCOPES


def credentials(xero: XeroSettings) -> tuple[str, str]:
    """The app's client id and secret (the secret registered so it never reaches a log)."""
    if not xero.client_id:
        raise NotConfigured("xero.client_id is not set (ccm.toml [xero] client_id or CCM_XERO__CLIENT_ID)")
    if not xero.client_secret:
        raise NotConfigured("xero.client_secret is not set (ccm.toml [xero] or CCM_XERO__CLIENT_SECRET)")
    register_secret(xero.client_secret)
    return xero.client_id, xero.client_secret


def verify(xero: XeroSettings) -> str | bool:
    """The CA bundle to trust for Xero (the sandbox's), else the system's; CaBundleMissing if it is not a
    readable file."""
    if not xero.ca_bundle:
        return True
    try:
        return str(check_ca_bundle(xero.ca_bundle))
    except ValueError as exc:  # settings checked it at start; it went away since
        raise CaBundleMissing(f"xero.ca_bundle: {exc}: {str(xero.ca_bundle)!r}") from None


def _ca_cert(xero: XeroSettings) -> str | None:
    """The SDK's ssl_ca_cert: the checked bundle, or None for the system's."""
    trusted = verify(xero)
    return trusted if isinstance(trusted, str) else None


def refresher(xero: XeroSettings, now: Any = None) -> Any:
    """A function renewing a TokenSet at Xero's token endpoint, for TokenVault.refresh."""
    client_id, secret = credentials(xero)
    verify(xero)  # at once: a missing CA is said when the ledger is built, not as a TLS error mid-run
    points = endpoints(xero)

    def renew(current: TokenSet) -> TokenSet:
        return oauth.refresh_tokens(points, client_id, secret, current, verify=verify(xero),
                                    now=now() if now else None)  # fmt: skip

    return renew


@dataclass(frozen=True, slots=True)
class Authorization:
    url: str
    state: str
    code_verifier: str


@dataclass(frozen=True, slots=True)
class Organisation:
    """One entry of GET /connections."""

    tenant_id: str
    name: str
    tenant_type: str
    connection_id: str


def begin(xero: XeroSettings, state: str | None = None) -> Authorization:
    """Where to send the person to grant ccm access (PKCE S256)."""
    client_id, _ = credentials(xero)
    verifier = oauth.new_code_verifier()
    chosen_state = state or oauth.new_state()
    url = oauth.authorization_url(endpoints(xero), client_id, xero.redirect_uri, scopes(xero), chosen_state,
                                  verifier)  # fmt: skip
    return Authorization(url, chosen_state, verifier)


def connections(xero: XeroSettings, tokens: TokenSet, now: datetime | None = None) -> list[Organisation]:
    """The organisations these tokens may reach (GET /connections through the SDK's IdentityApi)."""
    config = Configuration(oauth2_token=OAuth2Token())
    config.ssl_ca_cert = _ca_cert(xero)
    token = sdk_token(tokens, now or datetime.now(UTC))
    client = ApiClient(config, oauth2_token_getter=lambda: token, oauth2_token_saver=lambda _: None)
    api = IdentityApi(client, base_url=xero.api_url.rstrip("/"))
    try:
        response = api.get_connections(_preload_content=False)
    except Exception as exc:
        status = getattr(exc, "status", None)
        if status in (401, 403):
            raise AuthExpired(f"Xero refused the new tokens listing connections (HTTP {status})") from None
        raise Fatal(f"cannot list Xero connections: {type(exc).__name__} {status or ''}".strip()) from None
    return [
        Organisation(
            str(c["tenantId"]),
            str(c.get("tenantName") or ""),
            str(c.get("tenantType") or ""),
            str(c.get("id") or ""),
        )
        for c in json.loads(response.data or b"[]")
    ]


def remove_connection(xero: XeroSettings, tokens: TokenSet, org_id: str, now: datetime | None = None) -> bool:
    """Disconnect one organisation from the consent (DELETE /connections/{id}), leaving the others; False
    when it was not connected any more."""
    found = [o for o in connections(xero, tokens, now) if o.tenant_id == org_id]
    if not found:
        return False
    config = Configuration(oauth2_token=OAuth2Token())
    config.ssl_ca_cert = _ca_cert(xero)
    token = sdk_token(tokens, now or datetime.now(UTC))
    client = ApiClient(config, oauth2_token_getter=lambda: token, oauth2_token_saver=lambda _: None)
    try:
        IdentityApi(client, base_url=xero.api_url.rstrip("/")).delete_connection(found[0].connection_id)
    except Exception as exc:
        status = getattr(exc, "status", None)
        raise Fatal(f"Xero did not remove the organisation's connection (HTTP {status or '?'})") from None
    return True


def complete(
    xero: XeroSettings, code: str, code_verifier: str | None, now: datetime | None = None
) -> tuple[TokenSet, list[Organisation]]:
    """Trade the callback's code for tokens and list the organisations granted."""
    client_id, secret = credentials(xero)
    tokens = oauth.exchange_code(endpoints(xero), client_id, secret, xero.redirect_uri, code, code_verifier,
                                 verify=verify(xero), now=now)  # fmt: skip
    return tokens, connections(xero, tokens, now)


def choose(organisations: Sequence[Organisation], wanted: str | None = None) -> Organisation:
    """The organisation named by id or name, or the only one granted."""
    if wanted is not None:
        for org in organisations:
            if wanted in (org.tenant_id, org.name):
                return org
        listed = ", ".join(f"{o.name} ({o.tenant_id})" for o in organisations) or "none"
        raise Fatal(f"no Xero organisation {wanted!r} among those granted: {listed}")
    if len(organisations) == 1:
        return organisations[0]
    if not organisations:
        raise Fatal("the person granted access to no Xero organisation")
    listed = ", ".join(f"{o.name} ({o.tenant_id})" for o in organisations)
    raise Fatal(f"several Xero organisations were granted; choose one: {listed}")


def save(
    store: Store,
    vault: TokenVault,
    tenant: Tenant,
    org: Organisation,
    tokens: TokenSet,
    grant: str | None = None,
) -> None:
    """Record the tenant's connection to the organisation with its tokens (`connector.flow.save_grant`);
    `grant` names the consent, which other tenants connected by it share."""
    granted = Grant(tokens, (Choice(org.tenant_id, org.name, org.tenant_type),), *((grant,) if grant else ()))
    save_grant(store, vault, replace(tenant, ledger="xero"), granted, granted.choices[0])


def connect_with_code(
    settings: Settings,
    store: Store,
    tenant: Tenant,
    code: str,
    code_verifier: str | None,
    wanted: str | None = None,
) -> Organisation:
    """The whole second half of the flow: code -> tokens -> organisation -> stored connection."""
    xero = xero_settings(settings)
    tokens, orgs = complete(xero, code, code_verifier, datetime.now(UTC))
    org = choose(orgs, wanted)
    save(store, TokenVault.open(store, settings), tenant, org, tokens)
    return org


def consent_code(auth: Authorization, xero: XeroSettings) -> str:
    """Follow the authorize URL where consent is automatic (the sandbox's auto-consent) and return the code.

    This stands in for the person's browser in the demo, the tests and the benchmarks; against real Xero a
    person signs in and the callback receives the code.
    """
    response = requests.get(auth.url, allow_redirects=False, verify=verify(xero), timeout=30)
    location = response.headers.get("location", "")
    query = parse_qs(urlparse(location).query)
    if response.status_code not in (302, 303, 307) or "code" not in query:
        error = query.get("error", [f"HTTP {response.status_code}"])[0]
        raise Fatal(f"Xero consent did not redirect back with a code ({error})")
    if query.get("state", [""])[0] != auth.state:
        raise Fatal("Xero consent answered with a different state (possible forgery); not connecting")
    return query["code"][0]
