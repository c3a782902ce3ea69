"""Generated records as QBO shows them: balances from allocations, plants as planted, voids, credits."""

from __future__ import annotations

from decimal import Decimal

from adapters.sandbox.generator import invoice_allocations
from tests.quickbooks_sandbox.conftest import Client


def _dec(value) -> Decimal:
    return Decimal(str(value))


def _get(client: Client, entity: str, qbo_id: int) -> dict:
    answer = client.call("GET", f"{entity.lower()}/{qbo_id}")
    assert answer.status_code == 200, answer.text
    return answer.json()[entity]


def test_invoice_balance_is_total_less_live_allocations(client: Client, sandbox, firm):
    allocs = invoice_allocations(firm)
    planted = {i for p in firm.plants for i in p.record_ids}
    partly = [
        i
        for i in firm.invoices
        if i.status == "authorised"
        and i.id in allocs
        and i.id not in planted
        and 0 < sum(a.amount for _, a in allocs[i.id]) < i.total
    ]
    assert partly
    inv = partly[0]
    doc = _get(client, "Invoice", sandbox.company.ids.qbo[inv.id])
    paid = sum(a.amount for _, a in allocs[inv.id])
    assert (_dec(doc["TotalAmt"]), _dec(doc["Balance"])) == (inv.total, inv.total - paid)
    assert doc["DocNumber"] == inv.number and doc["DueDate"] == inv.due_date.isoformat()
    assert doc["CustomerRef"]["value"] == str(sandbox.company.ids.qbo[inv.customer_id])
    assert {t["TxnType"] for t in doc["LinkedTxn"]} == {"Payment"}


def test_amount_due_plant_is_shown_as_planted(client: Client, sandbox, firm):
    plant = next(p for p in firm.plants if p.kind == "amount_due_mismatch")
    inv = next(i for i in firm.invoices if i.id == plant.record_ids[0])
    doc = _get(client, "Invoice", sandbox.company.ids.qbo[inv.id])
    assert inv.amount_due_override is not None and _dec(doc["Balance"]) == inv.amount_due_override


def test_voided_invoice_has_zero_amounts_and_the_void_note(client: Client, sandbox, firm):
    inv = next(i for i in firm.invoices if i.status == "voided")
    doc = _get(client, "Invoice", sandbox.company.ids.qbo[inv.id])
    assert (_dec(doc["TotalAmt"]), _dec(doc["Balance"]), doc["PrivateNote"]) == (
        Decimal(0),
        Decimal(0),
        "Voided",
    )


def test_drafts_bills_and_deleted_invoices_are_not_queryable(client: Client, sandbox, firm):
    visible = [i for i in firm.invoices if i.kind == "sales" and i.status not in {"draft", "deleted"}]
    assert client.query("SELECT COUNT(*) FROM Invoice")["totalCount"] == len(visible)
    deleted = next(i for i in firm.invoices if i.status == "deleted" and i.kind == "sales")
    assert client.call("GET", f"invoice/{sandbox.company.ids.qbo[deleted.id]}").status_code == 400


def test_overpayment_is_a_payment_with_unapplied_amount(client: Client, sandbox, firm):
    pay = next(p for p in firm.payments if p.kind == "overpayment" and not p.deleted)
    doc = _get(client, "Payment", sandbox.company.ids.qbo[pay.id])
    applied = sum(a.amount for a in pay.allocations)
    assert (_dec(doc["TotalAmt"]), _dec(doc["UnappliedAmt"])) == (pay.amount, pay.amount - applied)
    assert [(_dec(line["Amount"]), line["LinkedTxn"][0]["TxnType"]) for line in doc["Line"]] == [
        (a.amount, "Invoice") for a in pay.allocations
    ]


def test_credit_memo_remaining_credit_and_its_application_payment(client: Client, sandbox, firm):
    note = next(n for n in firm.credit_notes if n.status == "authorised" and n.allocations)
    memo_id = sandbox.company.ids.qbo[note.id]
    memo = _get(client, "CreditMemo", memo_id)
    used = sum(a.amount for a in note.allocations)
    assert (_dec(memo["TotalAmt"]), _dec(memo["RemainingCredit"])) == (note.total, note.total - used)
    app = _get(client, "Payment", sandbox.company.ids.applications[note.id])
    assert _dec(app["TotalAmt"]) == 0
    links = {(line["LinkedTxn"][0]["TxnType"], line["LinkedTxn"][0]["TxnId"]) for line in app["Line"]}
    assert ("CreditMemo", str(memo_id)) in links
    assert {("Invoice", str(sandbox.company.ids.qbo[a.invoice_id])) for a in note.allocations} <= links


def test_customer_balance_sums_open_invoices_and_segment_is_customer_type(client: Client, sandbox, firm):
    cust = next(c for c in firm.customers if not c.archived and not c.merged_into)
    qbo_id = sandbox.company.ids.qbo[cust.id]
    doc = _get(client, "Customer", qbo_id)
    invoices = client.query(f"SELECT * FROM Invoice WHERE CustomerRef = '{qbo_id}' MAXRESULTS 1000").get(
        "Invoice", []
    )
    assert _dec(doc["Balance"]) == sum((_dec(i["Balance"]) for i in invoices), Decimal(0))
    assert doc["CustomerTypeRef"]["name"] == cust.segment and doc["DisplayName"] == cust.name


def test_amounts_are_exact_json_numbers(client: Client):
    raw = client.call("GET", "invoice/60").text
    assert '"TotalAmt":' in raw and '"TotalAmt":"' not in raw


def test_an_inactive_customer_s_balance_is_still_what_its_invoices_owe(client: Client, sandbox, firm):
    """Customer.Balance is "the open balance amount or the amount unpaid by the customer" (Intuit's Customer
    entity reference); making a customer inactive does not pay its invoices."""
    owing = []
    for cust in (c for c in firm.customers if c.archived or c.merged_into):
        qbo_id = sandbox.company.ids.qbo[cust.id]
        invoices = client.query(f"SELECT * FROM Invoice WHERE CustomerRef = '{qbo_id}' MAXRESULTS 1000").get(
            "Invoice", []
        )
        open_total = sum((_dec(i["Balance"]) for i in invoices), Decimal(0))
        doc = _get(client, "Customer", qbo_id)
        assert doc["Active"] is False and _dec(doc["Balance"]) == open_total
        owing.append(open_total)
    assert any(o > 0 for o in owing), "no inactive customer with an open invoice in this firm"
