"""One sandbox serves several QuickBooks companies (realms), each with its own data, limits and tokens, so
that benches and tests can run many firms as they do Xero organisations.

Sources: issue 18 item 8; Intuit's limits-and-throttles page as LEDGER-API-FACTS.md cites it (the limits
are per realm: 10/s, 500/min and 10 in flight per realm and app); the callback of Intuit's authorization
carries the one company the user chose (`realmId`, LEDGER-API-FACTS.md "OAuth 2.0").
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from adapters.quickbooks.client import QboApi
from adapters.quickbooks.pacing import Pacer
from adapters.quickbooks.sandbox import QuickBooksSandbox, realm_for, start
from adapters.quickbooks.sandbox.auth import SCOPE
from adapters.quickbooks.sandbox.process import spawn
from adapters.sandbox.generator import Firm, generate
from tests.quickbooks_sandbox.conftest import TODAY

REDIRECT = "https://ccm.invalid/callback"


@pytest.fixture
def many(firm: Firm, clock) -> Iterator[QuickBooksSandbox]:
    extra = [generate(seed=8, size="demo", today=TODAY), generate(seed=9, size="small", today=TODAY)]
    sb = start(firm, seed=7, clock=clock, extra_firms=extra)
    yield sb
    sb.stop()


def _live(company, entity: str) -> int:
    return sum(1 for row in company.tables[entity].by_id.values() if not row.deleted)


def _session(sb: QuickBooksSandbox) -> requests.Session:
    http = requests.Session()
    http.verify, http.trust_env = str(sb.ca_path), False
    return http


def _get(
    http: requests.Session, sb: QuickBooksSandbox, realm: str, token: str, path: str
) -> requests.Response:
    return http.get(f"{sb.api_url}/company/{realm}/{path}", params={"minorversion": "75"},
                    headers={"Authorization": f"Bearer {token}"})  # fmt: skip


def test_each_company_has_its_own_data(many: QuickBooksSandbox):
    assert many.realms == [realm_for(7), realm_for(8), realm_for(9)]
    names, counts = [], []
    with _session(many) as http:
        for realm in many.realms:
            token = many.connect(realm)["access_token"]
            info = _get(http, many, realm, token, f"companyinfo/{realm}").json()["CompanyInfo"]
            names.append(info["CompanyName"])
            count = http.post(
                f"{many.api_url}/company/{realm}/query",
                params={"minorversion": "75"},
                data=b"SELECT COUNT(*) FROM Invoice",
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/text"},
            )
            counts.append(count.json()["QueryResponse"]["totalCount"])  # fmt: skip
    assert names == [c.firm.name for c in many.companies.values()] and len(set(names)) == 3
    assert counts == [_live(c, "Invoice") for c in many.companies.values()]
    assert counts[2] > counts[0]  # the third is a small firm, the first two demo ones


def test_a_token_is_for_its_own_company_only(many: QuickBooksSandbox):
    first, second = many.realms[:2]
    token = many.connect(second)["access_token"]
    with _session(many) as http:
        assert _get(http, many, second, token, "customer/2").status_code == 200
        refused = _get(http, many, first, token, "customer/2")
    assert refused.status_code == 403 and refused.json()["fault"]["error"][0]["code"] == "3100"


def test_limits_are_counted_per_company(many: QuickBooksSandbox):
    first, second = many.realms[:2]
    tokens = {realm: many.connect(realm)["access_token"] for realm in (first, second)}
    with _session(many) as http:
        spent = [_get(http, many, first, tokens[first], "customer/2").status_code for _ in range(11)]
        other = [_get(http, many, second, tokens[second], "customer/2").status_code for _ in range(10)]
    assert spent == [200] * 10 + [429]  # the stopped clock: one second for all
    assert other == [200] * 10


def test_a_change_in_one_company_leaves_the_others_alone(many: QuickBooksSandbox):
    first, second = (many.companies[r] for r in many.realms[:2])
    shared = min(set(first.tables["Invoice"].by_id) & set(second.tables["Invoice"].by_id))
    token = second.get("Invoice", str(shared)).sync_token
    many.delete("Invoice", str(shared), realm=many.realms[0])
    assert first.tables["Invoice"].by_id[shared].deleted
    assert not second.tables["Invoice"].by_id[shared].deleted
    assert second.get("Invoice", str(shared)).sync_token == token


def test_consent_picks_the_company(many: QuickBooksSandbox):
    params = {"client_id": many.client_id, "response_type": "code", "scope": SCOPE, "redirect_uri": REDIRECT,
              "state": "s"}  # fmt: skip
    with _session(many) as http:
        default = http.get(many.authorize_url, params=params, allow_redirects=False)
        chosen = http.get(
            many.authorize_url, params={**params, "realmId": many.realms[2]}, allow_redirects=False
        )
        unknown = http.get(many.authorize_url, params={**params, "realmId": "42"}, allow_redirects=False)
        many.auto_consent = False
        form = http.get(many.authorize_url, params=params)
    realm_of = lambda answer: parse_qs(urlparse(answer.headers["location"]).query)["realmId"][0]  # noqa: E731
    assert (realm_of(default), realm_of(chosen)) == (many.realms[0], many.realms[2])
    assert unknown.status_code == 400
    assert all(f'<option value="{realm}"' in form.text for realm in many.realms)


class _Fixed:
    """A token source with one good token."""

    def __init__(self, token: str) -> None:
        self.token = token

    def access_token(self) -> str:
        return self.token

    def after_unauthorized(self, rejected: str) -> str:
        return self.token


def test_ccms_client_reads_each_company_on_one_sandbox(many: QuickBooksSandbox):
    for realm in many.realms:
        api = QboApi(realm, many.base_url, 75, _Fixed(many.connect(realm)["access_token"]),
                     verify=many.ca_path, pacer=Pacer())  # fmt: skip
        found = api.query("SELECT COUNT(*) FROM Customer WHERE Active IN (true, false)")
        api.close()
        assert found["QueryResponse"]["totalCount"] == len(many.companies[realm].firm.customers)


def test_a_spawned_sandbox_serves_several_companies():
    sandbox = spawn(seed=2, size="demo", companies=2)
    try:
        assert sandbox.realms == [realm_for(2), realm_for(3)] and sandbox.realm == realm_for(2)
        tokens = sandbox.connect(sandbox.realms[1])
        assert tokens["realmId"] == sandbox.realms[1]
        http = requests.Session()
        http.verify, http.trust_env = str(sandbox.ca_path), False
        with http:
            answer = http.get(f"{sandbox.api_url}/company/{sandbox.realms[1]}/customer/1",
                              params={"minorversion": 75},
                              headers={"Authorization": f"Bearer {tokens['access_token']}"})  # fmt: skip
        assert answer.status_code == 200
    finally:
        sandbox.stop()
