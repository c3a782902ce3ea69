"""The allocation ledger: what each payment and credit note applied to each invoice, and what is left.

Computed outstanding of an invoice = its total - the allocations of LIVE sources (a payment whose status is
live, a credit note that is open or paid), in the invoice's currency. An allocation's date is its own, else
its source's (payment date, credit note issue date). As of a date, only invoices issued and allocations
dated on or before it count. An allocation in another currency than its invoice's counts at the rates the
ledger records: its source's own rate to the base currency, then the invoice's own rate (`crossed` keeps
them, with the amount applied). Allocations that cannot be applied (their invoice is a draft, voided,
deleted or unknown, or they are in another currency and a rate is missing) are kept aside as `stray`: the
discrepancies report both.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

from connector.model import Allocation, Invoice, Money, PaymentStatus, SourceKind, Status
from connector.reconcile.snapshot import Snapshot, builder, without_gc

_LIVE = frozenset({Status.OPEN, Status.PAID})
_ZERO = Decimal(0)
_CENT = Decimal("0.01")
_ONE = Decimal(1)


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
class Crossed:
    """An allocation in another currency than its invoice's, applied at the ledger's rates."""

    allocation: Applied  # as the ledger records it, in the source's currency
    applied: Decimal  # what it counts for, in the invoice's currency
    rate: Decimal  # the source's rate (units of its currency per unit of base currency; 1 for base)


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


_new_state = builder(InvoiceState, "invoice applied outstanding paid_on allocations")  # one per invoice


@dataclass(frozen=True)
class AllocationLedger:
    """Invoices that count in balances (open or paid, issued by `as_of`), by id, and the stray allocations."""

    as_of: date | None
    invoices: Mapping[str, InvoiceState]
    stray: tuple[Applied, ...]
    open_states: tuple[InvoiceState, ...]  # outstanding > 0, in invoice id order
    crossed: tuple[Crossed, ...] = ()

    def without(self, invoice_ids: Collection[str]) -> AllocationLedger:
        """This ledger less the given invoices (those ccm must leave alone), as if they were not there."""
        if not invoice_ids:
            return self
        ids = frozenset(invoice_ids)
        kept = dict(self.invoices)  # copied whole, then the few left out: the same order, far faster
        for k in ids:
            kept.pop(k, None)
        owed = tuple([s for s in self.open_states if s.invoice.id not in ids])
        return AllocationLedger(self.as_of, kept, self.stray, owed, self.crossed)

    def open(self) -> Iterator[InvoiceState]:
        """Invoices with money still owed, in id order."""
        return iter(self.open_states)


_Source = tuple[SourceKind, str, str | None, date, Sequence[Allocation], Decimal | None]


def _live_sources(snapshot: Snapshot) -> Iterator[_Source]:
    for p in snapshot.payments:
        if p.status is PaymentStatus.LIVE and p.allocations:
            yield SourceKind.PAYMENT, p.id, p.customer_id, p.date, p.allocations, p.currency_rate
    for c in snapshot.credit_notes:
        if c.status in _LIVE and c.allocations:
            yield SourceKind.CREDIT_NOTE, c.id, c.customer_id, c.issue_date, c.allocations, c.currency_rate


def live_allocations(snapshot: Snapshot, as_of: date | None = None) -> Iterator[Applied]:
    """Every allocation of a live payment or credit note, dated on or before `as_of` when given."""
    for kind, sid, customer, source_date, allocs, _ in _live_sources(snapshot):
        for a in allocs:
            when = a.date or source_date
            if as_of is None or when <= as_of:
                yield Applied(kind, sid, customer, a.invoice_id, a.amount.amount, a.amount.currency, when)


def latest_date(snapshot: Snapshot) -> date | None:
    """The latest date any invoice, payment, credit note or allocation carries (None when empty)."""
    dates = [i.issue_date for i in snapshot.invoices]
    for _, _, _, source_date, allocs, _ in _live_sources(snapshot):
        dates.extend(a.date or source_date for a in allocs)
    return max(dates, default=None)


def _applied_order(a: Applied) -> tuple[date, str, str, str, str, Decimal]:
    return (a.date, a.source_kind.value, a.source_id, a.invoice_id, a.currency, a.amount)


def _order(a: Allocation) -> tuple[date | None, str, str, Decimal]:
    return (a.date, a.source_kind.value, a.source_id, a.amount.amount)


def _state(inv: Invoice, allocs: list[Allocation] | None) -> InvoiceState:
    total = inv.total.amount
    if not allocs:
        return _new_state(inv, _ZERO, total, None, ())
    if len(allocs) > 1:
        allocs.sort(key=_order)
    running = _ZERO
    paid_on: date | None = None
    for a in allocs:
        running += a.amount.amount
        if paid_on is None and total > 0 and running >= total:
            paid_on = a.date
    return _new_state(inv, running, total - running, paid_on, tuple(allocs))


def _converted(
    amount: Decimal, currency: str, rate: Decimal | None, inv: Invoice, base: str
) -> Decimal | None:
    """`amount` in `currency` (the source's rate `rate`) in the invoice's currency, to the cent, through the
    base currency at the rates the ledger recorded (None when one of them is missing)."""
    if currency == base:
        in_base = amount
    elif rate is not None and rate > 0:
        in_base = amount / rate
    else:
        return None
    if inv.currency == base:
        return in_base.quantize(_CENT, ROUND_HALF_EVEN)
    if inv.currency_rate is None or inv.currency_rate <= 0:
        return None
    return (in_base * inv.currency_rate).quantize(_CENT, ROUND_HALF_EVEN)


@without_gc
def allocate(snapshot: Snapshot, as_of: date | None = None) -> AllocationLedger:
    """Apply every live allocation to its invoice; `as_of=None` means as the ledger stands now."""
    counted = {
        i.id: i for i in snapshot.invoices if i.status in _LIVE and (as_of is None or i.issue_date <= as_of)
    }
    base = snapshot.tenant.base_currency
    by_invoice: dict[str, list[Allocation]] = {}
    stray: list[Applied] = []
    crossed: list[Crossed] = []
    for kind, sid, customer, source_date, allocs, source_rate in _live_sources(snapshot):
        for a in allocs:
            when = a.date or source_date
            if as_of is not None and when > as_of:
                continue
            inv = counted.get(a.invoice_id)
            if inv is not None and inv.total.currency != a.amount.currency:
                value = _converted(a.amount.amount, a.amount.currency, source_rate, inv, base)
                if value is not None:
                    rate = _ONE if a.amount.currency == base else (source_rate or _ONE)
                    ledgered = Applied(
                        kind, sid, customer, a.invoice_id, a.amount.amount, a.amount.currency, when
                    )
                    crossed.append(Crossed(ledgered, value, rate))
                    a = Allocation(kind, sid, a.invoice_id, Money(value, inv.currency), when)  # noqa: PLW2901
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
    states: dict[str, InvoiceState] = {}
    applied_to = by_invoice.get
    for iid, inv in counted.items():  # most invoices have nothing applied: `_state`'s first case, inline
        found = applied_to(iid)
        states[iid] = _state(inv, found) if found else _new_state(inv, _ZERO, inv.total.amount, None, ())
    owed = tuple([states[k] for k in sorted([k for k, s in states.items() if s.outstanding > _ZERO])])
    crossed.sort(key=lambda c: _applied_order(c.allocation))
    return AllocationLedger(as_of, states, tuple(sorted(stray, key=_applied_order)), owed, tuple(crossed))
