"""The ledger-neutral records a generated firm is made of, and helpers both sandboxes use to derive figures.

Each sandbox renders these in its own API's shape; "paid", amounts due and remaining credit follow from the
allocations (`invoice_allocations`, `remaining_credit`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Literal

Behaviour = Literal["early", "on_time", "late", "chronic", "never"]
InvoiceStatus = Literal["draft", "submitted", "authorised", "voided", "deleted"]
CreditStatus = Literal["draft", "authorised", "voided", "deleted"]
PaymentKindName = Literal["payment", "overpayment", "prepayment"]
PlantKind = Literal[
    "amount_due_mismatch", "allocation_to_void", "unapplied_with_open_invoices", "paid_without_payment",
    "currency_mismatch", "negative_outstanding",
]  # fmt: skip
PLANT_KINDS: tuple[PlantKind, ...] = (
    "amount_due_mismatch", "allocation_to_void", "unapplied_with_open_invoices", "paid_without_payment",
    "currency_mismatch", "negative_outstanding",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class GenPhone:
    """A customer's phone number in parts, as ledgers keep it: "44", "20", "7946 0123" (no trunk 0)."""

    country: str
    area: str
    number: str
    mobile: bool = False

    @property
    def dialable(self) -> str:
        """The number as one dials it from abroad: "+44 20 7946 0123"."""
        return f"+{self.country} {self.area} {self.number}"


@dataclass(frozen=True, slots=True, kw_only=True)
class GenCustomer:
    """A customer (Xero contact, QBO customer). Keyword-only: fields with defaults sit among the others."""

    id: str
    name: str
    email: str | None
    currency: str
    behaviour: Behaviour
    segment: str
    archived: bool = False
    merged_into: str | None = None
    created: datetime
    updated: datetime
    phone: GenPhone | None = None


@dataclass(frozen=True, slots=True)
class GenLine:
    """One invoice or credit-note line; `tax_amount` is the line's VAT."""

    description: str
    quantity: Decimal
    unit_amount: Decimal
    tax_amount: Decimal


@dataclass(frozen=True, slots=True)
class GenAllocation:
    """Part of a payment or credit applied to an invoice, in the invoice's currency."""

    invoice_id: str
    amount: Decimal
    date: date


@dataclass(frozen=True, slots=True, kw_only=True)
class GenInvoice:
    """A sales invoice (or, with kind "bill", a supplier bill ccm must ignore)."""

    id: str
    number: str
    customer_id: str
    issue_date: date
    due_date: date
    currency: str
    currency_rate: Decimal
    lines: tuple[GenLine, ...]
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    status: InvoiceStatus
    kind: Literal["sales", "bill"] = "sales"
    amount_due_override: Decimal | None = None
    reference: str | None = None
    created: datetime
    updated: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class GenPayment:
    """Money received: a plain payment (one allocation) or an over/prepayment (0..n allocations)."""

    id: str
    customer_id: str
    date: date
    currency: str
    currency_rate: Decimal
    amount: Decimal
    kind: PaymentKindName
    allocations: tuple[GenAllocation, ...]
    deleted: bool = False
    reference: str | None = None
    created: datetime
    updated: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class GenCreditNote:
    """A credit note; its allocations reduce invoices' amounts due."""

    id: str
    number: str
    customer_id: str
    date: date
    currency: str
    currency_rate: Decimal
    lines: tuple[GenLine, ...]
    total: Decimal
    status: CreditStatus
    allocations: tuple[GenAllocation, ...]
    created: datetime
    updated: datetime


@dataclass(frozen=True, slots=True)
class Plant:
    """A deliberate inconsistency, so reconciliation has something real to find."""

    kind: PlantKind
    record_ids: tuple[str, ...]
    note: str


CaseKind = Literal[
    "early_payer_allocated_late", "paid_without_allocation", "paid_in_other_currency",
    "inactive_with_open_invoice", "in_credit",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Case:
    """A named situation a firm carries on purpose (adapters/sandbox/cases.py): a customer and its records."""

    kind: CaseKind
    customer_id: str
    customer_name: str
    record_ids: tuple[str, ...]  # invoices and payments, as the generator names them
    note: str


@dataclass(frozen=True, slots=True)
class FirmSize:
    """How many customers, invoices and payments a firm has."""

    customers: int
    invoices: int
    payments: int


SIZES: dict[str, FirmSize] = {
    "demo": FirmSize(50, 400, 320),
    "small": FirmSize(500, 5_000, 4_000),
    "large": FirmSize(10_000, 100_000, 100_000),
}


@dataclass(frozen=True)
class Firm:
    """A generated firm: its records in the ledger-neutral shape, and the plants hidden among them."""

    name: str
    base_currency: str
    country: str
    timezone: str
    today: date
    customers: tuple[GenCustomer, ...]
    invoices: tuple[GenInvoice, ...]
    payments: tuple[GenPayment, ...]
    credit_notes: tuple[GenCreditNote, ...]
    plants: tuple[Plant, ...]
    cases: tuple[Case, ...] = ()  # named cases (`generate(..., cases=True)`)

    def case(self, kind: CaseKind) -> Case:
        """The firm's case of `kind` (KeyError when it was generated without cases)."""
        for found in self.cases:
            if found.kind == kind:
                return found
        raise KeyError(f"firm {self.name!r} has no case {kind!r}: generate it with cases=True")


def invoice_allocations(firm: Firm) -> dict[str, list[tuple[str, GenAllocation]]]:
    """Per invoice id, the live allocations made to it: (source kind, allocation).

    Source kind is "payment", "overpayment", "prepayment" or "credit_note". Deleted payments and credit notes
    that are not authorised allocate nothing.
    """
    out: dict[str, list[tuple[str, GenAllocation]]] = defaultdict(list)
    for pay in firm.payments:
        if not pay.deleted:
            for alloc in pay.allocations:
                out[alloc.invoice_id].append((pay.kind, alloc))
    for note in firm.credit_notes:
        if note.status == "authorised":
            for alloc in note.allocations:
                out[alloc.invoice_id].append(("credit_note", alloc))
    return out


def remaining_credit(total: Decimal, allocations: Iterable[GenAllocation]) -> Decimal:
    """What is left of a credit note or over/prepayment after its allocations."""
    return (total - sum((a.amount for a in allocations), Decimal(0))).quantize(Decimal("0.01"))
