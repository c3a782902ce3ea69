"""Payment behaviour per customer, a payment rating A-E (connector/reconcile/rating.py) and a risk class.

Lateness is measured from the money, not the paperwork. An invoice is paid when the customer's money
arrived: the date of the payment, overpayment or prepayment whose allocation cleared it, whenever the
bookkeeper entered that allocation (an overpayment received on 3 March and allocated on 10 February the
next year paid the invoice on 3 March). With several payments, the one that completed it counts. The part
of an invoice cleared by a credit note is not the customer's lateness at all: it is left out of every
lateness measure (and named in the explanation); an invoice cleared wholly by credit is no observation.

Observations, as of a date: every invoice cleared by then is late by paid date - due date (issue date
when it has no due date), weighted by the part paid with money; every invoice still open and past due
counts as late by the days so far, weighted by what is owed, so a customer who stops paying does not keep
a good rating. What is owed but covered by the customer's own unapplied money or credit (held by the
ledger, not yet allocated) is not counted as late either: oldest invoices are covered first, and the
bookkeeper is told to allocate it. Days late below zero (paid early) count as 0 in the averages.

- average days late: the mean over observations;
- weighted days late: the mean weighted by each observation's base-currency amount;
- on-time share: observations with 0 days late / all observations;
- trend: mean days late of observations due in the last `recent_days` minus that of earlier ones:
  <= -trend_days improving, >= +trend_days worsening, else steady. Unknown for a customer who has paid
  nothing, or when either side has no observation; never "improving" without a payment in the recent side.

Rating: see rating.py. No observations: unrated.
Risk class for the dunning and credit rules: A, B low; C medium; D, E high; unrated medium.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum

from connector.model import PaymentStatus, SourceKind
from connector.reconcile.fx import Rates
from connector.reconcile.ledger import AllocationLedger, InvoiceState
from connector.reconcile.rating import DEFAULT_MODEL, RatingModel, material, rate
from connector.reconcile.snapshot import Snapshot, builder, without_gc

_ZERO = Decimal(0)
_TENTH = Decimal("0.1")
_THOUSANDTH = Decimal("0.001")
_CREDIT = SourceKind.CREDIT_NOTE


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
    number: str = ""  # the invoice number (its id when it has none)
    amount: Decimal = _ZERO  # in the invoice's currency: paid with money, or still owed
    currency: str = ""
    paid_on: date | None = None  # when the money arrived (settled only)


# by position: one per invoice measured
_observation = builder(Observation, "invoice_id due days_late weight settled number amount currency paid_on")


@dataclass(frozen=True, slots=True)
class SetAside:
    """An invoice, or part of one, measured other than by its allocations, and why (in words)."""

    number: str
    amount: Decimal
    currency: str
    why: str
    left_out: bool = True  # False: counted, as paid by money the ledger holds unallocated


@dataclass(frozen=True, slots=True)
class Held:
    """Money or credit of a customer's not yet allocated as of the date (base currency)."""

    on: date  # the payment's date (the money arrived), or the credit note's
    amount: Decimal
    money: bool  # a payment; False for a credit note


@dataclass(frozen=True, slots=True)
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
    severe_amount: Decimal = _ZERO  # base amount open more than severe_days past due
    weighed: Decimal = _ZERO  # base amount of every observation together
    observations: tuple[Observation, ...] = ()
    set_aside: tuple[SetAside, ...] = ()
    model: RatingModel = field(default=DEFAULT_MODEL)


@dataclass(frozen=True)
class Sources:
    """What observations need from the snapshot besides the ledger."""

    paid_on: Mapping[str, date]  # payment id -> the date its money arrived
    credit_numbers: Mapping[str, str]  # credit note id -> its number
    unapplied: Mapping[str, tuple[Held, ...]]  # customer id -> unapplied money and credit, oldest first

    @classmethod
    def of(cls, snapshot: Snapshot, rates: Rates, as_of: date) -> Sources:
        paid_on = {p.id: p.date for p in snapshot.payments}
        unapplied: dict[str, list[Held]] = {}

        def add(customer: str | None, amount: Decimal, currency: str, rate: Decimal | None, on: date,
                money: bool) -> None:  # fmt: skip
            converted = rates.to_base(amount, currency, rate) if customer is not None and amount > 0 else None
            if customer is not None and converted:
                unapplied.setdefault(customer, []).append(Held(on, converted, money))

        for p in snapshot.payments:
            if p.status is PaymentStatus.LIVE and p.date <= as_of:
                later = sum((a.amount.amount for a in p.allocations if (a.date or p.date) > as_of), _ZERO)
                add(
                    p.customer_id,
                    p.unapplied.amount + later,
                    p.amount.currency,
                    p.currency_rate,
                    p.date,
                    True,
                )
        for c in snapshot.credit_notes:
            if c.status.live and c.issue_date <= as_of:
                later = sum(
                    (a.amount.amount for a in c.allocations if (a.date or c.issue_date) > as_of), _ZERO
                )
                remaining = c.remaining.amount + later
                add(c.customer_id, remaining, c.total.currency, c.currency_rate, c.issue_date, False)
        credit_numbers = {c.id: c.number or c.id for c in snapshot.credit_notes}
        ordered = {
            k: tuple(sorted(v, key=lambda h: (h.on, not h.money, h.amount))) for k, v in unapplied.items()
        }
        return cls(paid_on, credit_numbers, ordered)


