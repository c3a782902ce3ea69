"""`where` and `order` as Xero takes them: OR, AND, parentheses, comparisons, DateTime, guid, text methods,
nested paths, order by any element; anything else a 400 with Xero's validation body, never a silent mismatch.

Sources: xero_accounting.yaml (../shared/reference/xero-openapi): the `where` parameter "Filter by an any
element" and `order` "Order by an any element" with their examples (`Name ASC` on /Contacts, `InvoiceNumber ASC`
on /Invoices, `Status=="ACTIVE" AND Type=="BANK"` on /Accounts); LEDGER-API-FACTS.md "Xero, more that any
client may rely on" (operators, DateTime(2020, 01, 01), guid("..."), Contains/StartsWith/EndsWith,
Contact.ContactID).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from adapters.xero.sandbox.where import QueryError, compile_where, field_names

ALL = {"pageSize": 1000}


def ids(conn, kind: str, key: str, **params: str) -> list[str]:
    answer = conn.get(kind, params={**ALL, **params})
    assert answer.status_code == 200, answer.text[:300]
    return [r[key] for r in answer.json()[kind]]


def invoices(conn, **params: str) -> list[dict]:
    answer = conn.get("Invoices", params={**ALL, **params})
    assert answer.status_code == 200, answer.text[:300]
    return answer.json()["Invoices"]


def test_or_matches_either_side_as_statuses_does(shared):
    """Issue 18 item 3: `Status=="PAID" OR Status=="VOIDED"` answered no records; it is the union."""
    expected = set(ids(shared, "Invoices", "InvoiceID", Statuses="PAID,VOIDED"))
    assert expected
    for where in ('Status=="PAID" OR Status=="VOIDED"', 'Status=="PAID" || Status=="VOIDED"'):
        assert set(ids(shared, "Invoices", "InvoiceID", where=where)) == expected


def test_and_or_and_parentheses_group_as_written(shared, firm):
    where = '(Status=="PAID" || Status=="VOIDED") && Type=="ACCREC"'
    got = invoices(shared, where=where)
    assert got and all(i["Status"] in ("PAID", "VOIDED") and i["Type"] == "ACCREC" for i in got)
    every = invoices(shared)
    expected = {i["InvoiceID"] for i in every if i["Status"] in ("PAID", "VOIDED") and i["Type"] == "ACCREC"}
    assert {i["InvoiceID"] for i in got} == expected
    loose = 'Status=="PAID" || Status=="VOIDED" AND Type=="ACCPAY"'  # AND binds tighter than OR
    expected_loose = {
        i["InvoiceID"]
        for i in every
        if i["Status"] == "PAID" or (i["Status"] == "VOIDED" and i["Type"] == "ACCPAY")
    }
    assert set(ids(shared, "Invoices", "InvoiceID", where=loose)) == expected_loose


def test_comparisons_on_numbers_and_dates(shared, firm):
    every = invoices(shared)
    big = {i["InvoiceID"] for i in every if Decimal(str(i["Total"])) > 1000}
    assert big and set(ids(shared, "Invoices", "InvoiceID", where="Total > 1000")) == big
    assert (
        set(ids(shared, "Invoices", "InvoiceID", where="Total<=1000"))
        == {i["InvoiceID"] for i in every} - big
    )
    not_auth = {i["InvoiceID"] for i in every if i["Status"] != "AUTHORISED"}
    assert set(ids(shared, "Invoices", "InvoiceID", where='Status != "AUTHORISED"')) == not_auth
    cut = date(2026, 9, 1)
    recent = {g.id for g in firm.invoices if g.issue_date >= cut}
    assert (
        recent and set(ids(shared, "Invoices", "InvoiceID", where="Date >= DateTime(2026, 09, 01)")) == recent
    )
    older = {g.id for g in firm.invoices if g.due_date < cut}
    assert set(ids(shared, "Invoices", "InvoiceID", where="DueDate < DateTime(2026,9,1)")) == older


def test_guid_and_nested_contact_path(shared, firm):
    contact = firm.invoices[0].customer_id
    theirs = {g.id for g in firm.invoices if g.customer_id == contact}
    where = f'Contact.ContactID == guid("{contact.upper()}")'
    assert set(ids(shared, "Invoices", "InvoiceID", where=where)) == theirs


def test_text_methods_ignore_case(shared, firm):
    name = firm.customers[0].name
    word = name.split()[0]
    got = ids(shared, "Contacts", "ContactID", where=f'Name.StartsWith("{word.lower()}")')
    assert firm.customers[0].id in got
    assert all(c.name.lower().startswith(word.lower()) for c in firm.customers if c.id in got)
    fragment = "accounts@" + firm.customers[0].email.split("@")[1][:6]  # e.g. accounts@foxglo
    contains = ids(shared, "Contacts", "ContactID", where=f'EmailAddress.Contains("{fragment.upper()}")')
    expected = {c.id for c in firm.customers if c.email and fragment in c.email and not c.archived}
    assert contains and set(contains) == expected
    ends = ids(shared, "Contacts", "ContactID", where='Name.EndsWith("Limited")')
    assert ends and set(ends) == {
        c.id for c in firm.customers if c.name.endswith("Limited") and not c.archived
    }


@pytest.mark.parametrize(
    ("bad", "good"),
    [
        ('Status=="PAID" XOR Status=="VOIDED"', 'Status=="PAID" OR Status=="VOIDED"'),  # unknown operator
        ('Colour=="red"', 'Reference=="red"'),  # no such field on an Invoice
        ('Reference.ToUpper()=="X"', 'Reference.StartsWith("X")'),  # unsupported method
        ('Total > "100"', "Total > 100"),  # number against text
        ('Status > "PAID"', 'Status != "PAID"'),  # text has no order
        ('(Status=="PAID"', '(Status=="PAID")'),  # unbalanced
        ("Date >= DateTime(2026, 13, 1)", "Date >= DateTime(2026, 12, 1)"),  # not a date
        ("Total", "SentToContact"),  # not a condition
    ],
)
def test_anything_unsupported_is_a_400_validation_error_and_its_neighbour_is_served(shared, bad, good):
    answer = shared.get("Invoices", params={"where": bad})
    assert answer.status_code == 400, answer.text[:200]
    body = answer.json()
    assert (body["ErrorNumber"], body["Type"]) == (10, "ValidationException")
    assert body["Elements"][0]["ValidationErrors"][0]["Message"]
    assert shared.get("Invoices", params={"where": good}).status_code == 200


def test_order_by_any_element_with_direction(shared, firm):
    """Spec examples: `Name ASC` on /Contacts, `InvoiceNumber ASC` on /Invoices; and `Date DESC`."""
    names = [
        c["Name"] for c in shared.get("Contacts", params={**ALL, "order": "Name ASC"}).json()["Contacts"]
    ]
    assert names == sorted(names, key=str.lower) and len(names) == sum(not c.archived for c in firm.customers)
    numbers = [i["InvoiceNumber"] for i in invoices(shared, order="InvoiceNumber DESC")]
    assert numbers == sorted(numbers, reverse=True)
    by_date = invoices(shared, order="Date DESC, InvoiceNumber ASC")
    keys = [(-int(i["Date"][6:-7]), i["InvoiceNumber"]) for i in by_date]
    assert keys == sorted(keys)
    page2 = shared.get("Invoices", params={"order": "InvoiceNumber ASC", "page": 2, "pageSize": 10}).json()
    assert [i["InvoiceNumber"] for i in page2["Invoices"]] == sorted(
        i["InvoiceNumber"] for i in invoices(shared)
    )[10:20]


def test_order_by_an_unknown_element_is_a_400_and_a_known_one_is_not(shared):
    answer = shared.get("Contacts", params={"order": "ShoeSize ASC"})
    assert answer.status_code == 400 and "ShoeSize" in answer.text
    assert shared.get("Contacts", params={"order": "EmailAddress"}).status_code == 200


def test_the_parser_alone_refuses_trailing_tokens_and_names_the_position():
    fields = field_names(["Status", "Total"])
    with pytest.raises(QueryError, match="position"):
        compile_where('Status=="PAID" Status=="VOIDED"', fields, "Invoice")
    check = compile_where('NOT (Status=="PAID") and Total >= 10.5', fields, "Invoice")
    assert check is not None
    assert check({"Status": "AUTHORISED", "Total": 10.5}) and not check({"Status": "PAID", "Total": 99})
