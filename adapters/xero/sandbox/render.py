"""Generated records in Xero's JSON shape: MS-JSON dates, ISO ...DateString twins, Xero's field names.

Money goes out as JSON numbers, as Xero sends them: a 2-decimal Decimal converted to float prints back as the
same digits (float repr is the shortest round-trip form), so nothing is lost on the wire.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from adapters.sandbox.generator import (
    GenAllocation,
    GenCreditNote,
    GenCustomer,
    GenInvoice,
    GenLine,
    GenPayment,
)

_EPOCH_DAY = date(1970, 1, 1)
_ALLOC_NS = uuid.UUID("6f1c2a52-8d8e-4c5e-9d3c-0c1c8a7a5e01")
INVOICE_STATUS = {
    "draft": "DRAFT",
    "submitted": "SUBMITTED",
    "authorised": "AUTHORISED",
    "voided": "VOIDED",
    "deleted": "DELETED",
}
CREDIT_STATUS = {"draft": "DRAFT", "authorised": "AUTHORISED", "voided": "VOIDED", "deleted": "DELETED"}


def ms(at: datetime) -> str:
    """An instant as Xero's MS-JSON date: "/Date(1573755038314+0000)/"."""
    return f"/Date({int(at.timestamp() * 1000)}+0000)/"


def ms_day(day: date) -> str:
    """A date (midnight UTC) as an MS-JSON date."""
    return f"/Date({(day - _EPOCH_DAY).days * 86_400_000}+0000)/"


def iso_day(day: date) -> str:
    return f"{day.isoformat()}T00:00:00"


