"""The official sources of the two reference rates, and their answers parsed strictly.

- Bank of England Interactive Statistical Database (IADB), series IUDBEDR (Official Bank Rate): CSV whose
  header is `DATE,IUDBEDR`, one row per business day dated like `02 Nov 2023` (English month names
  whatever the machine's locale).
- ECB Data Portal, SDMX REST API, series FM.D.U2.EUR.4F.KR.MRR_FR.LEV (main refinancing operations, fixed
  rate): SDMX-CSV (`format=csvdata`) of some thirty columns, of which KEY, TIME_PERIOD (YYYY-MM-DD) and
  OBS_VALUE matter; rows only on the days the rate changed; titles quoted, with commas inside.

An answer not in that shape is a one-line BadAnswer naming the source, the line and what was wrong.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

from connector.rules.interest import SERIES, Changes

# Where the services are. Module constants so that tests and sandboxes can point them elsewhere.
BOE_URL = "https://www.bankofengland.co.uk/boeapps/database/_iadb-fromshowcolumns.asp"
ECB_URL = "https://data-api.ecb.europa.eu/service/data/FM/D.U2.EUR.4F.KR.MRR_FR.LEV"
START = date(2020, 1, 1)  # fetched from here on; the shipped table holds everything older
BOE_SERIES = "IUDBEDR"
ECB_KEY = "FM.D.U2.EUR.4F.KR.MRR_FR.LEV"
LOWEST, HIGHEST = Decimal(-5), Decimal(30)  # percent: anything outside is not a policy rate
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_BOE_DAY = re.compile(r"^(\d{2}) ([A-Z][a-z]{2}) (\d{4})$")
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CENT = Decimal("0.01")


def percent(value: Decimal) -> Decimal:
    """A rate as the banks and the shipped table write it: at least two decimals (3.50, 2.00, 3.65)."""
    plain = value.normalize()
    exponent = plain.as_tuple().exponent
    return plain.quantize(_CENT) if isinstance(exponent, int) and exponent >= -2 else plain


class BadAnswer(ValueError):
    """A source answered, but not in the shape expected; nothing stored changes. One line."""


@dataclass(frozen=True, slots=True)
class Source:
    key: str  # boe | ecb
    series: str  # the rate table's name for it
    label: str
    url: str
    params: Callable[[date], dict[str, str]]
    parse: Callable[[str], Changes]
    daily: bool  # a row every business day (so an answer that stops long before today is stale)


def boe(url: str | None = None) -> Source:
    """The Bank of England Bank Rate, at `url` (default BOE_URL as it is when called)."""
    return Source(
        "boe", SERIES["uk"], "Bank of England Bank Rate", url or BOE_URL, boe_params, parse_boe, daily=True
    )


def ecb(url: str | None = None) -> Source:
    """The ECB main refinancing operations rate, at `url` (default ECB_URL as it is when called)."""
    return Source(
        "ecb", SERIES["eu"], "ECB main refinancing rate", url or ECB_URL, ecb_params, parse_ecb, daily=False
    )


def every(boe_url: str | None = None, ecb_url: str | None = None) -> tuple[Source, Source]:
    return boe(boe_url), ecb(ecb_url)


def boe_params(start: date) -> dict[str, str]:
    """The IADB's CSV download: one series by code, tabular without titles, from `start` to now."""
    return {
        "csv.x": "yes", "Datefrom": f"{start.day:02d}/{_MONTHS[start.month - 1]}/{start.year}",
        "Dateto": "now", "SeriesCodes": BOE_SERIES, "CSVF": "TN", "UsingCodes": "Y", "VPD": "Y", "VFD": "N",
    }  # fmt: skip


def ecb_params(start: date) -> dict[str, str]:
    return {"format": "csvdata", "startPeriod": start.isoformat()}


