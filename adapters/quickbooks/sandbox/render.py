"""The generator's ledger-neutral records rendered as QBO JSON objects (dicts of str, Decimal, bool, ...).

QBO has no draft invoices or credit memos and no bills in receivables, so those are left out. Voided
documents show as QBO shows them: amounts zero and PrivateNote "Voided". Deleted documents exist only as
CDC tombstones. A credit memo is applied to invoices the QBO way: through a Payment with TotalAmt 0 whose
lines link the Invoice and the CreditMemo. Over- and prepayments are Payments with UnappliedAmt.
Balances are derived from allocations; a planted `amount_due_override` is shown as planted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from adapters.sandbox.generator import (
    Firm,
    GenAllocation,
    GenCreditNote,
    GenCustomer,
    GenInvoice,
    GenLine,
    GenPayment,
)

Doc = dict[str, Any]
CENT = Decimal("0.01")
ZERO = Decimal("0.00")
CURRENCY_NAMES = {"GBP": "British Pound Sterling", "EUR": "Euro", "USD": "United States Dollar"}
SEGMENT_IDS = {"Retail": "1", "Trade": "2", "Wholesale": "3"}
TERMS = {14: "2", 30: "3", 45: "4"}


@dataclass(frozen=True, slots=True)
class CreditApplication:
    """The QBO Payment (TotalAmt 0) that applies a credit memo to invoices."""

    credit: GenCreditNote


def stamp(when: datetime, tz: ZoneInfo) -> str:
    """A QBO date-time: whole seconds in the company's zone with its offset."""
    return when.astimezone(tz).replace(microsecond=0).isoformat()


def money(amount: Decimal) -> Decimal:
    """An amount to the cent."""
    return amount.quantize(CENT)


def ref(value: str, name: str | None = None) -> Doc:
    """A QBO reference object."""
    return {"value": value} if name is None else {"value": value, "name": name}


def currency_ref(code: str) -> Doc:
    """CurrencyRef for a currency code."""
    return ref(code, CURRENCY_NAMES.get(code, code))


def exchange_rate(units_per_base: Decimal) -> Decimal:
    """QBO's ExchangeRate (home currency per unit of the foreign one) from the generator's rate."""
    return Decimal(1) if units_per_base == 1 else (Decimal(1) / units_per_base).quantize(Decimal("0.000001"))


@dataclass
class Ids:
    """QBO's numeric Ids for the generator's uuid ids, and what rendering needs to look up."""

    firm: Firm
    tz: ZoneInfo
    qbo: dict[str, int] = field(default_factory=dict)
    customers: dict[str, GenCustomer] = field(default_factory=dict)
    paid_by: dict[str, list[tuple[str, GenAllocation]]] = field(default_factory=lambda: defaultdict(list))
    applications: dict[str, int] = field(default_factory=dict)  # credit note id -> its Payment's Id
    next_id: int = 1

    def assign(self, source_id: str) -> int:
        """Give a source record the next Id."""
        self.qbo[source_id] = self.next_id
        self.next_id += 1
        return self.qbo[source_id]

    def customer_ref(self, customer_id: str) -> Doc:
        """CustomerRef with the customer's display name."""
        return ref(str(self.qbo[customer_id]), self.customers[customer_id].name)


def visible_invoice(inv: GenInvoice) -> bool:
    """Whether QBO would hold this invoice (deleted ones as tombstones)."""
    return inv.kind == "sales" and inv.status != "draft"


def index(firm: Firm, tz: ZoneInfo) -> Ids:
    """Number every record QBO would hold, in creation order per entity, and collect allocations."""
    ids = Ids(firm, tz)
    for c in firm.customers:
        ids.customers[c.id] = c
        ids.assign(c.id)
    for inv in firm.invoices:
        if visible_invoice(inv):
            ids.assign(inv.id)
    for note in firm.credit_notes:
        if note.status != "draft":
            ids.assign(note.id)
    for pay in firm.payments:
        ids.assign(pay.id)
        if not pay.deleted:
            for a in pay.allocations:
                ids.paid_by[a.invoice_id].append((pay.id, a))
    for note in firm.credit_notes:
        if note.status == "authorised" and note.allocations:
            ids.applications[note.id] = ids.assign(f"apply:{note.id}")
            for a in note.allocations:
                ids.paid_by[a.invoice_id].append((f"apply:{note.id}", a))
    return ids


