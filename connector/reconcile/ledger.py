"""The allocation ledger: what each payment and credit note applied to each invoice, and what is left.

Computed outstanding of an invoice = its total - the allocations of LIVE sources (a payment whose status is
live, a credit note that is open or paid), in the invoice's currency. An allocation's date is its own, else
its source's (payment date, credit note issue date). As of a date, only invoices issued and allocations
dated on or before it count. Allocations that cannot be applied (their invoice is a draft, voided, deleted
or unknown, or they are in another currency) are kept aside as `stray`: the discrepancies report them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from connector.model import Allocation, Invoice, PaymentStatus, SourceKind, Status
from connector.reconcile.snapshot import Snapshot, without_gc

_LIVE = frozenset({Status.OPEN, Status.PAID})
_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Applied:
    """One allocation from a live source, with its effective date and its source's customer."""

    source_kind: SourceKind
    source_id: str
    customer_id: str | None
    invoice_id: str
    amount: Decimal
    currency: str
    date: date


@dataclass(frozen=True, slots=True)
class InvoiceState:
    """An invoice with what reconciliation computed for it."""

    invoice: Invoice
    applied: Decimal  # live allocations in the invoice's currency (as of the ledger's date)
    outstanding: Decimal  # total - applied; negative when over-allocated
    paid_on: date | None  # date of the allocation that brought outstanding to zero or below
    allocations: tuple[Allocation, ...]  # those applied, each with its effective date, in date order

    @property
    def due(self) -> date:
        """The due date, or the issue date when the invoice has none (due on receipt)."""
        return self.invoice.due_date or self.invoice.issue_date

    def days_past_due(self, as_of: date) -> int:
        return (as_of - self.due).days


@dataclass(frozen=True)
class AllocationLedger:
    """Invoices that count in balances (open or paid, issued by `as_of`), by id, and the stray allocations."""

    as_of: date | None
    invoices: Mapping[str, InvoiceState]
    stray: tuple[Applied, ...]
    open_states: tuple[InvoiceState, ...]  # outstanding > 0, in invoice id order

    def open(self) -> Iterator[InvoiceState]:
        """Invoices with money still owed, in id order."""
        return iter(self.open_states)


_Source = tuple[SourceKind, str, str | None, date, Sequence[Allocation]]


def _live_sources(snapshot: Snapshot) -> Iterator[_Source]:
    for p in snapshot.payments:
        if p.status is PaymentStatus.LIVE and p.allocations:
            yield SourceKind.PAYMENT, p.id, p.customer_id, p.date, p.allocations
    for c in snapshot.credit_notes:
        if c.status in _LIVE and c.allocations:
            yield SourceKind.CREDIT_NOTE, c.id, c.customer_id, c.issue_date, c.allocations


def live_allocations(snapshot: Snapshot, as_of: date | None = None) -> Iterator[Applied]:
    """Every allocation of a live payment or credit note, dated on or before `as_of` when given."""
    for kind, sid, customer, source_date, allocs in _live_sources(snapshot):
        for a in allocs:
            when = a.date or source_date
            if as_of is None or when <= as_of:
                yield Applied(kind, sid, customer, a.invoice_id, a.amount.amount, a.amount.currency, when)


def latest_date(snapshot: Snapshot) -> date | None:
    """The latest date any invoice, payment, credit note or allocation carries (None when empty)."""
    dates = [i.issue_date for i in snapshot.invoices]
    for _, _, _, source_date, allocs in _live_sources(snapshot):
        dates.extend(a.date or source_date for a in allocs)
    return max(dates, default=None)


def _applied_order(a: Applied) -> tuple[date, str, str, str, str, Decimal]:
    return (a.date, a.source_kind.value, a.source_id, a.invoice_id, a.currency, a.amount)


def _order(a: Allocation) -> tuple[date | None, str, str, Decimal]:
    return (a.date, a.source_kind.value, a.source_id, a.amount.amount)


def _state(inv: Invoice, allocs: list[Allocation] | None) -> InvoiceState:
    total = inv.total.amount
    if not allocs:
        return InvoiceState(inv, _ZERO, total, None, ())
    if len(allocs) > 1:
        allocs.sort(key=_order)
    running = _ZERO
    paid_on: date | None = None
    for a in allocs:
        running += a.amount.amount
        if paid_on is None and total > 0 and running >= total:
            paid_on = a.date
    return InvoiceState(inv, running, total - running, paid_on, tuple(allocs))


@without_gc
def allocate(snapshot: Snapshot, as_of: date | None = None) -> AllocationLedger:
    """Apply every live allocation to its invoice; `as_of=None` means as the ledger stands now."""
    counted = {
        i.id: i for i in snapshot.invoices if i.status in _LIVE and (as_of is None or i.issue_date <= as_of)
    }
    by_invoice: dict[str, list[Allocation]] = {}
    stray: list[Applied] = []
    for kind, sid, customer, source_date, allocs in _live_sources(snapshot):
        for a in allocs:
            when = a.date or source_date
            if as_of is not None and when > as_of:
                continue
            inv = counted.get(a.invoice_id)
            if inv is None or inv.total.currency != a.amount.currency:
                later = (
                    snapshot.invoices_by_id.get(a.invoice_id) if inv is None and as_of is not None else None
                )
                if later is None or later.status not in _LIVE:  # else: issued after `as_of`, not stray
                    stray.append(Applied(kind, sid, customer, a.invoice_id, a.amount.amount,
                                         a.amount.currency, when))  # fmt: skip
                continue
            if a.date is None:
                a = Allocation(a.source_kind, a.source_id, a.invoice_id, a.amount, when)  # noqa: PLW2901
            found = by_invoice.get(a.invoice_id)
            if found is None:
                by_invoice[a.invoice_id] = [a]
            else:
                found.append(a)
    states = {iid: _state(inv, by_invoice.get(iid)) for iid, inv in counted.items()}
    owed = tuple(states[k] for k in sorted(k for k, s in states.items() if s.outstanding > 0))
    return AllocationLedger(as_of, states, tuple(sorted(stray, key=_applied_order)), owed)
