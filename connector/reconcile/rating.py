"""The payment rating A-E: thresholds (the `rating:` section of credit.yaml), the letter and its explanation.

W = weighted days late (each invoice's days late weighted by its amount, see behaviour.py), S = on-time
share. The letter follows W:  A: W <= a_days and S >= a_on_time;  B: W <= b_days;  C: W <= c_days;
D: W <= d_days;  E: W > d_days.

Invoices open more than `severe_days` past due are a separate test, because one small forgotten invoice
must not undo years of good payment while a large unpaid debt must not hide behind a good history:
- material (together at least `severe_min_amount` in base currency AND at least `severe_min_percent` of
  everything the rating weighs for the customer): the rating is E;
- otherwise the rating is at most `small_severe_cap` (default B: such a customer is no longer A).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

LETTERS = ("A", "B", "C", "D", "E")


@dataclass(frozen=True, slots=True)
class RatingModel:
    """Rating thresholds. The defaults are ccm's shipped values (those before 0.x, plus the severe test)."""

    a_days: Decimal = Decimal(3)
    a_on_time: Decimal = Decimal("0.8")  # share 0..1 (the file says a_on_time_percent: 80)
    b_days: Decimal = Decimal(10)
    c_days: Decimal = Decimal(30)
    d_days: Decimal = Decimal(60)
    severe_days: int = 90
    severe_min_amount: Decimal = Decimal(500)
    severe_min_percent: Decimal = Decimal(10)
    small_severe_cap: str = "B"
    recent_days: int = 180
    trend_days: Decimal = Decimal(5)


DEFAULT_MODEL = RatingModel()


def grade(weighted: Decimal, on_time: Decimal, model: RatingModel = DEFAULT_MODEL) -> str:
    """The letter for weighted days late and on-time share alone."""
    if weighted > model.d_days:
        return "E"
    if weighted <= model.a_days and on_time >= model.a_on_time:
        return "A"
    if weighted <= model.b_days:
        return "B"
    return "C" if weighted <= model.c_days else "D"


def material(severe: Decimal, weighed: Decimal, model: RatingModel = DEFAULT_MODEL) -> bool:
    """Whether `severe` (base amount open beyond severe_days) is large enough to rate a customer E."""
    return (
        severe > 0
        and severe >= model.severe_min_amount
        and severe * 100 >= model.severe_min_percent * weighed
    )


def rate(
    weighted: Decimal, on_time: Decimal, severe: bool, model: RatingModel = DEFAULT_MODEL, small: bool = False
) -> str:
    """The letter: `severe` when material debt is open beyond severe_days, `small` when only small debt is."""
    if severe:
        return "E"
    letter = grade(weighted, on_time, model)
    if small and LETTERS.index(letter) < LETTERS.index(model.small_severe_cap):
        return model.small_severe_cap
    return letter