NO_SOURCES = Sources({}, {}, {})


def money_settlement(
    state: InvoiceState, paid_on: Mapping[str, date]
) -> tuple[date | None, Decimal, Decimal]:
    """(when the money that cleared the invoice arrived, the part paid with money, the part credited).

    The date is None while the invoice is not cleared, or when credit cleared all of it.
    """
    allocs = state.allocations
    if len(allocs) == 1 and allocs[0].source_kind is not _CREDIT:  # the common case: one payment
        a = allocs[0]
        when = paid_on.get(a.source_id, a.date) if state.paid_on is not None else None
        return when, a.amount.amount, _ZERO
    credited = sum((a.amount.amount for a in allocs if a.source_kind is _CREDIT), _ZERO)
    money = [
        (paid_on.get(a.source_id, a.date), a.amount.amount) for a in allocs if a.source_kind is not _CREDIT
    ]
    paid = sum((m for _, m in money), _ZERO)
    need = state.invoice.total.amount - credited
    if state.paid_on is None or need <= 0:
        return None, paid, credited
    running = _ZERO
    for when, amount in sorted(money, key=lambda m: (m[0] or date.min, m[1])):
        running += amount
        if running >= need:
            return when, need, credited
    return state.paid_on, need, credited  # unreachable when cleared; the allocation date as a fallback


def _credit_notes(state: InvoiceState, numbers: Mapping[str, str]) -> str:
    found = sorted(
        {numbers.get(a.source_id, a.source_id) for a in state.allocations if a.source_kind is _CREDIT}
    )
    return ("credit note " if len(found) == 1 else "credit notes ") + ", ".join(found)


def observations(
    ledger: AllocationLedger, rates: Rates, as_of: date, sources: Sources = NO_SOURCES
) -> tuple[dict[str, list[Observation]], dict[str, list[SetAside]]]:
    """Observations per customer id, in invoice id order, and what was set aside and why."""
    found: dict[str, list[Observation]] = {}
    aside: dict[str, list[SetAside]] = {}
    paid_dates, invoices, to_base = sources.paid_on, ledger.invoices, rates.to_base
    for iid in sorted(invoices):
        state = invoices[iid]
        inv = state.invoice
        paid_on, allocs = state.paid_on, state.allocations
        due = inv.due_date or inv.issue_date  # state.due, without the call (this runs for every invoice)
        if inv.total.amount <= _ZERO or (paid_on is None and (state.outstanding <= _ZERO or due >= as_of)):
            continue
        number = inv.number or iid
        if len(allocs) == 1 and allocs[0].source_kind is not _CREDIT:  # most invoices: one payment, or none
            money_on = paid_dates.get(allocs[0].source_id, allocs[0].date) if paid_on is not None else None
            money = allocs[0].amount.amount
        elif allocs:
            money_on, money, credited = money_settlement(state, paid_dates)
            if credited > 0:
                why = (
                    f"cleared by {_credit_notes(state, sources.credit_numbers)}: a credit, not a late payment"
                )
                aside.setdefault(inv.customer_id, []).append(SetAside(number, credited, inv.currency, why))
        else:
            money_on, money = None, _ZERO
        if paid_on is not None:
            if money_on is None:
                continue  # wholly credited
            late, amount, settled = (money_on - due).days, money, True
        else:
            late, amount, settled = (as_of - due).days, state.outstanding, False
        currency = inv.total.currency
        weight = to_base(amount, currency, inv.currency_rate)
        found.setdefault(inv.customer_id, []).append(_observation(
            iid, due, late, amount if weight is None else weight, settled, number, amount, currency,
            money_on if settled else None,
        ))  # fmt: skip
    for customer, held in sources.unapplied.items():
        if customer in found:
            _cover(found, aside, customer, held)
    return found, aside


