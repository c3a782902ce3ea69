"""Statutory late-payment interest and fixed compensation (business-to-business debts only).

UK, Late Payment of Commercial Debts (Interest) Act 1998: simple interest at 8% over the Bank of England
base rate; the reference rate for January-June is the base rate in force on 31 December before, for
July-December the rate in force on 30 June. Fixed compensation per invoice: £40 under £1,000, £70 under
£10,000, £100 from £10,000.

EU, Directive 2011/7/EU: at least 8 percentage points over the ECB main refinancing rate in force on
1 January (for January-June) or 1 July (for July-December); fixed compensation of €40.

Interest runs from the day after the due date up to and including the day it is assessed, at
`principal x rate x days / 365`, each half-year at its own reference rate; the total is rounded to the cent.
Rates come from a dated table shipped in the package (reference_rates.yaml) that a tenant can extend.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Any

from connector.model import Money
from connector.yamlfile import FileProblem, read_yaml

SHIPPED = Path(__file__).with_name("reference_rates.yaml")
MARGIN = Decimal(8)
CENT = Decimal("0.01")
_SERIES = {"uk": "boe_base_rate", "eu": "ecb_mro_rate"}


class Regime(StrEnum):
    UK = "uk"
    EU = "eu"


LAWS = {
    Regime.UK: "the Late Payment of Commercial Debts (Interest) Act 1998",
    Regime.EU: "Directive 2011/7/EU",
}


class RateUnknown(LookupError):
    """No reference rate is known for a date: extend the table. One line."""


class RatesFileError(FileProblem):
    pass


@dataclass(frozen=True)
class RateTable:
    """Per series, dated rate changes in percent, ascending."""

    series: dict[str, tuple[tuple[date, Decimal], ...]]

    def in_force(self, name: str, day: date) -> Decimal:
        changes = self.series.get(name, ())
        index = bisect.bisect_right([d for d, _ in changes], day) - 1
        if index < 0:
            raise RateUnknown(f"no {name} rate known on {day}: add it to reference_rates.yaml")
        if day - changes[-1][0] > timedelta(days=400) and index == len(changes) - 1:
            raise RateUnknown(
                f"the {name} table ends {changes[-1][0]}; add changes up to {day} to reference_rates.yaml"
            )
        return changes[index][1]


def _parse(doc: Any, name: str) -> dict[str, dict[date, Decimal]]:
    if not isinstance(doc, dict):
        raise RatesFileError(f"{name}: expected a mapping of series")
    parsed: dict[str, dict[date, Decimal]] = {}
    for series, changes in doc.items():
        if series not in _SERIES.values():
            raise RatesFileError(f"{name}: {series}: unknown series (known: {', '.join(_SERIES.values())})")
        if not isinstance(changes, dict):
            raise RatesFileError(f"{name}: {series}: expected date: rate entries")
        for day, rate in changes.items():
            if not isinstance(day, date):
                raise RatesFileError(f"{name}: {series}.{day}: not a date (YYYY-MM-DD)")
            try:
                value = Decimal(str(rate))
            except InvalidOperation:
                raise RatesFileError(f"{name}: {series}.{day}: not a rate: {rate!r}") from None
            parsed.setdefault(series, {})[day] = value
    return parsed


def load_rates(tenant_file: Path | None = None) -> RateTable:
    """The shipped table with the tenant's entries merged over it."""
    merged = _parse(
        read_yaml(SHIPPED, "connector/rules/reference_rates.yaml", RatesFileError), "shipped rates"
    )
    if tenant_file is not None and tenant_file.exists():
        extra = _parse(read_yaml(tenant_file, str(tenant_file), RatesFileError), str(tenant_file))
        for series, changes in extra.items():
            merged.setdefault(series, {}).update(changes)
    return RateTable({s: tuple(sorted(c.items())) for s, c in merged.items()})


@dataclass(frozen=True, slots=True)
class Period:
    start: date
    end: date  # inclusive
    reference: Decimal  # percent
    rate: Decimal  # percent: reference + 8
    days: int
    interest: Decimal  # unrounded


@dataclass(frozen=True, slots=True)
class Claim:
    principal: Money
    regime: Regime
    periods: tuple[Period, ...]
    interest: Money
    compensation: Money

    def describe(self) -> str:
        """A line a reminder can carry."""
        if not self.periods:
            return ""
        rates = ", ".join(f"{p.rate}% from {p.start}" for p in self.periods)
        law = LAWS[self.regime]
        return (
            f"Under {law} we may claim interest of {self.interest} ({rates}) and fixed compensation of "
            f"{self.compensation}."
        )


def _half_start(day: date) -> date:
    return date(day.year, 1 if day.month <= 6 else 7, 1)


def _next_half(day: date) -> date:
    return date(day.year, 7, 1) if day.month <= 6 else date(day.year + 1, 1, 1)


def _reference_day(half: date, regime: Regime) -> date:
    if regime is Regime.EU:
        return half
    return half - timedelta(days=1)  # 31 December / 30 June


def compensation(principal: Money, regime: Regime) -> Money:
    if regime is Regime.EU:
        return Money(Decimal(40), "EUR")
    amount = principal.amount
    fixed = 40 if amount < 1000 else 70 if amount < 10000 else 100
    return Money(Decimal(fixed), "GBP")


def claim(principal: Money, due: date, as_of: date, regime: Regime, rates: RateTable) -> Claim:
    """Statutory interest on `principal` unpaid since `due`, assessed on `as_of`, and fixed compensation."""
    periods: list[Period] = []
    day = due + timedelta(days=1)
    while day <= as_of:
        half = _half_start(day)
        end = min(as_of, _next_half(half) - timedelta(days=1))
        reference = rates.in_force(_SERIES[regime.value], _reference_day(half, regime))
        rate = reference + MARGIN
        days = (end - day).days + 1
        periods.append(Period(day, end, reference, rate, days, principal.amount * rate / 100 * days / 365))
        day = end + timedelta(days=1)
    total = sum((p.interest for p in periods), Decimal(0)).quantize(CENT, rounding=ROUND_HALF_UP)
    owed = compensation(principal, regime) if periods else Money.zero("EUR" if regime is Regime.EU else "GBP")
    return Claim(principal, regime, tuple(periods), Money(total, principal.currency), owed)


def combined(claims: list[Claim]) -> str | None:
    """One sentence for a reminder listing several invoices (None when nothing is owed yet)."""
    owed = [c for c in claims if c.periods]
    if not owed:
        return None
    if len(owed) == 1:
        return owed[0].describe()
    totals: dict[str, Decimal] = {}
    for c in owed:
        totals[c.interest.currency] = totals.get(c.interest.currency, Decimal(0)) + c.interest.amount
    compensation_total = Money.zero(owed[0].compensation.currency)
    for c in owed:
        compensation_total = compensation_total + c.compensation
    interest_text = ", ".join(str(Money(v, k)) for k, v in sorted(totals.items()))
    law = LAWS[owed[0].regime]
    return (
        f"Under {law} we may claim interest of {interest_text} and fixed compensation of "
        f"{compensation_total} on these {len(owed)} invoices."
    )
