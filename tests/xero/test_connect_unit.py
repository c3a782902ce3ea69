"""Connect helpers that need no server: endpoints, scope sets, credentials, organisation choice."""

from __future__ import annotations

import pytest

from adapters.xero.connect import (
    BROAD_SCOPES,
    GRANULAR_SCOPES,
    NotConfigured,
    Organisation,
    choose,
    credentials,
    endpoints,
    scopes,
)
from adapters.xero.settings import XeroSettings
from connector.ledger import Fatal
from connector.redact import scrub

ORGS = [
    Organisation("t-1", "Acme Ltd", "ORGANISATION", "c-1"),
    Organisation("t-2", "Beta", "ORGANISATION", "c-2"),
]


def test_endpoints_follow_the_settings_so_the_sandbox_can_stand_in() -> None:
    real = endpoints(XeroSettings())
    assert real.authorize_url == "https://login.xero.com/identity/connect/authorize"
    assert real.token_url == "https://identity.xero.com/connect/token"
    assert real.revoke_url == "https://identity.xero.com/connect/revocation"
    local = endpoints(XeroSettings(login_url="https://127.0.0.1:9/", identity_url="https://127.0.0.1:9"))
    assert local.token_url == "https://127.0.0.1:9/connect/token"


def test_broad_and_granular_scope_sets() -> None:
    assert scopes(XeroSettings()) == BROAD_SCOPES
    assert scopes(XeroSettings(granular_scopes=True)) == GRANULAR_SCOPES
    assert "offline_access" in GRANULAR_SCOPES  # without it Xero sends no refresh token
    assert {"accounting.invoices", "accounting.payments.read"} <= set(GRANULAR_SCOPES)
    assert "accounting.transactions" not in GRANULAR_SCOPES


def test_missing_credentials_fail_in_one_line_naming_the_setting() -> None:
    with pytest.raises(NotConfigured, match=r"^xero\.client_id is not set"):
        credentials(XeroSettings())
    with pytest.raises(NotConfigured, match=r"^xero\.client_secret is not set"):
        credentials(XeroSettings(client_id="abc"))


def test_the_client_secret_never_reaches_text() -> None:
    credentials(XeroSettings(client_id="abc", client_secret="s3cret-value-for-the-app"))
    assert "s3cret" not in scrub("token call failed with s3cret-value-for-the-app")


def test_choose_an_organisation_by_id_name_or_as_the_only_one() -> None:
    assert choose(ORGS, "t-2") == ORGS[1]
    assert choose(ORGS, "Acme Ltd") == ORGS[0]
    assert choose(ORGS[:1]) == ORGS[0]
    with pytest.raises(Fatal, match="several Xero organisations"):
        choose(ORGS)
    with pytest.raises(Fatal, match="no Xero organisation 'Gamma'"):
        choose(ORGS, "Gamma")