def iso_instant(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def num(value: Decimal) -> float:
    return float(value)


def allocation_id(source_id: str, alloc: GenAllocation, index: int) -> str:
    """A stable AllocationID: the same allocation renders with the same id every time."""
    return str(uuid.uuid5(_ALLOC_NS, f"{source_id}:{alloc.invoice_id}:{index}"))


def contact_ref(c: GenCustomer) -> dict[str, Any]:
    return {
        "ContactID": c.id,
        "Name": c.name,
        "Addresses": [],
        "Phones": [],
        "ContactGroups": [],
        "ContactPersons": [],
        "HasValidationErrors": False,
    }


def line_items(lines: tuple[GenLine, ...], tax_type: str) -> list[dict[str, Any]]:
    return [
        {
            "Description": ln.description,
            "Quantity": num(ln.quantity),
            "UnitAmount": num(ln.unit_amount),
            "TaxType": tax_type,
            "TaxAmount": num(ln.tax_amount),
            "LineAmount": num(ln.quantity * ln.unit_amount),
            "AccountCode": "200" if tax_type == "OUTPUT2" else "400",
            "Tracking": [],
        }
        for ln in lines
    ]


@lru_cache(maxsize=8192)
def _line_json(line: GenLine, tax_type: str) -> str:
    return json.dumps(line_items((line,), tax_type)[0], separators=(",", ":"))


@lru_cache(maxsize=16384)
def _contact_ref_json(contact_id: str, name: str) -> str:
    return json.dumps(
        {
            "ContactID": contact_id,
            "Name": name,
            "Addresses": [],
            "Phones": [],
            "ContactGroups": [],
            "ContactPersons": [],
            "HasValidationErrors": False,
        },
        separators=(",", ":"),
    )


def invoice_json(
    inv: GenInvoice, cust: GenCustomer, allocs: list[tuple[str, Any, GenAllocation]], sent: bool = False
) -> str:
    """`invoice(...)` as compact JSON, fast: catalogue lines and contact refs are encoded once and reused."""
    out = invoice(inv, cust, allocs, sent, nested=False)
    tax_type = "OUTPUT2" if inv.kind == "sales" else "INPUT2"
    lines = ",".join(_line_json(ln, tax_type) for ln in inv.lines)
    head = json.dumps(out, separators=(",", ":"))[:-1]
    return f'{head},"Contact":{_contact_ref_json(cust.id, cust.name)},"LineItems":[{lines}]}}'


def phones(c: GenCustomer) -> list[dict[str, str]]:
    """A contact's Phones as Xero lists them: all four types, those without a number blank."""
    p = c.phone
    filled = None if p is None else ("MOBILE" if p.mobile else "DEFAULT")
    blank = {"PhoneNumber": "", "PhoneAreaCode": "", "PhoneCountryCode": ""}
    return [
        {"PhoneType": kind, "PhoneNumber": p.number, "PhoneAreaCode": p.area, "PhoneCountryCode": p.country}
        if p is not None and kind == filled
        else {"PhoneType": kind, **blank}
        for kind in ("DEFAULT", "DDI", "FAX", "MOBILE")
    ]


def contact(
    c: GenCustomer,
    groups: list[dict[str, Any]],
    balances: dict[str, dict[str, float]] | None = None,
    persons: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A Contact as GET /Contacts returns it (with its Balances and ContactPersons when given)."""
    out: dict[str, Any] = {
        "ContactID": c.id,
        "ContactStatus": "ARCHIVED" if c.archived else "ACTIVE",
        "Name": c.name,
        "EmailAddress": c.email or "",
        "BankAccountDetails": "",
        "Addresses": [],
        "Phones": phones(c),
        "UpdatedDateUTC": ms(c.updated),
        "ContactGroups": groups,
        "IsSupplier": False,
        "IsCustomer": True,
        "DefaultCurrency": c.currency,
        "ContactPersons": list(persons or []),
        "HasAttachments": False,
        "HasValidationErrors": False,
    }
    if balances is not None:
        out["Balances"] = balances
    if c.merged_into:
        out["MergedToContactID"] = c.merged_into
    return out


def amounts(
    inv: GenInvoice, allocs: list[tuple[str, Any, GenAllocation]]
) -> tuple[Decimal, Decimal, Decimal]:
    """(paid, credited, due) of an invoice from its live allocations; the ledger's planted figure wins."""
    paid = sum((a.amount for kind, _, a in allocs if kind != "credit_note"), Decimal(0))
    credited = sum((a.amount for kind, _, a in allocs if kind == "credit_note"), Decimal(0))
    if inv.status == "authorised":
        due = inv.total - paid - credited
    else:
        due = inv.total if inv.status in ("draft", "submitted") else Decimal(0)
    if inv.amount_due_override is not None:
        due = inv.amount_due_override
    return paid, credited, due


def invoice_status(inv: GenInvoice, allocs: list[tuple[str, Any, GenAllocation]]) -> str:
    """Xero's Status: "paid" is not stored, it follows from an authorised invoice owing nothing."""
    status = INVOICE_STATUS[inv.status]
    _, _, due = amounts(inv, allocs)
    if status == "AUTHORISED" and due <= 0 and (allocs or inv.amount_due_override is not None):
        return "PAID"
    return status


def invoice(
    inv: GenInvoice,
    cust: GenCustomer,
    allocs: list[tuple[str, Any, GenAllocation]],
    sent: bool = False,
    *,
    nested: bool = True,
) -> dict[str, Any]:
    """An Invoice as GET /Invoices returns it; `allocs` are (source kind, source record, allocation).

    `nested=False` leaves out Contact and LineItems, which `invoice_json` splices in pre-encoded.
    """
    pays: list[dict[str, Any]] = []
    credits: list[dict[str, Any]] = []
    overs: list[dict[str, Any]] = []
    pres: list[dict[str, Any]] = []
    for kind, src, alloc in allocs:
        if kind == "payment":
            pays.append(
                {
                    "PaymentID": src.id,
                    "Date": ms_day(alloc.date),
                    "Amount": num(alloc.amount),
                    "Reference": src.reference or "",
                    "CurrencyRate": num(src.currency_rate),
                    "HasAccount": False,
                    "HasValidationErrors": False,
                }
            )
        elif kind == "credit_note":
            credits.append(
                {
                    "CreditNoteID": src.id,
                    "CreditNoteNumber": src.number,
                    "ID": src.id,
                    "AppliedAmount": num(alloc.amount),
                    "DateString": iso_day(alloc.date),
                    "Date": ms_day(alloc.date),
                    "LineItems": [],
                    "Total": num(src.total),
                }
            )
        else:
            key = "OverpaymentID" if kind == "overpayment" else "PrepaymentID"
            entry = {
                key: src.id,
                "ID": src.id,
                "AppliedAmount": num(alloc.amount),
                "DateString": iso_day(alloc.date),
                "Date": ms_day(alloc.date),
                "LineItems": [],
                "Total": num(src.amount),
            }
            (overs if kind == "overpayment" else pres).append(entry)
    paid, credited, due = amounts(inv, allocs)
    status = invoice_status(inv, allocs)
    out: dict[str, Any] = {
        "Type": "ACCREC" if inv.kind == "sales" else "ACCPAY",
        "InvoiceID": inv.id,
        "InvoiceNumber": inv.number,
        "Reference": inv.reference or "",
        "Payments": pays,
        "CreditNotes": credits,
        "Prepayments": pres,
        "Overpayments": overs,
        "AmountDue": num(due),
        "AmountPaid": num(paid),
        "AmountCredited": num(credited),
        "SentToContact": sent,
        "CurrencyRate": num(inv.currency_rate),
        "IsDiscounted": False,
        "HasAttachments": False,
        "HasErrors": False,
        "DateString": iso_day(inv.issue_date),
        "Date": ms_day(inv.issue_date),
        "DueDateString": iso_day(inv.due_date),
        "DueDate": ms_day(inv.due_date),
        "Status": status,
        "LineAmountTypes": "Exclusive",
        "SubTotal": num(inv.subtotal),
        "TotalTax": num(inv.tax),
        "Total": num(inv.total),
        "UpdatedDateUTC": ms(inv.updated),
        "CurrencyCode": inv.currency,
    }
    if status == "PAID" and allocs:
        last = max(a.date for _, _, a in allocs)
        out["FullyPaidOnDate"] = ms_day(last)
    if nested:
        out["Contact"] = contact_ref(cust)
        out["LineItems"] = line_items(inv.lines, "OUTPUT2" if inv.kind == "sales" else "INPUT2")
    return out


def invoice_ref(inv: GenInvoice, cust: GenCustomer, currency: str | None = None) -> dict[str, Any]:
    """The short invoice object nested in payments and allocations."""
    return {
        "Type": "ACCREC" if inv.kind == "sales" else "ACCPAY",
        "InvoiceID": inv.id,
        "InvoiceNumber": inv.number,
        "Payments": [],
        "CreditNotes": [],
        "Prepayments": [],
        "Overpayments": [],
        "HasErrors": False,
        "IsDiscounted": False,
        "Contact": contact_ref(cust),
        "LineItems": [],
        "CurrencyCode": currency or inv.currency,
    }


def payment(pay: GenPayment, inv: GenInvoice, cust: GenCustomer) -> dict[str, Any]:
    """A plain Payment as GET /Payments returns it (AUTHORISED or DELETED, with its Invoice)."""
    return {
        "PaymentID": pay.id,
        "Date": ms_day(pay.date),
        "BankAmount": num(pay.amount),
        "Amount": num(pay.amount),
        "Reference": pay.reference or "",
        "CurrencyRate": num(pay.currency_rate),
        "PaymentType": "ACCRECPAYMENT",
        "Status": "DELETED" if pay.deleted else "AUTHORISED",
        "UpdatedDateUTC": ms(pay.updated),
        "HasAccount": True,
        "IsReconciled": False,
        "Account": {"AccountID": _ACCOUNT_ID, "Code": "090"},
        # The payment's own currency: Xero pays in the invoice's currency, so a mismatch here is a plant.
        "Invoice": invoice_ref(inv, cust, pay.currency),
        "HasValidationErrors": False,
    }


_ACCOUNT_ID = "0f5a4ae4-0bd2-4a5a-a0a3-4a1f3d8f6f1b"


def allocations(
    source_id: str,
    allocs: tuple[GenAllocation, ...],
    invoices: dict[str, GenInvoice],
    customers: dict[str, GenCustomer],
) -> list[dict[str, Any]]:
    out = []
    for i, a in enumerate(allocs):
        inv = invoices[a.invoice_id]
        out.append(
            {
                "AllocationID": allocation_id(source_id, a, i),
                "Amount": num(a.amount),
                "Date": ms_day(a.date),
                "Invoice": invoice_ref(inv, customers[inv.customer_id]),
                "IsDeleted": False,
            }
        )
    return out


def credit_payment(
    pay: GenPayment, cust: GenCustomer, invoices: dict[str, GenInvoice], customers: dict[str, GenCustomer]
) -> dict[str, Any]:
    """An Overpayment or Prepayment (RECEIVE-...), with Allocations and RemainingCredit."""
    remaining = pay.amount - sum((a.amount for a in pay.allocations), Decimal(0))
    key = "OverpaymentID" if pay.kind == "overpayment" else "PrepaymentID"
    status = "VOIDED" if pay.deleted else "PAID" if remaining <= 0 else "AUTHORISED"
    return {
        key: pay.id,
        "ID": pay.id,
        "Type": f"RECEIVE-{pay.kind.upper()}",
        "Reference": pay.reference or "",
        "RemainingCredit": num(remaining),
        "Allocations": allocations(pay.id, pay.allocations, invoices, customers),
        "Payments": [],
        "HasAttachments": False,
        "Contact": contact_ref(cust),
        "DateString": iso_day(pay.date),
        "Date": ms_day(pay.date),
        "Status": status,
        "LineAmountTypes": "NoTax",
        "LineItems": [],
        "SubTotal": num(pay.amount),
        "TotalTax": 0.0,
        "Total": num(pay.amount),
        "UpdatedDateUTC": ms(pay.updated),
        "CurrencyCode": pay.currency,
        "CurrencyRate": num(pay.currency_rate),
    }


def credit_note(
    note: GenCreditNote, cust: GenCustomer, invoices: dict[str, GenInvoice], customers: dict[str, GenCustomer]
) -> dict[str, Any]:
    """A CreditNote (ACCRECCREDIT) with Allocations and RemainingCredit."""
    applied = sum((a.amount for a in note.allocations), Decimal(0))
    remaining = note.total - applied if note.status == "authorised" else Decimal(0)
    status = CREDIT_STATUS[note.status]
    if status == "AUTHORISED" and remaining <= 0:
        status = "PAID"
    line = note.lines[0] if note.lines else None
    return {
        "CreditNoteID": note.id,
        "CreditNoteNumber": note.number,
        "ID": note.id,
        "Payments": [],
        "CurrencyRate": num(note.currency_rate),
        "Type": "ACCRECCREDIT",
        "Reference": "",
        "RemainingCredit": num(remaining),
        "AppliedAmount": num(applied),
        "Allocations": allocations(note.id, note.allocations, invoices, customers),
        "HasAttachments": False,
        "Contact": contact_ref(cust),
        "DateString": iso_day(note.date),
        "Date": ms_day(note.date),
        "Status": status,
        "LineAmountTypes": "Exclusive",
        "LineItems": line_items(note.lines, "OUTPUT2"),
        "SubTotal": num(line.quantity * line.unit_amount) if line else 0.0,
        "TotalTax": num(line.tax_amount) if line else 0.0,
        "Total": num(note.total),
        "UpdatedDateUTC": ms(note.updated),
        "CurrencyCode": note.currency,
        "SentToContact": False,
    }
