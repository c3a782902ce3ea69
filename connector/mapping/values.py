"""Parsers for raw values: dates (ISO, Xero's MS-JSON, strptime patterns), instants, decimals."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

_MSJSON = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

FORMATS = ("auto", "iso", "msjson")


class ValueProblem(ValueError):
    """A raw value cannot be read as the canonical type."""


def _msjson(text: str) -> datetime:
    m = _MSJSON.match(text)
    if not m:
        raise ValueProblem(f"not an MS-JSON date: {text!r}")
    # The millisecond count is UTC whatever offset follows it; the offset only says where it was written.
    return _EPOCH + timedelta(milliseconds=int(m.group(1)))


def _iso_instant(text: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueProblem(f"not an ISO date-time: {text!r}") from exc
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)  # ledgers' naive instants (Xero's ...UTC fields) are UTC
    return parsed.astimezone(UTC)


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text[:10])
    except ValueError as exc:
        raise ValueProblem(f"not an ISO date: {text!r}") from exc


def instant_parser(fmt: str) -> Callable[[Any], datetime]:
    """A function reading a raw value as a UTC datetime in format `fmt` (auto, iso, msjson or a strptime)."""

    def parse(raw: Any) -> datetime:
        if isinstance(raw, datetime):
            return raw.astimezone(UTC) if raw.tzinfo else raw.replace(tzinfo=UTC)
        if not isinstance(raw, str):
            raise ValueProblem(f"expected a date-time string, got {raw!r}")
        if fmt == "msjson" or (fmt == "auto" and raw.startswith("/Date(")):
            return _msjson(raw)
        if fmt in ("iso", "auto"):
            return _iso_instant(raw)
        try:
            parsed = datetime.strptime(raw, fmt)  # noqa: DTZ007 - made aware just below
        except ValueError as exc:
            raise ValueProblem(f"{raw!r} does not match {fmt!r}") from exc
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)

    return parse


def date_parser(fmt: str) -> Callable[[Any], date]:
    """A function reading a raw value as a calendar date in format `fmt`."""

    def parse(raw: Any) -> date:
        if isinstance(raw, datetime):
            return raw.date()
        if isinstance(raw, date):
            return raw
        if not isinstance(raw, str):
            raise ValueProblem(f"expected a date string, got {raw!r}")
        if fmt == "msjson" or (fmt == "auto" and raw.startswith("/Date(")):
            return _msjson(raw).date()
        if fmt in ("iso", "auto"):
            return _iso_date(raw)
        try:
            return datetime.strptime(raw, fmt).date()  # noqa: DTZ007 - a calendar date has no zone
        except ValueError as exc:
            raise ValueProblem(f"{raw!r} does not match {fmt!r}") from exc

    return parse


def check_format(fmt: str) -> str | None:
    """None if `fmt` is usable, else the problem."""
    if fmt in FORMATS or "%" in fmt:
        return None
    return f"unknown date format {fmt!r} (use auto, iso, msjson or a strptime pattern)"


def to_decimal(raw: Any) -> Decimal:
    """Read a raw number exactly. Floats go through their shortest repr, so 12.3 stays 12.3."""
    if isinstance(raw, Decimal):
        return raw
    if isinstance(raw, bool):
        raise ValueProblem(f"expected a number, got {raw!r}")
    if isinstance(raw, int):
        return Decimal(raw)
    if isinstance(raw, float):
        return Decimal(repr(raw))
    if isinstance(raw, str):
        try:
            value = Decimal(raw.strip())
        except InvalidOperation as exc:
            raise ValueProblem(f"not a number: {raw!r}") from exc
        if not value.is_finite():
            raise ValueProblem(f"not a finite number: {raw!r}")
        return value
    raise ValueProblem(f"expected a number, got {raw!r}")
