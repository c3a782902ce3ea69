"""The figures of a firm's reports page, computed from its stored records by reconciliation's own functions.

Guarantees: every figure is one `ccm aging` / `ccm forecast` would print for the same records and date:
aging is `reconcile.aging`, DSO is `metrics.dso` (count-back) and CEI is `metrics.cei` at each of the last
12 month-ends (CEI over that calendar month), the forecast is `reconcile.forecast` as of today. "Collected
against forecast" compares, for each of the last 13 weeks, the forecast made 13 weeks ago (the same function,
as of then) with the money payments applied to invoices in that week. Amounts are in the firm's base
currency, exact `Decimal`s; the page rounds them for reading. `figures` computes them once per firm, date
and records (connector/web/snapshots.py), shared by every request and warmed after the firm's night.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from connector.model import SourceKind, Tenant
from connector.reconcile import Aging, AgingRow, Forecast, Snapshot, aging, allocate, behaviours, forecast
from connector.reconcile.forecast import WEEKS
from connector.reconcile.fx import Rates
from connector.reconcile.ledger import AllocationLedger, live_allocations
from connector.reconcile.metrics import credit_sales, dso, receivables
from connector.reconcile.snapshot import without_gc
from connector.store import Store
from connector.web import snapshots
from connector.web.snapshots import Key

MONTHS = 12
TOP = 10  # customers drawn in the aging chart; the CSV has them all
_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Month:
    """One month-end: DSO at it, and CEI over the calendar month it ends (None: nothing was collectable)."""

    start: date
    end: date
    dso: Decimal
    cei: Decimal | None

    @property
    def label(self) -> str:
        return f"{self.end:%b %Y}"


@dataclass(frozen=True, slots=True)
class Collected:
    """One past week: what the forecast made `Reports.hindcast_from` expected in it, and what came in."""

    start: date
    end: date
    low: Decimal
    expected: Decimal
    high: Decimal
    collected: Decimal


@dataclass(frozen=True)
class Reports:
    as_of: date
    currency: str
    aging: Aging
    months: tuple[Month, ...]  # oldest first, the last is the latest complete month's end
    forecast: Forecast
    hindcast_from: date
    collected: tuple[Collected, ...]  # oldest first

    def top(self, count: int = TOP) -> tuple[tuple[AgingRow, ...], AgingRow | None]:
        """The `count` customers owing most (ties by name), and the rest summed (None when no rest)."""
        ranked = sorted(self.aging.rows, key=lambda r: (-r.total, r.name, r.customer_id or ""))
        shown, rest = ranked[:count], ranked[count:]
        if not rest:
            return tuple(shown), None
        width = len(self.aging.labels)
        summed = tuple(sum((r.buckets[n] for r in rest), _ZERO) for n in range(width))
        return tuple(shown), AgingRow(None, f"{len(rest):,} other customers", summed)


def figures(store: Store, tenant: Tenant, as_of: date) -> tuple[Key, Reports]:
    """The firm's figures as of `as_of`, computed again only when its records or `as_of` change; and the key
    they were computed at (what a page drawn from them may be kept under)."""
    kept = snapshots.of(store)
    records, snapshot = kept.snapshot(tenant)
    key = (records, as_of)
    return key, kept.once(tenant.id, "reports", key, lambda: compute(snapshot, as_of))


def month_ends(as_of: date, count: int = MONTHS) -> list[tuple[date, date]]:
    """(first day, last day) of the `count` complete calendar months before `as_of`'s month, oldest first.

    When `as_of` is itself a month's last day, that month counts as complete.
    """
    first = as_of.replace(day=1)
    last = as_of if (as_of + timedelta(days=1)).day == 1 else first - timedelta(days=1)
    found = []
    for _ in range(count):
        start = last.replace(day=1)
        found.append((start, last))
        last = start - timedelta(days=1)
    return found[::-1]


def collected_per_week(snapshot: Snapshot, rates: Rates, first: date, weeks: int) -> list[Decimal]:
    """Money payments applied to invoices in each of `weeks` weeks from `first`, in base currency."""
    rate_of = {p.id: p.currency_rate for p in snapshot.payments}
    last = first + timedelta(days=7 * weeks - 1)
    totals = [_ZERO] * weeks
    for a in live_allocations(snapshot, last):
        if a.source_kind is not SourceKind.PAYMENT or a.date < first:
            continue
        totals[(a.date - first).days // 7] += (
            rates.to_base(a.amount, a.currency, rate_of.get(a.source_id)) or _ZERO
        )
    return totals


@without_gc
def compute(snapshot: Snapshot, as_of: date) -> Reports:
    """Every figure of the reports page for `snapshot` as of `as_of` (see the module docstring)."""
    rates = Rates.from_snapshot(snapshot)
    ledger = allocate(snapshot, as_of)
    report = aging(snapshot, ledger, rates, as_of)
    ahead = forecast(ledger, rates, behaviours(snapshot, ledger, rates, as_of), as_of)
    months = []
    periods = month_ends(as_of)
    before = allocate(snapshot, periods[0][0] - timedelta(days=1))
    for start, end in periods:
        at_end = ledger if end == as_of else allocate(snapshot, end)
        index = _cei(snapshot, rates, start, end, before, at_end)
        months.append(Month(start, end, dso(snapshot, rates, end, at_end), index))
        before = at_end
    since = as_of - timedelta(days=7 * WEEKS)
    then = allocate(snapshot, since)
    past = forecast(then, rates, behaviours(snapshot, then, rates, since), since)
    came = collected_per_week(snapshot, rates, since, WEEKS)
    collected = tuple(
        Collected(w.start, w.end, w.low, w.expected, w.high, came[n]) for n, w in enumerate(past.weeks)
    )
    return Reports(as_of, rates.base, report, tuple(months), ahead, since, collected)


def _cei(
    snapshot: Snapshot,
    rates: Rates,
    start: date,
    end: date,
    before: AllocationLedger,
    at_end: AllocationLedger,
) -> Decimal | None:
    """`metrics.cei` for [start, end], from the ledgers as of the day before `start` and as of `end` (each
    month's end ledger is the next month's start: built once, not twice)."""
    begin = receivables(before, rates)
    sales = credit_sales(snapshot, rates, start, end)
    ending = receivables(at_end, rates)
    collectable = begin + sales - receivables(at_end, rates, not_due_at=end)
    if collectable <= 0:
        return None
    return ((begin + sales - ending) / collectable * 100).quantize(Decimal("0.1"))
