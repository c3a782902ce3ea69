"""Cash forecast: expected collections per week for the next 13 weeks, with a low/expected/high band.

Method. Each customer's days-to-pay distribution is the empirical list of how many days late (signed:
negative is early) their settled invoices were paid. A customer with fewer than `MIN_HISTORY` settled
invoices uses the tenant-wide list instead (the prior); a tenant with no history at all assumes payment on
the due date. For an open invoice due on day D, as of day T, the invoice is known to be unpaid until T, so
it is placed by the distribution CONDITIONED on paying no earlier than T: of the observed lateness values d
with D + d ≥ T, the share that lands D + d in week w is the probability P(w) that the invoice is collected
in week w (weeks run 7 days from T: week 1 is T..T+6). Mass beyond week 13 is "later". An invoice already
later than anything observed goes to "later" (it has outlived the history); one not yet due whose customer
always pays earlier than its remaining days is placed in its due date's week.

Expected collections in week w = Σ outstanding x P(w), in base currency. The band treats each invoice as
paid in week w or not, independently (a Bernoulli with probability P(w)): variance Σ outstanding² x P(w) x
(1 - P(w)), and low/high = expected ∓ 1.645 standard deviations (a 90 % normal band), low floored at 0.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

from connector.reconcile.behaviour import Behaviour
from connector.reconcile.fx import Rates
from connector.reconcile.ledger import AllocationLedger
from connector.reconcile.snapshot import without_gc

WEEKS = 13
MIN_HISTORY = 5
Z_90 = Decimal("1.645")
_ZERO = Decimal(0)
_CENT = Decimal("0.01")


@dataclass(frozen=True, slots=True)
class Week:
    start: date
    end: date
    low: Decimal
    expected: Decimal
    high: Decimal


@dataclass(frozen=True)
class Forecast:
    as_of: date
    currency: str
    weeks: tuple[Week, ...]
    later: Decimal  # expected beyond the horizon (or not at all)
    open_total: Decimal  # everything outstanding, in base currency
    on_prior: int  # open invoices placed by the tenant-wide prior


def _shares(samples: Sequence[int], offset: int) -> tuple[tuple[Decimal, ...], bool]:
    """P(week) for weeks 1..13 for an invoice `offset` days past due (negative: not yet due), and whether
    the conditional distribution was empty."""
    lo = bisect.bisect_left(samples, offset)
    n = len(samples) - lo
    if n == 0:
        return (), True
    size = Decimal(n)
    shares = []
    for w in range(WEEKS):
        first, last = offset + 7 * w, offset + 7 * w + 6
        count = bisect.bisect_right(samples, last) - bisect.bisect_left(samples, first)
        shares.append(Decimal(count) / size)
    return tuple(shares), False


@without_gc
def forecast(
    ledger: AllocationLedger, rates: Rates, behaviour: Mapping[str, Behaviour], as_of: date
) -> Forecast:
    """The 13-week forecast for `ledger`'s open invoices (see the module docstring for the method)."""
    prior = sorted(d for b in behaviour.values() for d in b.days_to_pay) or [0]
    expected = [_ZERO] * WEEKS
    variance = [_ZERO] * WEEKS
    later = open_total = _ZERO
    on_prior = 0
    cache: dict[tuple[str | None, int], tuple[tuple[Decimal, ...], bool]] = {}
    for state in ledger.open():
        inv = state.invoice
        amount = rates.to_base(state.outstanding, inv.currency, inv.currency_rate)
        if amount is None:
            continue
        open_total += amount
        own = behaviour.get(inv.customer_id)
        mine = own is not None and len(own.days_to_pay) >= MIN_HISTORY
        on_prior += not mine
        offset = (as_of - state.due).days
        key = (inv.customer_id if mine else None, offset)
        if key not in cache:
            cache[key] = _shares(own.days_to_pay if mine and own else prior, offset)
        shares, empty = cache[key]
        if empty:
            if offset < 0 and -offset < 7 * WEEKS:
                expected[-offset // 7] += amount  # not due yet: its due date's week
            else:
                later += amount
            continue
        placed = _ZERO
        for w, p in enumerate(shares):
            if p:
                expected[w] += amount * p
                variance[w] += amount * amount * p * (1 - p)
                placed += p
        later += amount * (1 - placed)
    weeks = []
    for w in range(WEEKS):
        spread = Z_90 * variance[w].sqrt()
        weeks.append(Week(
            as_of + timedelta(days=7 * w), as_of + timedelta(days=7 * w + 6),
            _cents(max(expected[w] - spread, _ZERO)), _cents(expected[w]), _cents(expected[w] + spread),
        ))  # fmt: skip
    return Forecast(as_of, rates.base, tuple(weeks), _cents(later), _cents(open_total), on_prior)


def _cents(value: Decimal) -> Decimal:
    return value.quantize(_CENT, rounding=ROUND_HALF_EVEN)
