"""Contact Balances as Xero returns them, consistent with the contact's invoices on the sandbox's clock.

Sources: xero_accounting.yaml (../shared/reference/xero-openapi): components/schemas/Contact.Balances and
components/schemas/Balances ("The raw AccountsReceivable(sales invoices) and AccountsPayable(bills) outstanding
and overdue amounts, not converted to base currency (read only)"), present in the examples of GET /Contacts
(paged) and GET /Contacts/{ContactID}; LEDGER-API-FACTS.md "Contacts carry Balances.AccountsReceivable
.{Outstanding,Overdue} ... a change of balance does not move UpdatedDateUTC".
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from tests.xero_sandbox.conftest import connect

OPEN = ("AUTHORISED",)  # a SUBMITTED invoice awaits approval: Xero has not posted it, so no balance holds it


def expected(conn, contact_id: str, today: date) -> tuple[Decimal, Decimal]:
    """(outstanding, overdue) from the contact's sales invoices as the API shows them."""
    rows = conn.get("Invoices", params={"ContactIDs": contact_id, "pageSize": 1000}).json()["Invoices"]
    outstanding = overdue = Decimal(0)
    for inv in rows:
        if inv["Type"] != "ACCREC" or inv["Status"] not in OPEN:
            continue
        due = Decimal(str(inv["AmountDue"]))
        outstanding += due
        if date.fromisoformat(inv["DueDateString"][:10]) < today:
            overdue += due
    return outstanding, overdue


def receivable(contact: dict) -> tuple[Decimal, Decimal]:
    ar = contact["Balances"]["AccountsReceivable"]
    return Decimal(str(ar["Outstanding"])), Decimal(str(ar["Overdue"]))


def test_every_contact_s_balances_agree_with_its_invoices_on_list_and_single_get(fixed):
    today = fixed.sandbox.clock.now().date()
    contacts = fixed.get("Contacts", params={"pageSize": 1000}).json()["Contacts"]
    owing = 0
    for contact in contacts:
        figures = expected(fixed, contact["ContactID"], today)
        assert receivable(contact) == figures, contact["Name"]
        owing += figures[1] > 0
    assert owing >= 5  # the demo firm has customers with overdue invoices: the check is not vacuous
    one = contacts[0]["ContactID"]
    single = fixed.get(f"Contacts/{one}").json()["Contacts"][0]
    assert receivable(single) == expected(fixed, one, today)


def test_a_payment_lowers_the_balance_without_moving_updated_date(fixed):
    sb = fixed.sandbox
    today = sb.clock.now().date()
    inv = next(
        i
        for i in sb.book.invoices.by_id.values()
        if i.kind == "sales" and sb.book.invoice_status(i) == "AUTHORISED" and i.due_date < today
    )
    before = fixed.get(f"Contacts/{inv.customer_id}").json()["Contacts"][0]
    sb.post_payment(inv.id, Decimal("10.00"))
    after = fixed.get(f"Contacts/{inv.customer_id}").json()["Contacts"][0]
    assert receivable(before)[0] - receivable(after)[0] == Decimal("10.00")
    assert receivable(before)[1] - receivable(after)[1] == Decimal("10.00")
    assert after["UpdatedDateUTC"] == before["UpdatedDateUTC"]


def test_overdue_follows_the_sandbox_clock_past_the_due_date(fixed):
    sb = fixed.sandbox
    contact = sb.book.contacts.by_id[next(iter(sb.book.contacts.by_id))]
    later = sb.add_invoice(contact.id, Decimal("120.00"), due=sb.clock.now().date())
    first = receivable(fixed.get(f"Contacts/{contact.id}").json()["Contacts"][0])
    sb.clock.advance(86_400)  # the due date is now yesterday (and the access token long expired)
    second = receivable(connect(sb).get(f"Contacts/{contact.id}").json()["Contacts"][0])
    assert second[0] == first[0] and second[1] - first[1] == Decimal("120.00")
    assert later.customer_id == contact.id


def test_bills_count_as_payable_not_receivable(fixed):
    sb = fixed.sandbox
    bill = next(
        i for i in sb.book.invoices.by_id.values() if i.kind == "bill" and sb.book.invoice_status(i) in OPEN
    )
    contact = fixed.get(f"Contacts/{bill.customer_id}").json()["Contacts"][0]
    payable = Decimal(str(contact["Balances"]["AccountsPayable"]["Outstanding"]))
    assert payable >= bill.total - sum(
        (a.amount for _, _, a in sb.book.live_allocations(bill.id)), Decimal(0)
    )
    assert receivable(contact) == expected(fixed, bill.customer_id, sb.clock.now().date())


def test_where_can_pick_the_contacts_with_something_overdue(fixed):
    """`where` on a nested Balances path (xero_accounting.yaml: Contact.Balances, "Filter by an any element")."""
    contacts = fixed.get("Contacts", params={"pageSize": 1000}).json()["Contacts"]
    overdue = {c["ContactID"] for c in contacts if receivable(c)[1] > 0}
    where = "Balances.AccountsReceivable.Overdue > 0"
    picked = fixed.get("Contacts", params={"pageSize": 1000, "where": where}).json()["Contacts"]
    assert overdue and {c["ContactID"] for c in picked} == overdue
