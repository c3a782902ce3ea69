"""Accounts-receivable aging in base currency, per tenant and per customer, as of any date.

An invoice with money outstanding as of the date falls in a bucket by its days past due (the date minus its
due date, or its issue date when it has none): `current` (not yet due), then one bucket per bound
(default 1-30, 31-60, 61-90) and the last beyond the largest bound (90+).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from connector.reconcile.fx import Rates
from connector.reconcile.ledger import AllocationLedger
from connector.reconcile.snapshot import Snapshot, without_gc

DEFAULT_BOUNDS: tuple[int, ...] = (30, 60, 90)


class BoundsError(ValueError):
    """Aging bucket bounds that are not increasing positive day counts."""


def check_bounds(bounds: Sequence[int]) -> tuple[int, ...]:
    """`bounds` as a tuple if they are increasing positive integers, else BoundsError."""
    ok = bool(bounds) and all(isinstance(b, int) and b > 0 for b in bounds)
    if not ok or any(a >= b for a, b in itertools.pairwise(bounds)):
        raise BoundsError(f"aging bounds must be increasing positive day counts, got {list(bounds)}")
    return tuple(bounds)


def labels(bounds: Sequence[int]) -> tuple[str, ...]:
    """Bucket names: ("current", "1-30", "31-60", "61-90", "90+") for the default bounds."""
    names, low = ["current"], 1
    for b in bounds:
        names.append(f"{low}-{b}")
        low = b + 1
    names.append(f"{bounds[-1]}+")
    return tuple(names)


def bucket(days_past_due: int, bounds: Sequence[int]) -> int:
    """Index of the bucket for an invoice `days_past_due` days past due."""
    if days_past_due <= 0:
        return 0
    for n, b in enumerate(bounds):
        if days_past_due <= b:
            return n + 1
    return len(bounds) + 1


@dataclass(frozen=True, slots=True)
class AgingRow:
    """One customer's (or, with customer_id None, the tenant's) buckets in base currency."""

    customer_id: str | None
    name: str
    buckets: tuple[Decimal, ...]

    @property
    def total(self) -> Decimal:
        return sum(self.buckets, Decimal(0))


@dataclass(frozen=True)
class Aging:
    as_of: date
    currency: str
    labels: tuple[str, ...]
    rows: tuple[AgingRow, ...]  # by customer name, then id
    total: AgingRow


@without_gc
def aging(
    snapshot: Snapshot, ledger: AllocationLedger, rates: Rates, as_of: date,
    bounds: Sequence[int] = DEFAULT_BOUNDS,
) -> Aging:  # fmt: skip
    """The aging report of `ledger` (built as of `as_of`). Amounts without a known rate are left out."""
    bounds = check_bounds(bounds)
    width = len(bounds) + 2
    per_customer: dict[str, list[Decimal]] = {}
    for state in ledger.open():
        inv = state.invoice
        amount = rates.to_base(state.outstanding, inv.currency, inv.currency_rate)
        if amount is None:
            continue
        row = per_customer.setdefault(inv.customer_id, [Decimal(0)] * width)
        row[bucket(state.days_past_due(as_of), bounds)] += amount
    rows = sorted(
        (AgingRow(cid, snapshot.customer_name(cid), tuple(b)) for cid, b in per_customer.items()),
        key=lambda r: (r.name, r.customer_id or ""),
    )
    total = tuple(sum((r.buckets[n] for r in rows), Decimal(0)) for n in range(width))
    return Aging(as_of, rates.base, labels(bounds), tuple(rows), AgingRow(None, "total", total))