def meta(created: datetime, updated: datetime, tz: ZoneInfo) -> Doc:
    """The MetaData block."""
    return {"CreateTime": stamp(created, tz), "LastUpdatedTime": stamp(updated, tz)}


def invoice_balance(inv: GenInvoice, ids: Ids) -> Decimal:
    """What QBO reports as the invoice's Balance (zero when voided, the plant when planted)."""
    if inv.status == "voided":
        return ZERO
    if inv.amount_due_override is not None:
        return money(inv.amount_due_override)
    return money(inv.total - sum((a.amount for _, a in ids.paid_by.get(inv.id, ())), Decimal(0)))


def invoice_total(inv: GenInvoice) -> Decimal:
    """TotalAmt: zero once voided."""
    return ZERO if inv.status == "voided" else inv.total


def email_status(inv: GenInvoice) -> str:
    """EmailStatus of a generated invoice: approved invoices were sent, submitted ones not yet."""
    return "EmailSent" if inv.status == "authorised" else "NotSet"


def unapplied(pay: GenPayment) -> Decimal:
    """UnappliedAmt: what the payment's lines do not use."""
    return money(pay.amount - sum((a.amount for a in pay.allocations), Decimal(0)))


def lines(items: Iterable[GenLine], voided: bool) -> list[Doc]:
    """Sales item lines plus the subtotal line, as QBO returns them."""
    out: list[Doc] = []
    subtotal = Decimal(0)
    for n, line in enumerate(items, start=1):
        amount = ZERO if voided else money(line.quantity * line.unit_amount)
        subtotal += amount
        out.append({
            "Id": str(n), "LineNum": n, "Description": line.description, "Amount": amount,
            "DetailType": "SalesItemLineDetail",
            "SalesItemLineDetail": {
                "ItemRef": ref(str(n), line.description), "Qty": line.quantity,
                "UnitPrice": ZERO if voided else line.unit_amount,
                "TaxCodeRef": ref("2" if line.tax_amount else "5"),
            },
        })  # fmt: skip
    out.append({"Amount": money(subtotal), "DetailType": "SubTotalLineDetail", "SubTotalLineDetail": {}})
    return out


def customer(c: GenCustomer, balance: Decimal, ids: Ids) -> Doc:
    """A Customer; merged and archived customers are inactive, as QBO shows them."""
    active = not c.archived and c.merged_into is None
    name = c.name if active else f"{c.name} (deleted)"
    doc: Doc = {
        "Id": str(ids.qbo[c.id]), "SyncToken": "0", "domain": "QBO", "sparse": False,
        "DisplayName": name, "CompanyName": c.name, "FullyQualifiedName": name, "PrintOnCheckName": c.name,
        "Active": active, "Taxable": False, "Job": False, "BillWithParent": False, "IsProject": False,
        # The open balance of the customer's invoices, active or not: an inactive customer with open invoices
        # shows what it owes (a Balance of 0 beside open invoices would be a contradiction no ledger shows).
        "Balance": balance, "BalanceWithJobs": balance,
        "CurrencyRef": currency_ref(c.currency), "PreferredDeliveryMethod": "Email",
        "CustomerTypeRef": ref(SEGMENT_IDS.get(c.segment, "9"), c.segment),
        "MetaData": meta(c.created, c.updated, ids.tz),
    }  # fmt: skip
    if c.email:
        doc["PrimaryEmailAddr"] = {"Address": c.email}
    if c.phone is not None:  # QBO keeps a phone as the free text typed in; absent when there is none
        doc["Mobile" if c.phone.mobile else "PrimaryPhone"] = {"FreeFormNumber": c.phone.dialable}
    return doc


