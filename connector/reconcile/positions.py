"""Customer positions: open, overdue, unapplied credit and net exposure, per currency and in base currency.

As of a date: invoices and allocations as `ledger.allocate` counts them; unapplied credit is each live
payment's (dated on or before the date) and open or paid credit note's (issued on or before it) unapplied
part as the ledger reports it now, plus whatever it allocated after the date (still unapplied then).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from connector.model import PaymentStatus
from connector.reconcile.fx import Rates
from connector.reconcile.ledger import AllocationLedger
from connector.reconcile.snapshot import Snapshot, builder, without_gc

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Balance:
    """Amounts in one currency."""

    open: Decimal = _ZERO
    overdue: Decimal = _ZERO
    unapplied: Decimal = _ZERO

    @property
    def net(self) -> Decimal:
        """Net exposure: what is owed less the customer's cash and credit not yet applied."""
        return self.open - self.unapplied

    def __add__(self, other: Balance) -> Balance:
        return Balance(self.open + other.open, self.overdue + other.overdue, self.unapplied + other.unapplied)


@dataclass(frozen=True, slots=True)
class Position:
    """One customer's position: per currency (sorted) and converted to the tenant's base currency."""

    customer_id: str
    name: str
    by_currency: tuple[tuple[str, Balance], ...]
    base: Balance


# by position: one of each per customer (and currency) each night
_balance = builder(Balance, "open overdue unapplied")
_position = builder(Position, "customer_id name by_currency base")


def _unapplied(snapshot: Snapshot, as_of: date) -> Iterator[tuple[str, str, Decimal | None, Decimal]]:
    """(customer, currency, rate, amount) of every source's credit unapplied as of `as_of`."""
    for p in snapshot.payments:
        if p.status is not PaymentStatus.LIVE or p.date > as_of or p.customer_id is None:
            continue
        later = sum((a.amount.amount for a in p.allocations if (a.date or p.date) > as_of), _ZERO)
        if p.unapplied.amount + later:
            yield p.customer_id, p.amount.currency, p.currency_rate, p.unapplied.amount + later
    for c in snapshot.credit_notes:
        if not c.status.live or c.issue_date > as_of:
            continue
        later = sum((a.amount.amount for a in c.allocations if (a.date or c.issue_date) > as_of), _ZERO)
        if c.remaining.amount + later:
            yield c.customer_id, c.total.currency, c.currency_rate, c.remaining.amount + later


@without_gc
def positions(snapshot: Snapshot, ledger: AllocationLedger, rates: Rates, as_of: date) -> dict[str, Position]:
    """Every customer with an open balance or unapplied credit as of `as_of`, by customer id.

    Amounts without a known rate stay in their currency's balance and are left out of the base one
    (`find_discrepancies` reports them).
    """
    # [open, overdue, unapplied] per (customer, currency) and per customer in base currency
    per: dict[tuple[str, str], list[Decimal]] = {}
    base: dict[str, list[Decimal]] = {}

    def add(
        customer: str, currency: str, rate: Decimal | None, amount: Decimal, slots: tuple[int, ...]
    ) -> None:
        row = per.get((customer, currency))
        if row is None:
            row = per[customer, currency] = [_ZERO, _ZERO, _ZERO]
        brow = base.get(customer)
        if brow is None:
            brow = base[customer] = [_ZERO, _ZERO, _ZERO]
        converted = rates.to_base(amount, currency, rate)
        for n in slots:
            row[n] += amount
            if converted is not None:
                brow[n] += converted

    to_base = rates.to_base
    for state in ledger.open():  # `add` written out: this runs for every open invoice, every night
        inv = state.invoice
        customer, currency, amount = inv.customer_id, inv.total.currency, state.outstanding
        row = per.get((customer, currency))
        if row is None:
            row = per[customer, currency] = [_ZERO, _ZERO, _ZERO]
        brow = base.get(customer)
        if brow is None:
            brow = base[customer] = [_ZERO, _ZERO, _ZERO]
        converted = to_base(amount, currency, inv.currency_rate)
        overdue = (inv.due_date or inv.issue_date) < as_of  # state.due, without the call
        row[0] += amount
        if overdue:
            row[1] += amount
        if converted is not None:
            brow[0] += converted
            if overdue:
                brow[1] += converted
    for customer, currency, rate, amount in _unapplied(snapshot, as_of):
        add(customer, currency, rate, amount, (2,))
    currencies: dict[str, list[tuple[str, Balance]]] = {}
    for (customer, currency), row in sorted(per.items()):
        currencies.setdefault(customer, []).append((currency, _balance(*row)))
    names = snapshot.customer_names
    return {
        cid: _position(cid, names.get(cid, cid), tuple(currencies[cid]), _balance(*base[cid]))
        for cid in sorted(base)
    }
