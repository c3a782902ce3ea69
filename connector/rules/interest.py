"""Statutory late-payment interest and fixed compensation (business-to-business debts only).

UK, Late Payment of Commercial Debts (Interest) Act 1998: simple interest at 8% over the Bank of England
base rate; the reference rate for January-June is the base rate in force on 31 December before, for
July-December the rate in force on 30 June. Fixed compensation per invoice: £40 under £1,000, £70 under
£10,000, £100 from £10,000.

EU, Directive 2011/7/EU: at least 8 percentage points over the ECB main refinancing rate in force on
1 January (for January-June) or 1 July (for July-December); fixed compensation of €40.

Interest runs from the day after the due date up to and including the day it is assessed, at
`principal x rate x days / 365`, each half-year at its own reference rate; the total is rounded to the cent.

Rates are data passed in (a RateTable), never looked up here: the table shipped in the package
(reference_rates.yaml), a tenant's own entries over it, and what ccm last fetched from the central banks
(connector/reference_rates) over both. Each series is *confirmed* up to a day: the table's `checked` date,
its newest entry, or the day of the last successful fetch. A half-year whose reference day is after that
still gets the last rate known (the claim says which periods are unconfirmed) and the firm is told through
the `reference_rate_stale` health issue; an interest line is never dropped for want of a newer rate.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, Strict

from connector.model import Money
from connector.yamlfile import FileModel, FileProblem, read_yaml, validated, worded

SHIPPED = Path(__file__).with_name("reference_rates.yaml")
MARGIN = Decimal(8)
CENT = Decimal("0.01")
SERIES = {"uk": "boe_base_rate", "eu": "ecb_mro_rate"}  # regime -> the series its reference rate comes from
CHECKED = "checked"  # the rates files' key for the day up to which each series was checked


class Regime(StrEnum):
    UK = "uk"
    EU = "eu"


LAWS = {
    Regime.UK: "the Late Payment of Commercial Debts (Interest) Act 1998",
    Regime.EU: "Directive 2011/7/EU",
}


class RateUnknown(LookupError):
    """No reference rate is known for a date (it precedes the table): extend the table. One line."""


class RatesFileError(FileProblem):
    pass


Changes = tuple[tuple[date, Decimal], ...]


@dataclass(frozen=True)
class RateTable:
    """Per series, dated rate changes in percent, ascending, and the day each series is confirmed up to."""

    series: dict[str, Changes]
    checked: dict[str, date] = field(default_factory=dict)

    def in_force(self, name: str, day: date) -> Decimal:
        """The rate in force on `day`: the last change on or before it (the last known one, if `day` is after
        the series is confirmed; see `confirmed`)."""
        changes = self.series.get(name, ())
        index = bisect.bisect_right([d for d, _ in changes], day) - 1
        if index < 0:
            raise RateUnknown(f"no {name} rate known on {day}: add it to reference_rates.yaml")
        return changes[index][1]

    def through(self, name: str) -> date | None:
        """The last day the series is known to be current on (None: nothing known)."""
        changes = self.series.get(name, ())
        days = [d for d in (self.checked.get(name), changes[-1][0] if changes else None) if d is not None]
        return max(days, default=None)

    def confirmed(self, name: str, day: date) -> bool:
        """Whether the rate in force on `day` is known, not just the last one known before it."""
        through = self.through(name)
        return through is not None and day <= through


@dataclass(frozen=True, slots=True)
class Observed:
    """A series as its official source last answered: authoritative from its first observation on up to
    `through`, the day it was fetched."""

    series: str
    changes: Changes  # every observation, ascending (daily rows and change dates alike)
    through: date


def _iso_keys(value: Any) -> Any:
    """A series' keys (YAML dates) as text, so that an error names the entry by its day; parsed back below."""
    return {str(k): v for k, v in value.items()} if isinstance(value, dict) else value


Day = Annotated[date, worded("not a date (YYYY-MM-DD)")]
Rate = Annotated[Decimal, worded("not a rate: {got}")]
Series = Annotated[
    dict[Day, Rate], BeforeValidator(_iso_keys), worded("expected date: rate entries", shallow=True)
]
Checked = Annotated[Annotated[date, Strict()] | None, worded("not a date (YYYY-MM-DD): {got}")]


class _Checked(FileModel):
    """`checked:` the day up to which each series was checked."""

    NOT_A_MAPPING = "expected series: date entries"
    boe_base_rate: Checked = None
    ecb_mro_rate: Checked = None

    @classmethod
    def unknown(cls, key: str) -> str:
        return "unknown series"


class _RatesFile(FileModel):
    """A rates file: dated changes per series (`date: rate`), and `checked` days."""

    NOT_A_MAPPING = "expected a mapping of series"
    checked: _Checked = _Checked()
    boe_base_rate: Series = Field(default_factory=dict)
    ecb_mro_rate: Series = Field(default_factory=dict)

    @classmethod
    def unknown(cls, key: str) -> str:
        return f"unknown series (known: {', '.join(SERIES.values())})"


assert set(_Checked.FILE_KEYS) == set(SERIES.values()) == set(_RatesFile.FILE_KEYS) - {CHECKED}


