"""Bad requests get Xero's clear refusals, and the remaining test controls do what they say."""

from __future__ import annotations

from decimal import Decimal

import requests

from tests.xero_sandbox.conftest import REDIRECT, authorize, code_from, token


def test_bad_list_queries_are_400_with_the_reason(fixed):
    unknown = fixed.get("Invoices", params={"order": "Colour DESC"})
    assert unknown.status_code == 400 and "'Colour'" in unknown.text
    assert fixed.get("Invoices", params={"where": 'Total>"5"'}).status_code == 400
    assert fixed.get("Invoices", params={"page": "x"}).status_code == 400
    bad_date = fixed.get("Invoices", headers={"If-Modified-Since": "yesterday-ish"})
    assert bad_date.status_code == 400 and "If-Modified-Since" in bad_date.text


def test_order_desc_and_where_filters(fixed):
    asc = [r["InvoiceID"] for r in fixed.get("Invoices", params={"pageSize": 1000}).json()["Invoices"]]
    desc = fixed.get("Invoices", params={"pageSize": 1000, "order": "UpdatedDateUTC DESC"}).json()["Invoices"]
    assert [r["InvoiceID"] for r in desc] == asc[::-1]
    bills = fixed.get("Invoices", params={"where": 'Type=="ACCPAY"', "pageSize": 1000}).json()["Invoices"]
    assert bills and {b["Type"] for b in bills} == {"ACCPAY"}


def test_an_idempotency_key_over_128_characters_is_refused(fixed):
    inv = next(iter(fixed.sandbox.book.invoices.by_id))
    answer = fixed.send(
        "PUT",
        f"Invoices/{inv}/History",
        json={"HistoryRecords": [{"Details": "x"}]},
        headers={"Idempotency-Key": "k" * 129},
    )
    assert answer.status_code == 400 and "128" in answer.text
    assert fixed.sandbox.book.history.get(inv) is None


def test_adding_an_unknown_contact_to_a_group_is_refused(fixed):
    group = fixed.send("PUT", "ContactGroups", json={"ContactGroups": [{"Name": "Hold"}]}).json()[
        "ContactGroups"
    ][0]
    answer = fixed.send(
        "PUT",
        f"ContactGroups/{group['ContactGroupID']}/Contacts",
        json={"Contacts": [{"ContactID": "00000000-0000-4000-8000-000000000000"}]},
    )
    assert answer.status_code == 400 and "does not exist" in answer.text


def test_token_endpoint_refusals(fixed):
    sb = fixed.sandbox
    assert token(sb, {"grant_type": "password"}).json() == {"error": "unsupported_grant_type"}
    code = code_from(authorize(sb))["code"]
    wrong_redirect = token(
        sb, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT + "x"}
    )
    assert wrong_redirect.json() == {"error": "invalid_grant"}
    code = code_from(authorize(sb))["code"]
    sb.clock.advance(301)  # codes live five minutes
    stale = token(sb, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT})
    assert stale.json() == {"error": "invalid_grant"}


def test_connection_controls_expire_and_revoke(fixed):
    sb = fixed.sandbox
    sb.expire_access_tokens()
    assert fixed.get("Contacts").json()["Detail"].startswith("TokenExpired")
    fresh = token(sb, {"grant_type": "refresh_token", "refresh_token": fixed.tokens["refresh_token"]}).json()
    fixed.tokens = fresh
    assert fixed.get("Contacts").status_code == 200
    sb.revoke_refresh_token(fresh["refresh_token"])
    assert fixed.get("Contacts").status_code == 401
    assert (
        token(sb, {"grant_type": "refresh_token", "refresh_token": fresh["refresh_token"]}).status_code == 400
    )


def test_ledger_controls_add_delete_and_reopen(fixed):
    sb = fixed.sandbox
    contact = next(c for c in sb.book.contacts.by_id.values() if not c.archived)
    inv = sb.add_invoice(contact.id, Decimal("120.00"))
    row = fixed.get(f"Invoices/{inv.id}").json()["Invoices"][0]
    assert (row["Status"], row["AmountDue"], row["TotalTax"]) == ("AUTHORISED", 120.0, 20.0)
    pay = sb.post_payment(inv.id, Decimal("50.00"))
    assert fixed.get(f"Invoices/{inv.id}").json()["Invoices"][0]["AmountDue"] == 70.0
    sb.delete_payment(pay.id)
    row = fixed.get(f"Invoices/{inv.id}").json()["Invoices"][0]
    assert (row["AmountDue"], row["Payments"]) == (120.0, [])
    assert fixed.get(f"Payments/{pay.id}").json()["Payments"][0]["Status"] == "DELETED"
    sb.post_credit_note(inv.id, Decimal("120.00"))
    assert fixed.get(f"Invoices/{inv.id}").json()["Invoices"][0]["Status"] == "PAID"
    draft = sb.add_invoice(contact.id, Decimal("10.00"))
    sb.delete_invoice(draft.id)
    assert fixed.get(f"Invoices/{draft.id}").json()["Invoices"][0]["Status"] == "DELETED"


def test_unknown_paths_are_404(fixed):
    answer = requests.get(
        f"{fixed.sandbox.api_url}/Nothing", headers=fixed.headers, verify=str(fixed.sandbox.ca_path)
    )
    assert answer.status_code == 404
