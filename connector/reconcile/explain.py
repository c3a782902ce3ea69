"""Why a customer has their payment rating, in a bookkeeper's words, naming the invoices that drove it."""

from __future__ import annotations

from decimal import Decimal

from connector.reconcile.behaviour import Behaviour, Observation, Trend
from connector.reconcile.rating import RatingModel, grade, material
from connector.words import locale as words

SHOWN = 3  # invoices named per line at most; the rest are counted


def _money(amount: Decimal, currency: str) -> str:
    return words.money(amount, currency)


def _days(n: int) -> str:
    return "1 day" if n == 1 else f"{n} days"


def _named(items: list[str]) -> str:
    more = f" and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return "; ".join(items[:SHOWN]) + more


def _paid(o: Observation) -> str:
    if o.days_late == 0:
        when = "on time"
    else:
        when = _days(abs(o.days_late)) + (" late" if o.days_late > 0 else " early")
    return f"{o.number} ({_money(o.amount, o.currency)}) paid {o.paid_on}, {when}"


def _open(o: Observation) -> str:
    return f"{o.number} ({_money(o.amount, o.currency)}) unpaid {_days(o.days_late)} past due"


def _scale(model: RatingModel) -> str:
    return (
        f"A: at most {model.a_days} and {model.a_on_time * 100:.0f}% on time; B: at most {model.b_days}; "
        f"C: at most {model.c_days}; D: at most {model.d_days}; E: more"
    )


def _severe(b: Behaviour, base: str, by_measure: str) -> str | None:
    """The line about invoices unpaid beyond severe_days, if there are any."""
    model = b.model
    severe = sorted(
        (o for o in b.observations if not o.settled and o.days_late > model.severe_days),
        key=lambda o: (-o.weight, o.number),
    )
    if not severe:
        return None
    amount, rated = _money(b.severe_amount, base), _money(b.weighed, base)
    needs = f"{_money(model.severe_min_amount, base)} and {model.severe_min_percent}% of the {rated} rated"
    named = _named([_open(o) for o in severe])
    if material(b.severe_amount, b.weighed, model):
        return f"E: {amount} unpaid more than {model.severe_days} days past due is at least {needs}: {named}"
    capped = f", but keeps the rating at {model.small_severe_cap} or below" if b.rating != by_measure else ""
    return f"small old debt, not enough for E ({amount}; E needs {needs}){capped}: {named}"


def _trend(b: Behaviour) -> str:
    days = b.model.recent_days
    return {
        Trend.UNKNOWN: "trend unknown: "
        + ("nothing paid yet" if b.paid_count == 0 else "too little history"),
        Trend.IMPROVING: f"trend improving: the last {days} days were paid sooner than before",
        Trend.WORSENING: f"trend worsening: the last {days} days were paid later than before",
        Trend.STEADY: "trend steady",
    }[b.trend]


def explain(b: Behaviour, base: str) -> tuple[str, ...]:
    """The lines that explain `b.rating`: the measure, the invoices that weigh most, what was left out."""
    left_out = [
        f"{'left out' if s.left_out else 'note'}: {s.number} ({_money(s.amount, s.currency)}) {s.why}"
        for s in b.set_aside
    ]
    if b.rating is None:
        return ("unrated: no invoice has been paid or fallen due yet", *left_out)
    by_measure = grade(b.weighted_days_late, b.on_time_share, b.model)
    lines = [
        f"rating {b.rating}: {b.paid_count} paid and {b.open_overdue_count} unpaid past due; "
        f"{b.weighted_days_late} days late on average weighted by amount ({b.average_days_late} unweighted), "
        f"{b.on_time_share * 100:.0f}% on time or early",
        f"{b.weighted_days_late} weighted days late alone rates {by_measure} ({_scale(b.model)})",
    ]
    severe = _severe(b, base, by_measure)
    if severe is not None:
        lines.append(severe)
    late = sorted(
        (o for o in b.observations if o.days_late > 0), key=lambda o: (-o.weight * o.days_late, o.number)
    )
    if late:
        lines.append(
            "the invoices that weigh most: " + _named([_paid(o) if o.settled else _open(o) for o in late])
        )
    else:
        paid = [o for o in b.observations if o.settled]
        latest = max(paid, key=lambda o: (o.paid_on or o.due, o.number), default=None)
        if latest is not None:
            lines.append(f"every invoice paid on time or early; the latest: {_paid(latest)}")
    return (*lines, _trend(b), *left_out)


def brief(b: Behaviour, base: str) -> str:
    """One line for a hold's reason: the measure that set the letter and the invoices behind it."""
    by_measure = grade(b.weighted_days_late, b.on_time_share, b.model)
    if b.rating == "E" and by_measure != "E":  # E by a material old debt
        return _severe(b, base, by_measure) or f"rating {b.rating}"
    on_time = f"{b.on_time_share * 100:.0f}% on time"
    measure = f"{b.weighted_days_late:.0f} days late on average weighted by amount, {on_time}"
    late = sorted(
        (o for o in b.observations if o.days_late > 0), key=lambda o: (-o.weight * o.days_late, o.number)
    )
    if not late:
        return measure
    return f"{measure}; weighing most: " + _named([_paid(o) if o.settled else _open(o) for o in late][:2])
