"""Credit limit suggestions (`ccm limits suggest`): each with the figures behind it, in base currency.

For active customers only (archived, deleted and merged ones get none):
- raise: an A or B payer whose limit is below 80 % of the most they had open at once in the past year: to
  125 % of that peak, rounded up to a figure a person would set;
- idle credit line: an A or B payer whose limit is 4 times that peak or more, with 1,000 or more of it never
  used: listed with the unused part, suggested at 125 % of the peak;
- lower (or set, when they have none): a D or E payer's limit above what they have shown they repay, which
  is a quarter of the money received from them in the past year (at most their peak). Nothing received in a
  year: 0, no further credit until they pay. A D or E payer's limit is never raised.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_CEILING, Decimal

from connector.model import CustomerStatus, Money, PaymentStatus
from connector.reconcile import Basis, Snapshot
from connector.reconcile.behaviour import money_settlement
from connector.reconcile.rating import DEFAULT_MODEL, RatingModel
from connector.words import locale as words

RAISE_BELOW = Decimal("0.8")  # a reliable payer's limit below 80 % of their peak: raise it...
RAISE_TO = Decimal("1.25")  # ...to 125 % of the peak
IDLE_TIMES = Decimal(4)  # a reliable payer's limit at least 4 times their peak is an idle credit line...
IDLE_MIN = Decimal(1000)  # ...when at least this much of it is unused
POOR_SLACK = Decimal("1.25")  # lower a poor payer's limit above 125 % of what they have shown they repay
_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class Suggestion:
    """A limit worth changing, and the figures behind it (base currency)."""

    customer_id: str
    name: str
    rating: str | None
    limit: Money | None
    suggested: Money
    reason: str
    kind: str = "raise"  # raise | idle | lower | set
    peak: Decimal = _ZERO  # most open at once in the past year
    received: Decimal = _ZERO  # money received in the past year
    last_paid: date | None = None  # the last payment's date, ever


@dataclass(frozen=True, slots=True)
class _Figures:
    rating: str | None
    limit: Money | None
    peak: Decimal
    received: Decimal
    last_paid: date | None
    owed: Decimal
    base: str

    def text(self) -> str:
        return (
            f"up to {_money(self.peak, self.base)} open at once in the past year, "
            f"{_money(self.owed, self.base)} "
            f"open now, {_money(self.received, self.base)} received in the past year"
        )


def _money(amount: Decimal, currency: str) -> str:
    return words.money(amount, currency)


def _nice(amount: Decimal) -> Decimal:
    """Round up to a figure a person would set: the next 500 (100 under 1,000)."""
    step = Decimal(100) if amount < 1000 else Decimal(500)
    return (amount / step).to_integral_value(rounding=ROUND_CEILING) * step


def _year_before(today: date) -> date:
    return date(today.year - 1, today.month, min(today.day, 28))


def peak_exposure(basis: Basis) -> dict[str, Decimal]:
    """Per customer, the highest total of open invoices (base currency) on any day of the past year.

    An invoice stops counting the day the customer's money for it arrived (not the day it was allocated).
    """
    today, rates = basis.today, basis.rates
    since = _year_before(today)
    paid_dates = {p.id: p.date for p in basis.snapshot.payments}
    events: dict[str, list[tuple[date, Decimal]]] = {}
    for state in basis.ledger.invoices.values():
        inv = state.invoice
        total = rates.to_base(inv.total.amount, inv.currency, inv.currency_rate) or _ZERO
        money_on = money_settlement(state, paid_dates)[0] if state.paid_on is not None else None
        end = money_on or state.paid_on or today
        if end < since:
            continue
        start = max(inv.issue_date, since)
        events.setdefault(inv.customer_id, []).extend([(start, total), (max(end, start), -total)])
    peaks: dict[str, Decimal] = {}
    for customer_id, changes in events.items():
        level = peak = _ZERO
        for _, change in sorted(changes, key=lambda e: (e[0], e[1] < 0)):
            level += change
            peak = max(peak, level)
        peaks[customer_id] = peak
    return peaks


def receipts(basis: Basis) -> tuple[dict[str, Decimal], dict[str, date]]:
    """Per customer: money received in the past year (base currency), and the date of the last payment."""
    since, today, rates = _year_before(basis.today), basis.today, basis.rates
    received: dict[str, Decimal] = {}
    last: dict[str, date] = {}
    for p in basis.snapshot.payments:
        if p.status is not PaymentStatus.LIVE or p.customer_id is None or p.date > today:
            continue
        if p.date > last.get(p.customer_id, date.min):
            last[p.customer_id] = p.date
        if p.date > since:
            value = rates.to_base(p.amount.amount, p.amount.currency, p.currency_rate) or _ZERO
            received[p.customer_id] = received.get(p.customer_id, _ZERO) + value
    return received, last


def _reliable(f: _Figures) -> tuple[str, Decimal, str] | None:
    current = f.limit.amount if f.limit and f.limit.currency == f.base else None
    if f.peak > 0 and (current is None or current < f.peak * RAISE_BELOW):
        now = f"the limit {f.limit}" if f.limit else "no limit"
        below = f"{now} is below {RAISE_BELOW * 100:.0f}% of that peak"
        why = f"rating {f.rating}, pays reliably: {f.text()}; {below}"
        return "raise", _nice(f.peak * RAISE_TO), why
    if current is not None and current >= IDLE_TIMES * f.peak and current - f.peak >= IDLE_MIN:
        unused = _money(current - f.peak, f.base)
        why = (
            f"idle credit line: rating {f.rating}, {f.text()}; {unused} of the {f.limit} limit was never used"
        )
        return "idle", _nice(f.peak * RAISE_TO), why
    return None


def _poor(f: _Figures) -> tuple[str, Decimal, str] | None:
    quarter = f.received / 4
    target = _ZERO if f.received <= 0 else _nice(min(f.peak, quarter) if f.peak > 0 else quarter)
    if f.received <= 0:
        since = f"last payment {f.last_paid}" if f.last_paid else "never paid"
        shown = f"nothing received in the past year ({since}): no further credit until they pay"
    else:
        shown = f"a quarter of a year's receipts is {_money(quarter, f.base)}"
    if f.limit is None:
        return "set", target, f"rating {f.rating}, no limit set: {f.text()}; {shown}"
    current = f.limit.amount if f.limit.currency == f.base else None
    if current is not None and (current > target * POOR_SLACK or (target == 0 and current > 0)):
        why = (
            f"rating {f.rating}: the limit {f.limit} is far above what they have shown they repay: {f.text()}"
        )
        return "lower", target, f"{why}; {shown}"
    return None


def suggest(
    snapshot: Snapshot, today: date, limit_of: Mapping[str, Money], rating: RatingModel = DEFAULT_MODEL
) -> list[Suggestion]:
    """Limit suggestions for the tenant's active customers (see the module docstring for the rules)."""
    basis = Basis.of(snapshot, today, rating)
    peaks = peak_exposure(basis)
    received, last_paid = receipts(basis)
    base = snapshot.tenant.base_currency
    found = []
    for customer in sorted(snapshot.customers, key=lambda c: c.id):
        if customer.status is not CustomerStatus.ACTIVE or customer.merged_into is not None:
            continue
        cid = customer.id
        behaviour = basis.behaviours.get(cid)
        position = basis.positions.get(cid)
        f = _Figures(
            behaviour.rating if behaviour else None, limit_of.get(cid), peaks.get(cid, _ZERO),
            received.get(cid, _ZERO), last_paid.get(cid), position.base.open if position else _ZERO, base,
        )  # fmt: skip
        if f.rating in ("A", "B"):
            change = _reliable(f)
        elif f.rating in ("D", "E"):
            change = _poor(f)
        else:
            change = None
        if change is not None:
            kind, target, why = change
            found.append(Suggestion(cid, customer.name, f.rating, f.limit, Money(target, base), why, kind,
                                    f.peak, f.received, f.last_paid))  # fmt: skip
    return found