def _cover(
    found: dict[str, list[Observation]],
    aside: dict[str, list[SetAside]],
    customer: str,
    held: tuple[Held, ...],
) -> None:
    """Apply the customer's unallocated money and credit, oldest first, to their oldest open invoices, as
    the ledger would once the bookkeeper allocates it: money pays the part it covers on the day it arrived
    (a settled observation); credit takes its part out of the lateness measures."""
    left = list(held)
    kept: list[Observation] = []
    for o in sorted(found[customer], key=lambda o: (o.settled, o.due, o.invoice_id)):
        weight, amount = o.weight, o.amount
        while not o.settled and left and weight > 0:
            first = left[0]
            cover = min(first.amount, weight)
            part = amount if cover == weight else (o.amount * cover / o.weight).quantize(Decimal("0.01"))
            if first.money:
                late = (first.on - o.due).days
                kept.append(Observation(o.invoice_id, o.due, late, cover, True, o.number, part, o.currency,
                                        first.on))  # fmt: skip
                why = f"counted as paid on {first.on} by the customer's unallocated payment: allocate it"
            else:
                why = (
                    "covered by the customer's unallocated credit: a credit, not a late payment; allocate it"
                )
            aside.setdefault(customer, []).append(SetAside(o.number, part, o.currency, why, not first.money))
            weight, amount = weight - cover, amount - part
            if cover < first.amount:
                left[0] = Held(first.on, first.amount - cover, first.money)
            else:
                left.pop(0)
        if weight == o.weight:
            kept.append(o)
        elif weight > 0:
            kept.append(Observation(o.invoice_id, o.due, o.days_late, weight, False, o.number, amount,
                                    o.currency, None))  # fmt: skip
    found[customer] = sorted(kept, key=lambda o: (o.invoice_id, o.settled))


def _mean(values: list[int]) -> Decimal:
    return (Decimal(sum(values)) / len(values)).quantize(_TENTH) if values else _ZERO


def _trend(obs: list[Observation], as_of: date, model: RatingModel = DEFAULT_MODEL) -> Trend:
    if not any(o.settled for o in obs):
        return Trend.UNKNOWN  # nothing paid: nothing to improve on
    cut = as_of - timedelta(days=model.recent_days)
    recent = [o for o in obs if o.due > cut]
    earlier = [max(o.days_late, 0) for o in obs if o.due <= cut]
    if not recent or not earlier:
        return Trend.UNKNOWN
    change = _mean([max(o.days_late, 0) for o in recent]) - _mean(earlier)
    if change <= -model.trend_days:
        return Trend.IMPROVING if any(o.settled for o in recent) else Trend.STEADY
    return Trend.WORSENING if change >= model.trend_days else Trend.STEADY


# by position: one per customer each night
_behaviour = builder(
    Behaviour,
    "customer_id name paid_count open_overdue_count average_days_late weighted_days_late on_time_share trend"
    " rating risk days_to_pay severe_amount weighed observations set_aside model",
)
RISK = {"A": Risk.LOW, "B": Risk.LOW, "C": Risk.MEDIUM, "D": Risk.HIGH, "E": Risk.HIGH, None: Risk.MEDIUM}


def describe(
    customer_id: str,
    name: str,
    obs: list[Observation],
    as_of: date,
    model: RatingModel = DEFAULT_MODEL,
    aside: list[SetAside] | None = None,
) -> Behaviour:
    """One customer's behaviour from their observations."""
    # One pass (run for every customer each night); every sum adds in observation order, as sum() would.
    late: list[int] = []
    paid_days: list[int] = []
    total_weight = weighted_sum = severe = _ZERO
    on_time_count = open_count = 0
    severe_days = model.severe_days
    for o in obs:
        days, weight = o.days_late, o.weight
        counted = days if days > 0 else 0  # paid early counts as on time
        late.append(counted)
        total_weight += weight
        weighted_sum += weight * counted
        if counted == 0:
            on_time_count += 1
        if o.settled:
            paid_days.append(days)
        else:
            open_count += 1
            if days > severe_days:
                severe += weight
    weighted = (weighted_sum / total_weight).quantize(_TENTH) if total_weight > 0 else _mean(late)
    on_time = (Decimal(on_time_count) / len(obs)).quantize(_THOUSANDTH) if obs else _ZERO
    big = material(severe, total_weight, model)
    rating = rate(weighted, on_time, big, model, small=severe > 0 and not big) if obs else None
    paid_days.sort()
    return _behaviour(
        customer_id, name, len(paid_days), open_count, _mean(late), weighted, on_time,
        _trend(obs, as_of, model), rating, RISK[rating], tuple(paid_days), severe, total_weight, tuple(obs),
        tuple(aside or ()), model,
    )  # fmt: skip


@without_gc
def behaviours(
    snapshot: Snapshot,
    ledger: AllocationLedger,
    rates: Rates,
    as_of: date,
    model: RatingModel = DEFAULT_MODEL,
) -> dict[str, Behaviour]:
    """Behaviour of every customer known to the snapshot or owning an invoice, by customer id."""
    obs, aside = observations(ledger, rates, as_of, Sources.of(snapshot, rates, as_of))
    ids = sorted({c.id for c in snapshot.customers} | set(obs))
    return {
        cid: describe(cid, snapshot.customer_name(cid), obs.get(cid, []), as_of, model, aside.get(cid))
        for cid in ids
    }