def invoice(inv: GenInvoice, ids: Ids) -> Doc:
    """An Invoice with its LinkedTxn to the payments applied to it."""
    voided = inv.status == "voided"
    cust = ids.customers[inv.customer_id]
    linked = [] if voided else [
        {"TxnId": str(ids.qbo[pid]), "TxnType": "Payment"}
        for pid in dict.fromkeys(pid for pid, _ in ids.paid_by.get(inv.id, ()))
    ]  # fmt: skip
    total, balance = invoice_total(inv), invoice_balance(inv, ids)
    rate = exchange_rate(inv.currency_rate)
    doc: Doc = {
        "Id": str(ids.qbo[inv.id]), "SyncToken": "0", "domain": "QBO", "sparse": False,
        "DocNumber": inv.number, "TxnDate": inv.issue_date.isoformat(), "DueDate": inv.due_date.isoformat(),
        "CustomerRef": ids.customer_ref(inv.customer_id), "CurrencyRef": currency_ref(inv.currency),
        "ExchangeRate": rate, "TotalAmt": total, "HomeTotalAmt": total if rate == 1 else money(total * rate),
        "Balance": balance, "HomeBalance": balance if rate == 1 else money(balance * rate),
        "Line": lines(inv.lines, voided), "TxnTaxDetail": {"TotalTax": ZERO if voided else inv.tax},
        "LinkedTxn": linked, "EmailStatus": email_status(inv),
        "PrintStatus": "NotSet", "ApplyTaxAfterDiscount": False, "Deposit": ZERO, "CustomField": [],
        "MetaData": meta(inv.created, inv.updated, ids.tz),
    }  # fmt: skip
    if cust.email:
        doc["BillEmail"] = {"Address": cust.email}
    if voided:
        doc["PrivateNote"] = "Voided"
    elif inv.reference:
        doc["PrivateNote"] = inv.reference
    return doc


def payment(pay: GenPayment, ids: Ids) -> Doc:
    """A Payment: one line per invoice it pays; what is left over is UnappliedAmt."""
    doc: Doc = {
        "Id": str(ids.qbo[pay.id]), "SyncToken": "0", "domain": "QBO", "sparse": False,
        "TxnDate": pay.date.isoformat(), "CustomerRef": ids.customer_ref(pay.customer_id),
        "CurrencyRef": currency_ref(pay.currency), "ExchangeRate": exchange_rate(pay.currency_rate),
        "TotalAmt": pay.amount, "UnappliedAmt": unapplied(pay), "ProcessPayment": False,
        "DepositToAccountRef": ref("4", "Undeposited Funds"),
        "Line": [_paid_line(a.amount, a.invoice_id, "Invoice", ids) for a in pay.allocations],
        "MetaData": meta(pay.created, pay.updated, ids.tz),
    }  # fmt: skip
    if pay.reference:
        doc["PaymentRefNum"] = pay.reference[:21]
    return doc


def _paid_line(amount: Decimal, source_id: str, kind: str, ids: Ids) -> Doc:
    return {"Amount": amount, "LinkedTxn": [{"TxnId": str(ids.qbo[source_id]), "TxnType": kind}]}


def credit_application(app: CreditApplication, ids: Ids) -> Doc:
    """The zero-amount Payment through which QBO applies a credit memo to invoices."""
    note = app.credit
    lines_: list[Doc] = []
    for a in note.allocations:
        lines_.append(_paid_line(a.amount, a.invoice_id, "Invoice", ids))
        lines_.append(_paid_line(a.amount, note.id, "CreditMemo", ids))
    return {
        "Id": str(ids.applications[note.id]), "SyncToken": "0", "domain": "QBO", "sparse": False,
        "TxnDate": max(a.date for a in note.allocations).isoformat(),
        "CustomerRef": ids.customer_ref(note.customer_id), "CurrencyRef": currency_ref(note.currency),
        "ExchangeRate": exchange_rate(note.currency_rate), "TotalAmt": ZERO, "UnappliedAmt": ZERO,
        "ProcessPayment": False, "Line": lines_, "MetaData": meta(note.created, note.updated, ids.tz),
    }  # fmt: skip


def credit_memo(note: GenCreditNote, ids: Ids) -> Doc:
    """A CreditMemo; RemainingCredit (and Balance) is what its applications have not used."""
    voided = note.status == "voided"
    remaining = ZERO if voided else money(note.total - sum((a.amount for a in note.allocations), Decimal(0)))
    total = ZERO if voided else note.total
    doc: Doc = {
        "Id": str(ids.qbo[note.id]), "SyncToken": "0", "domain": "QBO", "sparse": False,
        "DocNumber": note.number, "TxnDate": note.date.isoformat(),
        "CustomerRef": ids.customer_ref(note.customer_id), "CurrencyRef": currency_ref(note.currency),
        "ExchangeRate": exchange_rate(note.currency_rate), "TotalAmt": total, "RemainingCredit": remaining,
        "Balance": remaining, "Line": lines(note.lines, voided), "PrintStatus": "NotSet",
        "EmailStatus": "NotSet", "MetaData": meta(note.created, note.updated, ids.tz),
    }  # fmt: skip
    if voided:
        doc["PrivateNote"] = "Voided"
    return doc
