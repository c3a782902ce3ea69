"""searchTerm, InvoiceNumbers and summaryOnly on the lists, as the spec describes them.

Sources: xero_accounting.yaml (../shared/reference/xero-openapi): /Contacts `searchTerm` ("case-insensitive
text search across the Name, FirstName, LastName, ContactNumber and EmailAddress fields");
components/parameters/searchTerm for /Invoices ("across the fields e.g. InvoiceNumber, Reference");
/Invoices `InvoiceNumbers`; components/parameters/summaryOnly ("only lightweight fields, excluding
computation-heavy fields"); LEDGER-API-FACTS.md "summaryOnly=true (no line items or heavy fields)".
"""

from __future__ import annotations

ALL = {"pageSize": 1000}


def test_contact_search_term_matches_name_or_email_ignoring_case(shared, firm):
    target = firm.customers[0]
    word = target.name.split()[1].upper()
    got = shared.get("Contacts", params={**ALL, "searchTerm": word}).json()["Contacts"]
    expected = {
        c.id
        for c in firm.customers
        if not c.archived and (word.lower() in c.name.lower() or word.lower() in (c.email or "").lower())
    }
    assert target.id in expected and {c["ContactID"] for c in got} == expected
    by_mail = shared.get("Contacts", params={**ALL, "searchTerm": target.email.split("@")[1]}).json()
    assert target.id in {c["ContactID"] for c in by_mail["Contacts"]}


def test_invoice_search_term_matches_number_or_reference(shared, firm):
    ref = next(i for i in firm.invoices if i.reference)
    got = shared.get("Invoices", params={**ALL, "searchTerm": ref.reference.lower()}).json()["Invoices"]
    assert ref.id in {i["InvoiceID"] for i in got}
    assert all(ref.reference.lower() in (i["Reference"] + i["InvoiceNumber"]).lower() for i in got)
    one = shared.get("Invoices", params={**ALL, "searchTerm": "000123"}).json()["Invoices"]
    assert {i["InvoiceNumber"] for i in one} == {i.number for i in firm.invoices if "000123" in i.number}


def test_invoice_numbers_picks_exactly_those_invoices(shared, firm):
    wanted = [firm.invoices[5].number, firm.invoices[40].number]
    got = shared.get("Invoices", params={"InvoiceNumbers": ",".join(wanted)}).json()
    assert sorted(i["InvoiceNumber"] for i in got["Invoices"]) == sorted(wanted)
    assert got["pagination"]["itemCount"] == 2


def test_summary_only_leaves_out_the_heavy_fields_and_nothing_else(shared):
    full = shared.get("Invoices", params={"pageSize": 50}).json()["Invoices"]
    light = shared.get("Invoices", params={"pageSize": 50, "summaryOnly": "true"}).json()["Invoices"]
    heavy = {"LineItems", "Payments", "CreditNotes", "Prepayments", "Overpayments"}
    assert [i["InvoiceID"] for i in light] == [i["InvoiceID"] for i in full]
    for f, s in zip(full, light, strict=True):
        assert heavy <= set(f) and not heavy & set(s)
        assert {k: v for k, v in f.items() if k not in heavy} == s
    contacts = shared.get("Contacts", params={"pageSize": 5, "summaryOnly": "true"}).json()["Contacts"]
    assert contacts and all("Balances" not in c and c["Name"] for c in contacts)
