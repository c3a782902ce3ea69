"""Days sales outstanding (count-back) and the Collection Effectiveness Index, in base currency.

Credit sales of a period = the base-currency totals of open or paid invoices issued in it. Receivables at a
date = the computed outstanding of the invoices open at that date (see `ledger.allocate`).

DSO, count-back: start from the receivables at the date and walk back one calendar month at a time,
subtracting each month's credit sales; every month fully absorbed adds its days; the month that absorbs the
rest adds (rest / that month's sales) x its days. Receivables older than the history walked (24 months)
count the whole history.

CEI for a period [start, end] = (B + S - E) / (B + S - C) x 100, where B = receivables the day before
`start`, S = credit sales in the period, E = receivables at `end`, C = the part of E not yet due at `end`.
100 means everything collectable was collected.
"""

from __future__ import annotations

import bisect
import calendar
from datetime import date, timedelta
from decimal import Decimal

from connector.reconcile.fx import Rates
from connector.reconcile.ledger import AllocationLedger, allocate
from connector.reconcile.snapshot import Snapshot

DSO_MONTHS = 24
_ZERO = Decimal(0)


def months_before(day: date, months: int) -> date:
    """The same day `months` calendar months earlier (clamped to the month's last day)."""
    total = day.year * 12 + day.month - 1 - months
    year, month = divmod(total, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def receivables(ledger: AllocationLedger, rates: Rates, not_due_at: date | None = None) -> Decimal:
    """Base-currency outstanding of `ledger`'s open invoices (only those due on or after `not_due_at`)."""
    total = _ZERO
    for state in ledger.open():
        if not_due_at is not None and state.due < not_due_at:
            continue
        inv = state.invoice
        total += rates.to_base(state.outstanding, inv.currency, inv.currency_rate) or _ZERO
    return total


def credit_sales(snapshot: Snapshot, rates: Rates, first: date, last: date) -> Decimal:
    """Base-currency totals of live invoices issued from `first` to `last` inclusive."""
    return sum(
        (
            rates.to_base(i.total.amount, i.currency, i.currency_rate) or _ZERO
            for i in snapshot.invoices
            if i.status.live and first <= i.issue_date <= last
        ),
        _ZERO,
    )


def dso(snapshot: Snapshot, rates: Rates, as_of: date, ledger: AllocationLedger | None = None) -> Decimal:
    """Days sales outstanding at `as_of` by the count-back method, to one decimal place."""
    left = receivables(ledger or allocate(snapshot, as_of), rates)
    if left <= 0:
        return Decimal("0.0")
    edges = [months_before(as_of, k) for k in range(DSO_MONTHS, -1, -1)]  # ascending, ends with as_of
    sales = [_ZERO] * DSO_MONTHS
    for i in snapshot.invoices:
        if not i.status.live or not edges[0] < i.issue_date <= as_of:
            continue
        period = bisect.bisect_left(edges, i.issue_date) - 1  # month (edges[p], edges[p + 1]]
        sales[period] += rates.to_base(i.total.amount, i.currency, i.currency_rate) or _ZERO
    days = Decimal(0)
    for period in range(DSO_MONTHS - 1, -1, -1):
        length = Decimal((edges[period + 1] - edges[period]).days)
        month_sales = sales[period]
        if month_sales and left <= month_sales:
            return (days + left / month_sales * length).quantize(Decimal("0.1"))
        left -= month_sales
        days += length
    return days.quantize(Decimal("0.1"))


def cei(
    snapshot: Snapshot, rates: Rates, start: date, end: date, ledger: AllocationLedger | None = None
) -> Decimal | None:
    """Collection Effectiveness Index (percent, one decimal) for [start, end]; None when nothing was due.

    `ledger`, when given, is the allocation ledger as of `end` (saves building it again).
    """
    begin = receivables(allocate(snapshot, start - timedelta(days=1)), rates)
    sales = credit_sales(snapshot, rates, start, end)
    at_end = ledger if ledger is not None and ledger.as_of == end else allocate(snapshot, end)
    ending = receivables(at_end, rates)
    current = receivables(at_end, rates, not_due_at=end)
    collectable = begin + sales - current
    if collectable <= 0:
        return None
    return ((begin + sales - ending) / collectable * 100).quantize(Decimal("0.1"))
