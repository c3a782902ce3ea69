"""GET /Currencies and GET /Organisation: served, behind the same auth as every endpoint, settings scopes.

Source: xero_accounting.yaml (../shared/reference/xero-openapi), paths /Currencies (getCurrencies, security
accounting.settings / accounting.settings.read, `where` example Code=="USD", `order` example Code ASC) and
/Organisation (getOrganisations, same scopes); LEDGER-API-FACTS.md "clients call them to check access".
"""

from __future__ import annotations

import requests

from tests.xero_sandbox.conftest import Connected, connect


def test_currencies_lists_the_base_currency_first_then_those_in_use(shared, firm):
    """xero_accounting.yaml /Currencies get: 200 with Currencies [{Code, Description}]."""
    answer = shared.get("Currencies")
    assert answer.status_code == 200
    codes = [c["Code"] for c in answer.json()["Currencies"]]
    used = {i.currency for i in firm.invoices} | {c.currency for c in firm.customers}
    assert codes[0] == firm.base_currency and set(codes) == used
    only_usd = shared.get("Currencies", params={"where": 'Code=="USD"'}).json()["Currencies"]
    assert [c["Code"] for c in only_usd] == ["USD"]
    desc = shared.get("Currencies", params={"order": "Code DESC"}).json()["Currencies"]
    assert [c["Code"] for c in desc] == sorted(codes, reverse=True)


def test_organisation_names_the_tenant_and_its_base_currency(shared, firm):
    """xero_accounting.yaml /Organisation get: Organisations [{OrganisationID, Name, BaseCurrency, ...}]."""
    body = shared.get("Organisation").json()
    org = body["Organisations"][0]
    assert (org["Name"], org["BaseCurrency"], org["CountryCode"]) == (firm.name, "GBP", "GB")
    assert org["OrganisationStatus"] == "ACTIVE" and body["Status"] == "OK"


def test_auth_is_checked_before_anything_else(shared):
    """Without a bearer token both answer 401 (Xero's problem body), not a router 404."""
    for path in ("Currencies", "Organisation"):
        answer = requests.get(
            f"{shared.sandbox.api_url}/{path}", verify=str(shared.sandbox.ca_path), timeout=10
        )
        assert answer.status_code == 401 and answer.json()["Title"] == "Unauthorized"


def test_settings_scope_is_required_and_the_read_scope_is_enough(shared):
    """Security of both operations: accounting.settings or accounting.settings.read."""
    sb = shared.sandbox
    without = connect(sb, ("openid", "offline_access", "accounting.transactions", "accounting.contacts"))
    read_only = connect(sb, ("offline_access", "accounting.settings.read"))
    for path in ("Currencies", "Organisation"):
        assert without.get(path).status_code == 401
        assert read_only.get(path).status_code == 200
    assert isinstance(read_only, Connected)
