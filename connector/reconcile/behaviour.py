"""Payment behaviour per customer, a payment rating A-E and a risk class.

Observations, as of a date: every open or paid invoice the customer cleared (its paid date is the date of
the allocation that brought its outstanding to zero) is late by paid date - due date (issue date when it has
no due date); every invoice still open and past due counts as late by the days so far, so a customer who
stops paying does not keep a good rating. Days late below zero (paid early) count as 0 in the averages.

- average days late: the mean over observations;
- weighted days late: the mean weighted by each invoice's base-currency total (open ones: outstanding);
- on-time share: observations with 0 days late / all observations;
- trend: mean days late of observations due in the last 180 days minus that of earlier ones:
  ≤ -5 improving, ≥ +5 worsening, else steady (unknown unless both sides have observations).

Rating rule, W = weighted days late, S = on-time share:
  A: W ≤ 3 and S ≥ 80 %;  B: W ≤ 10;  C: W ≤ 30;  D: W ≤ 60;  E: W > 60,
  and E whatever W when an invoice is open more than 90 days past due. No observations: unrated.
Risk class for the dunning and credit rules: A, B low; C medium; D, E high; unrated medium.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum

from connector.reconcile.fx import Rates
from connector.reconcile.ledger import AllocationLedger
from connector.reconcile.snapshot import Snapshot, without_gc

RECENT = timedelta(days=180)
TREND_DAYS = Decimal(5)
SEVERE_DAYS = 90
_ZERO = Decimal(0)
_TENTH = Decimal("0.1")


class Risk(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Trend(StrEnum):
    IMPROVING = "improving"
    STEADY = "steady"
    WORSENING = "worsening"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Observation:
    invoice_id: str
    due: date
    days_late: int  # signed: negative when paid early
    weight: Decimal  # base-currency amount
    settled: bool  # False for an invoice still open (days late so far)


@dataclass(frozen=True)
class Behaviour:
    customer_id: str
    name: str
    paid_count: int
    open_overdue_count: int
    average_days_late: Decimal
    weighted_days_late: Decimal
    on_time_share: Decimal  # 0..1
    trend: Trend
    rating: str | None
    risk: Risk
    days_to_pay: tuple[int, ...]  # signed days late of settled invoices, ascending (for the forecast)


def observations(ledger: AllocationLedger, rates: Rates, as_of: date) -> dict[str, list[Observation]]:
    """Observations per customer id, in invoice id order."""
    found: dict[str, list[Observation]] = {}
    for iid in sorted(ledger.invoices):
        state = ledger.invoices[iid]
        inv = state.invoice
        if inv.total.amount <= 0:
            continue
        if state.paid_on is not None:
            late, amount, settled = (state.paid_on - state.due).days, inv.total.amount, True
        elif state.outstanding > 0 and state.due < as_of:
            late, amount, settled = (as_of - state.due).days, state.outstanding, False
        else:
            continue
        weight = rates.to_base(amount, inv.currency, inv.currency_rate)
        found.setdefault(inv.customer_id, []).append(
            Observation(iid, state.due, late, amount if weight is None else weight, settled)
        )
    return found


def _mean(values: list[int]) -> Decimal:
    return (Decimal(sum(values)) / len(values)).quantize(_TENTH) if values else _ZERO


def _trend(obs: list[Observation], as_of: date) -> Trend:
    recent = [max(o.days_late, 0) for o in obs if o.due > as_of - RECENT]
    earlier = [max(o.days_late, 0) for o in obs if o.due <= as_of - RECENT]
    if not recent or not earlier:
        return Trend.UNKNOWN
    change = _mean(recent) - _mean(earlier)
    if change <= -TREND_DAYS:
        return Trend.IMPROVING
    return Trend.WORSENING if change >= TREND_DAYS else Trend.STEADY


def rate(weighted: Decimal, on_time: Decimal, severe: bool) -> str:
    """The rating letter for weighted days late, on-time share and whether a debt is over 90 days."""
    if severe or weighted > 60:
        return "E"
    if weighted <= 3 and on_time >= Decimal("0.8"):
        return "A"
    if weighted <= 10:
        return "B"
    return "C" if weighted <= 30 else "D"


RISK = {"A": Risk.LOW, "B": Risk.LOW, "C": Risk.MEDIUM, "D": Risk.HIGH, "E": Risk.HIGH, None: Risk.MEDIUM}


def describe(customer_id: str, name: str, obs: list[Observation], as_of: date) -> Behaviour:
    """One customer's behaviour from their observations."""
    late = [max(o.days_late, 0) for o in obs]
    total_weight = sum((o.weight for o in obs), _ZERO)
    weighted = (
        (sum((o.weight * max(o.days_late, 0) for o in obs), _ZERO) / total_weight).quantize(_TENTH)
        if total_weight > 0
        else _mean(late)
    )
    on_time = (
        (Decimal(sum(1 for d in late if d == 0)) / len(obs)).quantize(Decimal("0.001")) if obs else _ZERO
    )
    severe = any(not o.settled and o.days_late > SEVERE_DAYS for o in obs)
    rating = rate(weighted, on_time, severe) if obs else None
    return Behaviour(
        customer_id, name,
        paid_count=sum(1 for o in obs if o.settled),
        open_overdue_count=sum(1 for o in obs if not o.settled),
        average_days_late=_mean(late), weighted_days_late=weighted, on_time_share=on_time,
        trend=_trend(obs, as_of), rating=rating, risk=RISK[rating],
        days_to_pay=tuple(sorted(o.days_late for o in obs if o.settled)),
    )  # fmt: skip


@without_gc
def behaviours(
    snapshot: Snapshot, ledger: AllocationLedger, rates: Rates, as_of: date
) -> dict[str, Behaviour]:
    """Behaviour of every customer known to the snapshot or owning an invoice, by customer id."""
    obs = observations(ledger, rates, as_of)
    ids = sorted({c.id for c in snapshot.customers} | set(obs))
    return {cid: describe(cid, snapshot.customer_name(cid), obs.get(cid, []), as_of) for cid in ids}
