"""The sandbox's Accounting API: paging, filters, derived amounts, writes, idempotency, xero-python parsing."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest
from xero_python.accounting import AccountingApi
from xero_python.accounting.models import HistoryRecord, HistoryRecords
from xero_python.api_client import ApiClient, Configuration
from xero_python.api_client.oauth2 import OAuth2Token

from adapters.sandbox.generator import invoice_allocations
from tests.xero_sandbox.conftest import connect


def xero_api(conn) -> AccountingApi:
    config = Configuration(
        oauth2_token=OAuth2Token(client_id=conn.sandbox.client_id, client_secret=conn.sandbox.client_secret)
    )
    config.ssl_ca_cert = str(conn.sandbox.ca_path)
    tokens = dict(conn.tokens, scope=conn.tokens["scope"].split(), expires_at=time.time() + 1500)
    client = ApiClient(config, oauth2_token_getter=lambda: tokens, oauth2_token_saver=lambda t: None)
    return AccountingApi(client, base_url=conn.sandbox.api_url)


def all_pages(conn, kind, **params):
    out, page = [], 1
    while True:
        body = conn.get(kind, params={"page": page, "pageSize": 1000, **params}).json()
        out += body[kind]
        if page >= body["pagination"]["pageCount"]:
            return out
        page += 1


def test_the_envelope_and_pagination_follow_xero(shared, firm):
    body = shared.get("Invoices", params={"page": 2, "pageSize": 150}).json()
    assert (body["Status"], body["ProviderName"][:3]) == ("OK", "ccm")
    assert body["DateTimeUTC"].startswith("/Date(")
    assert body["pagination"] == {"page": 2, "pageSize": 150, "pageCount": 3, "itemCount": len(firm.invoices)}
    assert len(body["Invoices"]) == 150
    default = shared.get("Invoices").json()
    assert default["pagination"]["pageSize"] == 100 and len(default["Invoices"]) == 100


def test_page_size_above_1000_is_refused(shared):
    answer = shared.get("Invoices", params={"pageSize": 1001})
    assert answer.status_code == 400 and answer.json()["Type"] == "ValidationException"


def test_pages_are_in_updated_order_and_cover_every_record_once(shared, firm):
    rows = all_pages(shared, "Invoices")
    assert len(rows) == len({r["InvoiceID"] for r in rows}) == len(firm.invoices)
    stamps = [int(r["UpdatedDateUTC"][6:-7]) for r in rows]
    assert stamps == sorted(stamps)


def test_if_modified_since_returns_records_updated_strictly_after(shared, firm):
    ordered = sorted(firm.invoices, key=lambda i: (i.updated, i.id))
    pivot = ordered[-10]
    since = pivot.updated.isoformat()
    rows = all_pages(shared, "Invoices", headers={})
    assert len(rows) == len(ordered)
    newer = shared.get("Invoices", headers={"If-Modified-Since": since}).json()["Invoices"]
    assert [r["InvoiceID"] for r in newer] == [i.id for i in ordered if i.updated > pivot.updated]
    http_date = (pivot.updated + timedelta(seconds=1)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert len(shared.get("Invoices", headers={"If-Modified-Since": http_date}).json()["Invoices"]) <= len(
        newer
    )


def test_invoices_carry_xero_amounts_derived_from_allocations(shared, firm):
    rows = {r["InvoiceID"]: r for r in all_pages(shared, "Invoices")}
    allocs = invoice_allocations(firm)
    for inv in firm.invoices:
        row = rows[inv.id]
        got = allocs.get(inv.id, [])
        paid = sum((a.amount for kind, a in got if kind != "credit_note"), Decimal(0))
        credited = sum((a.amount for kind, a in got if kind == "credit_note"), Decimal(0))
        assert Decimal(str(row["Total"])) == inv.total
        assert (Decimal(str(row["AmountPaid"])), Decimal(str(row["AmountCredited"]))) == (paid, credited)
        if inv.status == "authorised" and inv.amount_due_override is None:
            assert Decimal(str(row["AmountDue"])) == inv.total - paid - credited
            assert (row["Status"] == "PAID") == (inv.total - paid - credited <= 0)
        assert row["Type"] == ("ACCREC" if inv.kind == "sales" else "ACCPAY")
        assert len(row["Payments"]) == sum(1 for kind, _ in got if kind == "payment")
    statuses = Counter(r["Status"] for r in rows.values())
    assert {"DRAFT", "SUBMITTED", "AUTHORISED", "PAID", "VOIDED", "DELETED"} <= set(statuses)


def test_planted_amount_due_is_what_the_ledger_reports(shared, firm):
    plant = next(p for p in firm.plants if p.kind == "amount_due_mismatch")
    inv = next(i for i in firm.invoices if i.id == plant.record_ids[0])
    row = shared.get(f"Invoices/{inv.id}").json()["Invoices"][0]
    assert Decimal(str(row["AmountDue"])) == inv.amount_due_override


def test_contacts_hide_archived_ones_unless_asked_and_show_merges(shared, firm):
    active = all_pages(shared, "Contacts")
    every = all_pages(shared, "Contacts", includeArchived="true")
    archived = [c for c in firm.customers if c.archived]
    assert (
        archived and len(active) == len(firm.customers) - len(archived) and len(every) == len(firm.customers)
    )
    assert {c["ContactStatus"] for c in active} == {"ACTIVE"}
    merged = {c["ContactID"]: c.get("MergedToContactID") for c in every if c["ContactStatus"] == "ARCHIVED"}
    assert merged == {c.id: c.merged_into for c in archived}
    assert all(c["ContactGroups"] for c in every)  # every customer sits in its segment's group


def test_ids_contact_ids_and_statuses_filter(shared, firm):
    chosen = [firm.invoices[5].id, firm.invoices[7].id]
    rows = shared.get("Invoices", params={"IDs": ",".join(chosen)}).json()["Invoices"]
    assert sorted(r["InvoiceID"] for r in rows) == sorted(chosen)
    customer = firm.invoices[0].customer_id
    rows = all_pages(shared, "Invoices", ContactIDs=customer)
    assert {r["Contact"]["ContactID"] for r in rows} == {customer}
    assert len(rows) == sum(1 for i in firm.invoices if i.customer_id == customer)
    rows = all_pages(shared, "Invoices", Statuses="VOIDED,DELETED")
    assert {r["Status"] for r in rows} == {"VOIDED", "DELETED"}


def test_payments_over_and_prepayments_and_credit_notes_are_listed(shared, firm):
    kinds = Counter(p.kind for p in firm.payments)
    assert len(all_pages(shared, "Payments")) == kinds["payment"]
    overs = all_pages(shared, "Overpayments")
    assert len(overs) == kinds["overpayment"] and all(o["Type"] == "RECEIVE-OVERPAYMENT" for o in overs)
    assert any(o["Allocations"] for o in overs) and any(o["RemainingCredit"] > 0 for o in overs)
    assert len(all_pages(shared, "Prepayments")) == kinds["prepayment"]
    notes = all_pages(shared, "CreditNotes")
    assert len(notes) == len(firm.credit_notes) and any(n["Allocations"] for n in notes)
    deleted = [p for p in all_pages(shared, "Payments") if p["Status"] == "DELETED"]
    assert len(deleted) == sum(1 for p in firm.payments if p.deleted)


def test_unknown_records_are_404(shared):
    assert shared.get("Invoices/00000000-0000-4000-8000-000000000000").status_code == 404


def test_history_notes_are_added_read_back_and_length_checked(fixed):
    inv = next(iter(fixed.sandbox.book.invoices.by_id))
    note = {"HistoryRecords": [{"Details": "Reminder 1 sent"}]}
    added = fixed.send("PUT", f"Invoices/{inv}/History", json=note)
    assert added.status_code == 200
    assert added.json()["HistoryRecords"][0]["User"] == "System Generated"
    history = fixed.get(f"Invoices/{inv}/History").json()["HistoryRecords"]
    assert [h["Details"] for h in history][-1] == "Reminder 1 sent"
    too_long = fixed.send(
        "PUT", f"Invoices/{inv}/History", json={"HistoryRecords": [{"Details": "x" * 2501}]}
    )
    assert too_long.status_code == 400 and "2500" in too_long.text
    garbage = fixed.send("PUT", f"Invoices/{inv}/History", data=b"{not json")
    assert garbage.status_code == 400


def test_the_same_idempotency_key_and_body_is_applied_once(fixed):
    contact = next(iter(fixed.sandbox.book.contacts.by_id))
    body = {"HistoryRecords": [{"Details": "On credit hold: over limit"}]}
    first = fixed.send("PUT", f"Contacts/{contact}/History", json=body, headers={"Idempotency-Key": "k-1"})
    second = fixed.send("PUT", f"Contacts/{contact}/History", json=body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == second.status_code == 200 and first.json() == second.json()
    notes = [
        h for h in fixed.get(f"Contacts/{contact}/History").json()["HistoryRecords"] if h["Changes"] == "Note"
    ]
    assert len(notes) == 1
    other = fixed.send(
        "PUT",
        f"Contacts/{contact}/History",
        json={"HistoryRecords": [{"Details": "different"}]},
        headers={"Idempotency-Key": "k-1"},
    )
    assert other.status_code == 400


def test_contact_groups_hold_and_release_a_contact(fixed):
    book = fixed.sandbox.book
    contact = next(iter(book.contacts.by_id))
    made = fixed.send("PUT", "ContactGroups", json={"ContactGroups": [{"Name": "Credit Hold"}]})
    assert made.status_code == 200
    group = made.json()["ContactGroups"][0]
    assert (group["Name"], group["Status"]) == ("Credit Hold", "ACTIVE")
    dup = fixed.send("PUT", "ContactGroups", json={"ContactGroups": [{"Name": "credit hold"}]})
    assert dup.status_code == 400
    found = fixed.get("ContactGroups", params={"where": 'Name=="Credit Hold"'}).json()["ContactGroups"]
    assert [g["ContactGroupID"] for g in found] == [group["ContactGroupID"]]
    before = book.customer(contact).updated
    fixed.sandbox.clock.advance(5)
    added = fixed.send(
        "PUT",
        f"ContactGroups/{group['ContactGroupID']}/Contacts",
        json={"Contacts": [{"ContactID": contact}]},
    )
    assert added.status_code == 200 and added.json()["Contacts"][0]["ContactID"] == contact
    assert book.customer(contact).updated > before
    row = fixed.get(f"Contacts/{contact}").json()["Contacts"][0]
    assert "Credit Hold" in {g["Name"] for g in row["ContactGroups"]}
    members = fixed.get(f"ContactGroups/{group['ContactGroupID']}").json()["ContactGroups"][0]["Contacts"]
    assert [m["ContactID"] for m in members] == [contact]
    removed = fixed.send("DELETE", f"ContactGroups/{group['ContactGroupID']}/Contacts/{contact}")
    assert (removed.status_code, removed.content) == (204, b"")
    row = fixed.get(f"Contacts/{contact}").json()["Contacts"][0]
    assert "Credit Hold" not in {g["Name"] for g in row["ContactGroups"]}


def test_invoice_email_only_for_approved_sales_invoices_and_capped_daily(firm):
    from adapters.sandbox import SandboxClock
    from adapters.xero.sandbox import start
    from tests.xero_sandbox.conftest import NOON

    sb = start(firm, email_cap=2, clock=SandboxClock(NOON, speed=0))
    try:
        conn = connect(sb)
        emailable = [
            i
            for i in firm.invoices
            if i.kind == "sales" and i.status == "authorised" and sb.book.customer(i.customer_id).email
        ]
        draft = next(i for i in firm.invoices if i.status == "draft")
        refused = conn.send("POST", f"Invoices/{draft.id}/Email", json={})
        assert refused.status_code == 400
        for inv in emailable[:2]:
            sent = conn.send("POST", f"Invoices/{inv.id}/Email", json={})
            assert (sent.status_code, sent.content) == (204, b"")
        assert conn.send("POST", f"Invoices/{emailable[2].id}/Email", json={}).status_code == 400
        assert sb.book.emailed == [i.id for i in emailable[:2]]
        assert conn.get(f"Invoices/{emailable[0].id}").json()["Invoices"][0]["SentToContact"] is True
        sb.clock.advance(86_400)
        conn = connect(sb)  # a day later the access token has long expired
        assert conn.send("POST", f"Invoices/{emailable[2].id}/Email", json={}).status_code == 204
    finally:
        sb.stop()


def test_online_invoice_link_and_reminder_settings(fixed):
    book = fixed.sandbox.book
    inv = next(i for i in book.invoices.by_id.values() if i.kind == "sales" and i.status == "authorised")
    link = fixed.get(f"Invoices/{inv.id}/OnlineInvoice").json()["OnlineInvoices"][0]["OnlineInvoiceUrl"]
    assert link.startswith("https://in.xero.com/")
    assert fixed.get("InvoiceReminders/Settings").json() == {"InvoiceReminders": [{"Enabled": False}]}
    fixed.sandbox.set_reminders(True)
    assert fixed.get("InvoiceReminders/Settings").json() == {"InvoiceReminders": [{"Enabled": True}]}


def test_test_controls_move_updated_date_so_incremental_reads_see_them(fixed):
    sb = fixed.sandbox
    since = sb.clock.now().isoformat()
    sb.clock.advance(1)
    inv = next(
        i
        for i in sb.book.invoices.by_id.values()
        if i.kind == "sales" and sb.book.invoice_status(i) == "AUTHORISED"
    )
    pay = sb.post_payment(inv.id)
    other = next(i for i in sb.book.invoices.by_id.values() if i.status == "authorised" and i.id != inv.id)
    sb.void_invoice(other.id)
    contact = sb.change_contact(inv.customer_id, email="new@example.com")
    changed = fixed.get("Invoices", headers={"If-Modified-Since": since}).json()["Invoices"]
    assert {r["InvoiceID"] for r in changed} == {inv.id, other.id}
    paid = next(r for r in changed if r["InvoiceID"] == inv.id)
    assert (paid["Status"], paid["AmountDue"]) == ("PAID", 0.0)
    assert [
        p["PaymentID"] for p in fixed.get("Payments", headers={"If-Modified-Since": since}).json()["Payments"]
    ] == [pay.id]
    contacts = fixed.get("Contacts", headers={"If-Modified-Since": since}, params={"includeArchived": "true"})
    contacts = contacts.json()["Contacts"]
    assert [(c["ContactID"], c["EmailAddress"]) for c in contacts] == [(contact.id, "new@example.com")]


def test_unauthenticated_calls_get_xero_shaped_401s(fixed):
    answer = fixed.get("Invoices", headers={"Authorization": "Bearer nonsense"})
    assert answer.status_code == 401 and answer.json()["Title"] == "Unauthorized"
    missing_tenant = fixed.get("Invoices", headers={"xero-tenant-id": "00000000-0000-0000-0000-000000000000"})
    assert missing_tenant.status_code == 403


def test_a_read_only_granular_token_reads_but_cannot_write(fixed):
    reader = connect(
        fixed.sandbox, scopes=("offline_access", "accounting.invoices.read", "accounting.payments.read")
    )
    assert reader.get("Invoices").status_code == 200
    assert reader.get("Payments").status_code == 200
    assert reader.get("Contacts").status_code == 401
    inv = next(iter(fixed.sandbox.book.invoices.by_id))
    refused = reader.send("PUT", f"Invoices/{inv}/History", json={"HistoryRecords": [{"Details": "x"}]})
    assert refused.status_code == 401 and refused.json()["Detail"] == "AuthorizationUnsuccessful"


@pytest.mark.parametrize(
    "method",
    [
        "get_invoices",
        "get_contacts",
        "get_payments",
        "get_credit_notes",
        "get_overpayments",
        "get_prepayments",
    ],
)
def test_xero_python_deserialises_every_list(shared, method):
    api = xero_api(shared)
    kwargs = {"page": 1, "page_size": 1000}
    if method == "get_contacts":
        kwargs["include_archived"] = True
    result = getattr(api, method)(shared.sandbox.tenant_id, **kwargs)
    attr = {
        "get_invoices": "invoices",
        "get_contacts": "contacts",
        "get_payments": "payments",
        "get_credit_notes": "credit_notes",
        "get_overpayments": "overpayments",
        "get_prepayments": "prepayments",
    }[method]
    rows = getattr(result, attr)
    assert rows
    first = rows[0]
    assert first.updated_date_utc is not None and first.updated_date_utc.tzinfo is not None
    assert result.pagination.item_count >= len(rows)


def test_xero_python_reads_money_dates_and_allocations_exactly(shared, firm):
    api = xero_api(shared)
    inv = next(i for i in firm.invoices if invoice_allocations(firm).get(i.id))
    [got] = api.get_invoices(shared.sandbox.tenant_id, i_ds=[inv.id]).invoices
    assert str(got.invoice_id) == inv.id
    assert Decimal(str(got.total)) == inv.total
    assert got.date == inv.issue_date and got.due_date == inv.due_date


def test_xero_python_writes_history_and_groups(fixed):
    api = xero_api(fixed)
    tenant = fixed.sandbox.tenant_id
    inv = next(iter(fixed.sandbox.book.invoices.by_id))
    made = api.create_invoice_history(
        tenant,
        inv,
        HistoryRecords(history_records=[HistoryRecord(details="Reminder")]),
        idempotency_key="once",
    )
    assert made.history_records[0].details == "Reminder"
    history = api.get_invoice_history(tenant, inv).history_records
    assert history[-1].details == "Reminder"
    settings = api.get_invoice_reminders(tenant)
    assert settings.invoice_reminders[0].enabled is False


def test_xero_python_identity_api_lists_connections(shared):
    from xero_python.identity import IdentityApi

    api = xero_api(shared)
    identity = IdentityApi(api.api_client, base_url=shared.sandbox.base_url)
    [conn] = identity.get_connections()
    assert str(conn.tenant_id) == shared.sandbox.tenant_id and conn.created_date_utc.tzinfo is not None


def test_xero_python_holds_a_contact_emails_an_invoice_and_reads_its_online_link(fixed):
    from xero_python.accounting.models import Contact, ContactGroup, ContactGroups, Contacts, RequestEmpty

    api = xero_api(fixed)
    tenant = fixed.sandbox.tenant_id
    book = fixed.sandbox.book
    inv = next(
        i
        for i in book.invoices.by_id.values()
        if i.kind == "sales" and book.invoice_status(i) == "AUTHORISED" and book.customer(i.customer_id).email
    )
    contact = book.customer(inv.customer_id)
    group = api.create_contact_group(tenant, ContactGroups(contact_groups=[ContactGroup(name="Credit Hold")]))
    group_id = group.contact_groups[0].contact_group_id
    added = api.create_contact_group_contacts(
        tenant, group_id, Contacts(contacts=[Contact(contact_id=contact.id)])
    )
    assert str(added.contacts[0].contact_id) == contact.id
    assert str(group_id) in book.memberships[contact.id]
    api.delete_contact_group_contact(tenant, group_id, contact.id)
    assert str(group_id) not in book.memberships[contact.id]
    api.email_invoice(tenant, inv.id, RequestEmpty())
    assert book.emailed == [inv.id]
    link = api.get_online_invoice(tenant, inv.id).online_invoices[0].online_invoice_url
    assert link.startswith("https://in.xero.com/")
