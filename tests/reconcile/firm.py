"""A small firm's books, written the way a bookkeeper would describe them."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from connector.model import (
    Allocation,
    CreditNote,
    Customer,
    Invoice,
    Money,
    Payment,
    PaymentKind,
    PaymentStatus,
    SourceKind,
    Status,
    Tenant,
)
from connector.reconcile import Snapshot

FIRM = Tenant("firm", "Small Firm Ltd", "scripted", base_currency="GBP")
ANN = Customer("C1", "Ann's Café")
BOB = Customer("C2", "Bob's Bikes")
CHEN = Customer("C3", "Chen Trading", currency="USD")


def d(text: str) -> date:
    return date.fromisoformat(text)


def gbp(amount: str, currency: str = "GBP") -> Money:
    return Money(Decimal(amount), currency)


def invoice(
    iid: str,
    customer: Customer,
    total: str,
    issued: str,
    due: str | None = None,
    *,
    due_amount: str | None = None,
    status: Status = Status.OPEN,
    currency: str = "GBP",
    rate: str | None = None,
) -> Invoice:
    return Invoice(
        iid,
        customer.id,
        gbp(total, currency),
        gbp(total if due_amount is None else due_amount, currency),
        status,
        d(issued),
        d(due) if due else None,
        number=f"INV-{iid}",
        currency_rate=Decimal(rate) if rate else None,
    )


def payment(
    pid: str,
    customer: Customer,
    paid: str,
    *allocs: tuple[str, str] | tuple[str, str, str],
    amount: str | None = None,
    unapplied: str = "0",
    status: PaymentStatus = PaymentStatus.LIVE,
    kind: PaymentKind = PaymentKind.PAYMENT,
    currency: str = "GBP",
    rate: str | None = None,
) -> Payment:
    """`allocs` are (invoice id, amount) or (invoice id, amount, allocation date)."""
    allocations = tuple(
        Allocation(SourceKind.PAYMENT, pid, a[0], gbp(a[1], currency), d(a[2]) if len(a) > 2 else None)
        for a in allocs
    )
    total = amount or str(sum((Decimal(a[1]) for a in allocs), Decimal(unapplied)))
    return Payment(
        pid,
        customer.id,
        gbp(total, currency),
        gbp(unapplied, currency),
        d(paid),
        kind=kind,
        status=status,
        currency_rate=Decimal(rate) if rate else None,
        allocations=allocations,
    )


def credit(
    cid: str,
    customer: Customer,
    total: str,
    issued: str,
    *allocs: tuple[str, str],
    remaining: str = "0",
    status: Status = Status.PAID,
    currency: str = "GBP",
) -> CreditNote:
    allocations = tuple(Allocation(SourceKind.CREDIT_NOTE, cid, i, gbp(a, currency)) for i, a in allocs)
    return CreditNote(
        cid,
        customer.id,
        gbp(total, currency),
        gbp(remaining, currency),
        status,
        d(issued),
        number=f"CN-{cid}",
        allocations=allocations,
    )


def amounts(*values: int | str) -> tuple[Decimal, ...]:
    """Exact amounts from ints and strings: amounts(0, "20.00")."""
    return tuple(Decimal(v) for v in values)


def books(*records: object, customers: tuple[Customer, ...] = (ANN, BOB, CHEN)) -> Snapshot:
    return Snapshot(
        FIRM,
        customers,
        tuple(r for r in records if isinstance(r, Invoice)),
        tuple(r for r in records if isinstance(r, CreditNote)),
        tuple(r for r in records if isinstance(r, Payment)),
    )
