"""The canonical fields a mapping may fill, per record type, with their kinds."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from connector.model import CustomerStatus, PaymentKind, PaymentStatus, Status


class Kind(StrEnum):
    TEXT = "text"
    DATE = "date"
    INSTANT = "instant"
    MONEY = "money"  # an amount in the record's `currency`
    DECIMAL = "decimal"
    ENUM = "enum"
    TEXTLIST = "textlist"
    PHONE = "phone"  # a number to call: text, or picked from typed parts (connector/mapping/phones.py)


@dataclass(frozen=True, slots=True)
class FieldDef:
    kind: Kind
    required: bool = False
    enum: type[StrEnum] | None = None
    default: Any = None


_TEXT = FieldDef(Kind.TEXT)
_UPDATED = FieldDef(Kind.INSTANT)

CATALOGUE: dict[str, dict[str, FieldDef]] = {
    "customer": {
        "name": FieldDef(Kind.TEXT, required=True),
        "status": FieldDef(Kind.ENUM, enum=CustomerStatus, default=CustomerStatus.ACTIVE),
        "email": _TEXT,
        "currency": _TEXT,
        "segments": FieldDef(Kind.TEXTLIST, default=()),
        "merged_into": _TEXT,
        "updated_at": _UPDATED,
        "ledger_balance": FieldDef(Kind.DECIMAL),  # the ledger's own balance of the customer
        "phone": FieldDef(Kind.PHONE),
    },
    "invoice": {
        "customer_id": FieldDef(Kind.TEXT, required=True),
        "currency": FieldDef(Kind.TEXT, required=True),
        "total": FieldDef(Kind.MONEY, required=True),
        "amount_due": FieldDef(Kind.MONEY, required=True),
        "status": FieldDef(Kind.ENUM, required=True, enum=Status),
        "issue_date": FieldDef(Kind.DATE, required=True),
        "due_date": FieldDef(Kind.DATE),
        "number": _TEXT,
        "currency_rate": FieldDef(Kind.DECIMAL),
        "updated_at": _UPDATED,
    },
    "credit_note": {
        "customer_id": FieldDef(Kind.TEXT, required=True),
        "currency": FieldDef(Kind.TEXT, required=True),
        "total": FieldDef(Kind.MONEY, required=True),
        "remaining": FieldDef(Kind.MONEY, required=True),
        "status": FieldDef(Kind.ENUM, required=True, enum=Status),
        "issue_date": FieldDef(Kind.DATE, required=True),
        "number": _TEXT,
        "currency_rate": FieldDef(Kind.DECIMAL),
        "updated_at": _UPDATED,
    },
    "payment": {
        "customer_id": _TEXT,
        "currency": FieldDef(Kind.TEXT, required=True),
        "amount": FieldDef(Kind.MONEY, required=True),
        "unapplied": FieldDef(Kind.MONEY, default=0),
        "date": FieldDef(Kind.DATE, required=True),
        "kind": FieldDef(Kind.ENUM, enum=PaymentKind, default=PaymentKind.PAYMENT),
        "status": FieldDef(Kind.ENUM, enum=PaymentStatus, default=PaymentStatus.LIVE),
        "reference": _TEXT,
        "currency_rate": FieldDef(Kind.DECIMAL),
        "updated_at": _UPDATED,
    },
}

ALLOCATION_FIELDS: dict[str, FieldDef] = {
    "invoice_id": FieldDef(Kind.TEXT, required=True),
    "amount": FieldDef(Kind.MONEY, required=True),
    "date": FieldDef(Kind.DATE),
}

# Record types whose raw records may carry allocations to invoices, and what the allocation draws on.
ALLOCATING = {"payment": "payment", "credit_note": "credit_note"}

# A stream named like a canonical entity needs no `record:` key.
DEFAULT_RECORD = {
    "customers": "customer",
    "contacts": "customer",
    "invoices": "invoice",
    "credit_notes": "credit_note",
    "payments": "payment",
}