def _rows(text: str, who: str) -> list[tuple[int, list[str]]]:
    """(line number, fields) of each non-blank CSV record."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")))
    rows: list[tuple[int, list[str]]] = []
    try:
        for fields in reader:
            if any(f.strip() for f in fields):
                rows.append((reader.line_num, fields))
    except csv.Error as exc:
        raise BadAnswer(f"{who}: line {reader.line_num}: not CSV: {exc}") from None
    if not rows:
        raise BadAnswer(f"{who}: the answer was empty")
    return rows


def _shown(text: str) -> str:
    first = text.removeprefix("\ufeff").strip().splitlines()[0] if text.strip() else ""
    return repr(first[:60] + ("…" if len(first) > 60 else ""))


def _rate(text: str, who: str, line: int) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise BadAnswer(f"{who}: line {line}: not a rate: {text!r}") from None
    if not value.is_finite() or not LOWEST <= value <= HIGHEST:
        raise BadAnswer(f"{who}: line {line}: not a rate: {text!r}")
    return percent(value)


def _checked(found: list[tuple[date, Decimal]], who: str) -> Changes:
    if not found:
        raise BadAnswer(f"{who}: the answer held no observations")
    days = [d for d, _ in found]
    if len(set(days)) != len(days):
        twice = next(d for d in days if days.count(d) > 1)
        raise BadAnswer(f"{who}: two observations for {twice}")
    return tuple(sorted(found))


def _boe_day(text: str, line: int) -> date:
    match = _BOE_DAY.match(text.strip())
    if match is None or match[2] not in _MONTHS:
        raise BadAnswer(f"Bank of England: line {line}: not a date like 02 Nov 2023: {text!r}")
    try:
        return date(int(match[3]), _MONTHS.index(match[2]) + 1, int(match[1]))
    except ValueError:
        raise BadAnswer(f"Bank of England: line {line}: no such day: {text!r}") from None


def parse_boe(text: str) -> Changes:
    """The IADB's `DATE,IUDBEDR` CSV as (day, percent) observations, ascending."""
    who = "Bank of England"
    rows = _rows(text, who)
    header = [f.strip() for f in rows[0][1]]
    if header != ["DATE", BOE_SERIES]:
        raise BadAnswer(f"{who}: expected a CSV with the header DATE,{BOE_SERIES}, got {_shown(text)}")
    found = []
    for line, fields in rows[1:]:
        if len(fields) != 2:
            raise BadAnswer(f"{who}: line {line}: expected 2 fields, got {len(fields)}")
        found.append((_boe_day(fields[0], line), _rate(fields[1], who, line)))
    return _checked(found, who)


def parse_ecb(text: str) -> Changes:
    """The Data Portal's SDMX-CSV as (day, percent) observations, ascending; every row must be the MRO's."""
    who = "ECB"
    rows = _rows(text, who)
    header = [f.strip() for f in rows[0][1]]
    missing = [c for c in ("KEY", "TIME_PERIOD", "OBS_VALUE") if c not in header]
    if missing:
        raise BadAnswer(f"{who}: expected SDMX-CSV with a {' and '.join(missing)} column, got {_shown(text)}")
    key, period, value = (header.index(c) for c in ("KEY", "TIME_PERIOD", "OBS_VALUE"))
    found = []
    for line, fields in rows[1:]:
        if len(fields) != len(header):
            raise BadAnswer(f"{who}: line {line}: expected {len(header)} fields, got {len(fields)}")
        if fields[key] != ECB_KEY:
            raise BadAnswer(f"{who}: line {line}: series {fields[key]!r}, not {ECB_KEY}")
        if not _ISO_DAY.match(fields[period]):
            raise BadAnswer(f"{who}: line {line}: TIME_PERIOD is not a day YYYY-MM-DD: {fields[period]!r}")
        try:
            day = date.fromisoformat(fields[period])
        except ValueError:
            raise BadAnswer(f"{who}: line {line}: no such day: {fields[period]!r}") from None
        found.append((day, _rate(fields[value], who, line)))
    return _checked(found, who)