def _parse(doc: Any, name: str) -> tuple[dict[str, dict[date, Decimal]], dict[str, date]]:
    rates = validated(_RatesFile, doc, name, RatesFileError)
    changes = {s: dict(c) for s in SERIES.values() if (c := getattr(rates, s))}
    checked = {s: d for s in SERIES.values() if (d := getattr(rates.checked, s)) is not None}
    return changes, checked


def load_rates(tenant_file: Path | None = None, fetched: Mapping[str, Observed] | None = None) -> RateTable:
    """The shipped table, the tenant's entries merged over it, and what was fetched over both.

    A fetched series is authoritative from its first observation up to the day it was fetched: entries of
    the files inside that span give way to it; entries before it (older history) and after it (a change a
    person typed in before ccm could fetch it) stay.
    """
    merged, checked = _parse(
        read_yaml(SHIPPED, "connector/rules/reference_rates.yaml", RatesFileError), "shipped rates"
    )
    if tenant_file is not None and tenant_file.exists():
        extra, own = _parse(read_yaml(tenant_file, str(tenant_file), RatesFileError), str(tenant_file))
        for series, changes in extra.items():
            merged.setdefault(series, {}).update(changes)
        for series, day in own.items():
            checked[series] = max(day, checked.get(series, day))
    for series, seen in (fetched or {}).items():
        if not seen.changes:
            continue
        start = seen.changes[0][0]
        kept = {d: r for d, r in merged.get(series, {}).items() if d < start or d > seen.through}
        merged[series] = kept | dict(seen.changes)
        checked[series] = max(seen.through, checked.get(series, seen.through))
    return RateTable({s: tuple(sorted(c.items())) for s, c in merged.items()}, checked)


@dataclass(frozen=True, slots=True)
class Period:
    start: date
    end: date  # inclusive
    reference: Decimal  # percent
    rate: Decimal  # percent: reference + 8
    days: int
    interest: Decimal  # unrounded
    confirmed: bool = True  # False: the reference day is after the table is confirmed; the last rate known


@dataclass(frozen=True, slots=True)
class Claim:
    principal: Money
    regime: Regime
    periods: tuple[Period, ...]
    interest: Money
    compensation: Money

    @property
    def unconfirmed(self) -> tuple[Period, ...]:
        """Periods reckoned at the last rate known because their reference day is past what is confirmed."""
        return tuple(p for p in self.periods if not p.confirmed)

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


def half_start(day: date) -> date:
    """The first day of the half-year `day` is in."""
    return date(day.year, 1 if day.month <= 6 else 7, 1)


def _next_half(day: date) -> date:
    return date(day.year, 7, 1) if day.month <= 6 else date(day.year + 1, 1, 1)


def reference_day(half: date, regime: Regime) -> date:
    """The day whose rate sets the reference for the half-year starting `half`."""
    if regime is Regime.EU:
        return half
    return half - timedelta(days=1)  # 31 December / 30 June


def needed(regime: Regime, today: date) -> date:
    """The newest reference day a claim assessed `today` uses (that of today's half-year)."""
    return reference_day(half_start(today), regime)


def half_name(half: date) -> str:
    """'January-June 2027' for the half-year starting `half`."""
    return f"{'January-June' if half.month == 1 else 'July-December'} {half.year}"


def covered(rates: RateTable, regime: Regime) -> tuple[date, date] | None:
    """The first and last half-years (their first days) whose reference rate is known, or None."""
    name = SERIES[regime.value]
    changes, through = rates.series.get(name, ()), rates.through(name)
    if not changes or through is None:
        return None
    first = half_start(changes[0][0])
    if reference_day(first, regime) < changes[0][0]:
        first = _next_half(first)
    last = _next_half(half_start(through))  # 30 June confirmed already covers July-December (UK)
    if reference_day(last, regime) > through:
        last = half_start(through)
    return (first, last) if first <= last else None


def compensation(principal: Money, regime: Regime) -> Money:
    if regime is Regime.EU:
        return Money(Decimal(40), "EUR")
    amount = principal.amount
    fixed = 40 if amount < 1000 else 70 if amount < 10000 else 100
    return Money(Decimal(fixed), "GBP")


def claim(principal: Money, due: date, as_of: date, regime: Regime, rates: RateTable) -> Claim:
    """Statutory interest on `principal` unpaid since `due`, assessed on `as_of`, and fixed compensation.

    A half-year whose reference rate is not confirmed is reckoned at the last rate known and marked so
    (`Claim.unconfirmed`). Raises RateUnknown only for a day before the table's first entry.
    """
    periods: list[Period] = []
    day = due + timedelta(days=1)
    while day <= as_of:
        half = half_start(day)
        end = min(as_of, _next_half(half) - timedelta(days=1))
        name, on = SERIES[regime.value], reference_day(half, regime)
        reference = rates.in_force(name, on)
        rate = reference + MARGIN
        days = (end - day).days + 1
        periods.append(
            Period(day, end, reference, rate, days, principal.amount * rate / 100 * days / 365,
                   rates.confirmed(name, on))
        )  # fmt: skip
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
