"""Every answer the Xero sandbox gives validates against Xero's own OpenAPI specs (accounting, identity, webhooks).

The specs live outside the repository, in ../shared/reference/xero-openapi/ (relative to its root); in a clone
without them these tests skip and say so, and with CI=true they fail instead (tests/xero_sandbox/specs.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import yaml

from adapters.sandbox import SandboxClock
from adapters.xero.sandbox import start
from tests.xero_sandbox.conftest import NOON, REDIRECT, Connected, authorize, code_from, connect, token
from tests.xero_sandbox.specs import SPECS, require_specs

LISTS = ("Invoices", "Contacts", "Payments", "CreditNotes", "Overpayments", "Prepayments")


def _load(name: str) -> dict[str, Any]:
    with (SPECS / name).open() as fh:
        return yaml.safe_load(fh)


@pytest.fixture(autouse=True)
def _specs_present() -> None:
    require_specs()


@pytest.fixture(scope="session")
def specs() -> dict[str, Any]:
    """The parsed specs, once per session (the accounting spec takes about half a second)."""
    require_specs()
    from openapi_core import Config, OpenAPI

    accounting, identity = _load("xero_accounting.yaml"), _load("xero-identity.yaml")
    # The accounting spec fails strict validation (string defaults on booleans): skip spec validation.
    config = Config(spec_validator_cls=None)
    return {
        "accounting": OpenAPI.from_dict(accounting, config=config),
        "identity": OpenAPI.from_dict(identity, config=config),
        "identity_raw": identity,
        "webhooks_raw": _load("xero-webhooks.yaml"),
    }


class Checker:
    """Sends a request to the sandbox and validates the answer as if it came from api.xero.com."""

    def __init__(self, conn: Connected, specs: dict[str, Any]) -> None:
        self.conn = conn
        self.specs = specs
        self.checked: list[tuple[str, str, int]] = []

    def __call__(
        self, method: str, path: str, *, spec: str = "accounting", expect: int = 200, **kw: Any
    ) -> requests.Response:
        from openapi_core.testing import MockRequest, MockResponse

        base = self.conn.sandbox.api_url if spec == "accounting" else self.conn.sandbox.base_url
        answer = self.conn.http.request(
            method,
            f"{base}{path}",
            headers=self.conn.headers,
            verify=str(self.conn.sandbox.ca_path),
            timeout=30,
            **kw,
        )
        assert answer.status_code == expect, answer.text[:300]
        prefix = "/api.xro/2.0" if spec == "accounting" else ""
        request = MockRequest(
            "https://api.xero.com",
            method,
            prefix + path,
            args=kw.get("params"),
            headers=dict(self.conn.headers),
        )
        content_type = answer.headers.get("content-type", "application/json").split(";")[0]
        response = MockResponse(answer.content, status_code=answer.status_code, content_type=content_type)
        self.specs[spec].validate_response(request, response)
        self.checked.append((method, path, answer.status_code))
        return answer


@pytest.fixture(scope="module")
def check(specs, firm) -> Iterator[Checker]:
    sb = start(firm, limits=False, clock=SandboxClock(NOON))
    try:
        yield Checker(connect(sb), specs)
    finally:
        sb.stop()


@pytest.mark.parametrize("kind", LISTS)
def test_every_record_of_every_list_validates(check, kind, firm):
    params = (
        {"page": 1, "pageSize": 1000, "includeArchived": "true"}
        if kind == "Contacts"
        else {"page": 1, "pageSize": 1000}
    )
    body = check("GET", f"/{kind}", params=params).json()
    assert body["pagination"]["itemCount"] == len(body[kind])
    one = body[kind][0]
    record_id = one[
        {
            "Invoices": "InvoiceID",
            "Contacts": "ContactID",
            "Payments": "PaymentID",
            "CreditNotes": "CreditNoteID",
            "Overpayments": "OverpaymentID",
            "Prepayments": "PrepaymentID",
        }[kind]
    ]
    check("GET", f"/{kind}/{record_id}")
    check("PUT", f"/{kind}/{record_id}/History", json={"HistoryRecords": [{"Details": "checked"}]})
    check("GET", f"/{kind}/{record_id}/History")


def test_write_errors_validate_as_xero_400s(check, firm):
    inv = firm.invoices[0].id
    check("PUT", f"/Invoices/{inv}/History", expect=400, json={"HistoryRecords": [{"Details": "x" * 2501}]})
    draft = next(i for i in firm.invoices if i.status == "draft").id
    check("POST", f"/Invoices/{draft}/Email", expect=400, json={})


def test_contact_groups_validate(check, firm):
    made = check("PUT", "/ContactGroups", json={"ContactGroups": [{"Name": "Credit Hold"}]}).json()
    group = made["ContactGroups"][0]["ContactGroupID"]
    check("GET", "/ContactGroups")
    check("GET", f"/ContactGroups/{group}")
    contact = firm.customers[0].id
    check("PUT", f"/ContactGroups/{group}/Contacts", json={"Contacts": [{"ContactID": contact}]})
    check("DELETE", f"/ContactGroups/{group}/Contacts/{contact}", expect=204)
    check("DELETE", f"/ContactGroups/{group}/Contacts", expect=204)


def test_email_online_invoice_and_reminders_validate(check, firm):
    inv = next(
        i
        for i in firm.invoices
        if i.kind == "sales"
        and i.status == "authorised"
        and next(c for c in firm.customers if c.id == i.customer_id).email
    )
    check("POST", f"/Invoices/{inv.id}/Email", expect=204, json={})
    check("GET", f"/Invoices/{inv.id}/OnlineInvoice")
    check("GET", "/InvoiceReminders/Settings")


def test_connections_validate_against_the_identity_spec(check):
    rows = check("GET", "/Connections", spec="identity").json()
    assert rows and rows[0]["tenantId"] == check.conn.sandbox.tenant_id


def test_token_answers_match_the_identity_access_token_schema(specs, check):
    from openapi_schema_validator import OAS30Validator

    schema = specs["identity_raw"]["components"]["schemas"]["AccessToken"]
    sb = check.conn.sandbox
    code = code_from(authorize(sb))["code"]
    first = token(sb, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}).json()
    refreshed = token(sb, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}).json()
    for body in (first, refreshed):
        OAS30Validator(schema).validate(body)
        assert isinstance(body["expires_in"], int)
        assert body["id_token"].count(".") == 2  # openid was granted (identity spec: AccessToken.id_token)


def test_webhook_bodies_match_the_webhooks_spec(specs, firm):
    from openapi_schema_validator import OAS31Validator
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    from adapters.sandbox import Faults, serve

    bodies: list[bytes] = []

    async def hook(request: Request) -> Response:
        bodies.append(await request.body())
        return Response(status_code=200)

    receiver = serve(
        Starlette(routes=[Route("/hook", hook, methods=["POST"])]), clock=SandboxClock(), faults=Faults()
    )
    sb = start(
        firm,
        webhook_url=f"{receiver.base_url}/hook",
        webhook_verify=str(receiver.ca_path),
        clock=SandboxClock(NOON),
    )
    try:
        inv = next(i for i in firm.invoices if i.status == "authorised")
        sb.post_credit_note(inv.id, inv.total / 4)
        sb.change_contact(inv.customer_id, email="changed@example.com")
        sb.flush_webhooks()
    finally:
        sb.stop()
        receiver.stop()
    components = specs["webhooks_raw"]["components"]["schemas"]
    schemas = {
        "CREDITNOTE": components["CreditNoteWebhookEvent"],
        "INVOICE": components["WebhookEvent"],
        "CONTACT": components["WebhookEvent"],
    }
    assert len(bodies) >= 3
    for raw in bodies:
        body = json.loads(raw)
        schema = {**schemas[body["events"][0]["eventCategory"]], "components": {"schemas": components}}
        OAS31Validator(schema).validate(body)


def test_settings_endpoints_and_list_queries_validate(check, firm):
    """Currencies and Organisation (paths /Currencies, /Organisation of xero_accounting.yaml), the list
    parameters of issue 18 (order, where, searchTerm, InvoiceNumbers, summaryOnly), contacts with Balances
    (components/schemas/Balances) and POST /ContactGroups/{ContactGroupID} validate against the spec."""
    assert check("GET", "/Currencies", params={"where": 'Code=="GBP"', "order": "Code ASC"}).json()[
        "Currencies"
    ]
    assert check("GET", "/Organisation").json()["Organisations"][0]["BaseCurrency"] == firm.base_currency
    check("GET", "/Contacts", params={"order": "Name ASC", "searchTerm": "a", "summaryOnly": "true"})
    contacts = check("GET", "/Contacts", params={"page": 1, "pageSize": 1000}).json()["Contacts"]
    assert all("AccountsReceivable" in c["Balances"] for c in contacts)
    where = 'Status=="PAID" OR (Type=="ACCREC" && Date >= DateTime(2026, 01, 01) && Total > 100)'
    check("GET", "/Invoices", params={"where": where, "order": "Date DESC"})
    numbers = ",".join(i.number for i in firm.invoices[:3])
    check("GET", "/Invoices", params={"InvoiceNumbers": numbers, "summaryOnly": "true"})
    made = check("PUT", "/ContactGroups", json={"ContactGroups": [{"Name": "To rename"}]}).json()
    group = made["ContactGroups"][0]["ContactGroupID"]
    check("POST", f"/ContactGroups/{group}", json={"ContactGroups": [{"Name": "Renamed"}]})
    check("POST", f"/ContactGroups/{group}", json={"ContactGroups": [{"Status": "DELETED"}]})


def test_every_served_endpoint_was_checked(check):
    """The checks above cover each route the sandbox serves (run last in this module)."""
    seen = {(m, p.split("/")[1]) for m, p, _ in check.checked}
    for kind in LISTS:
        assert {("GET", kind), ("PUT", kind)} <= seen
    assert {
        ("PUT", "ContactGroups"),
        ("DELETE", "ContactGroups"),
        ("POST", "Invoices"),
        ("GET", "InvoiceReminders"),
        ("GET", "Connections"),
        ("GET", "Currencies"),
        ("GET", "Organisation"),
        ("POST", "ContactGroups"),
    } <= seen
