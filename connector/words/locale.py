"""A firm's locale, and money, dates and lists written in it (babel).

Guarantees:
- `firm_locale` answers for a valid setting: the firm's own locale when set, else the one babel's likely
  subtags give the tenant's country (GB -> en_GB, US -> en_US, IE -> en_IE, DE -> de_DE, FR -> fr_FR ...).
- An unknown locale is a one-line `LocaleProblem` naming where it was set and the value.
- `money` uses the currency's own number of decimals (GBP 2, JPY 0, BHD/KWD/JOD 3) and the locale's symbol
  and grouping: "£1,317.00", "JP¥1,317", "BHD1,317.000", "1.317,00 €".
- Amounts written without a locale given (a decision's reason, `str(Money)`) are in the locale of the firm
  whose work is in hand: `writing_in(locale)` around a firm's night, page or command sets it for the block
  (a context variable: per thread and per request), and en_GB is used outside any.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date
from decimal import Decimal
from functools import lru_cache

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.lists import format_list
from babel.numbers import format_currency, format_decimal

from connector.errors import NeedsPerson

DEFAULT = "en_GB"
_WRITING_IN: ContextVar[str | None] = ContextVar("ccm_writing_in", default=None)


class LocaleProblem(NeedsPerson, ValueError):
    """A locale ccm cannot write in; the message is one line naming where it was set."""


@lru_cache(maxsize=128)
def parse(text: str, where: str = "locale") -> Locale:
    """A babel Locale from "en_GB", "en-GB" or "de"; LocaleProblem naming `where` otherwise."""
    cleaned = text.strip().replace("-", "_")
    try:
        return Locale.parse(cleaned)
    except (UnknownLocaleError, ValueError, TypeError):
        raise LocaleProblem(f"{where}: unknown locale {text!r} (like en_GB, en_US, de_DE or fr_FR)") from None


def for_country(country: str) -> Locale:
    """The locale a firm in `country` (ISO 3166 alpha-2) writes in, by babel's likely subtags."""
    return parse(f"und_{country.strip().upper()}", f"country {country!r}")


def firm_locale(country: str, chosen: str | None = None, where: str = "--locale") -> str:
    """The firm's locale as text ("en_GB"): `chosen` when set, else the country's."""
    found = parse(chosen, where) if chosen else for_country(country)
    return str(found)


@contextmanager
def writing_in(locale: str) -> Iterator[str]:
    """Amounts written inside the block without a locale given are in `locale` (LocaleProblem if unknown)."""
    shown = str(parse(locale))
    token = _WRITING_IN.set(shown)
    try:
        yield shown
    finally:
        _WRITING_IN.reset(token)


def use(locale: str) -> str:
    """`writing_in` for the rest of this context: for a process that serves one firm (a `ccm` command)."""
    shown = str(parse(locale))
    _WRITING_IN.set(shown)
    return shown


def current() -> str:
    """The locale amounts are written in here: the innermost `writing_in`'s, else en_GB."""
    return _WRITING_IN.get() or DEFAULT


def money(amount: Decimal, currency: str, locale: str | None = None) -> str:
    """An amount with its currency, as the locale (default: `current()`) writes it, in the currency's own
    decimals: "£1,317.00", "1.317,00 €"."""
    return str(format_currency(amount, currency, locale=parse(locale or current())))


def number(amount: Decimal, locale: str | None = None) -> str:
    """An amount without its currency (a table whose caption names it), two decimals, the locale's grouping:
    "1,317.00" (en_GB), "1.317,00" (de_DE)."""
    return str(format_decimal(amount, "#,##0.00", locale=parse(locale or current())))


def grouped(value: Decimal, locale: str | None = None) -> str:
    """A number with every digit it has, in the locale's grouping and decimal sign: "1,234.50" (en_GB),
    "1.234,50" (de_DE), "12" (a count)."""
    exponent = value.as_tuple().exponent
    places = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    pattern = "#,##0." + "0" * places if places else "#,##0"
    return str(format_decimal(value, pattern, locale=parse(locale or current()), decimal_quantization=False))


def long_date(day: date, locale: str = DEFAULT, form: str = "long") -> str:
    """A date as the locale writes it: "20 July 2025" (en_GB), "July 20, 2025" (en_US). `form`: short,
    medium, long, full, or a CLDR pattern such as "MMMM y"."""
    return str(format_date(day, form, locale=parse(locale)))


def and_list(items: Iterable[object], locale: str = DEFAULT) -> str:
    """ "INV-1, INV-2 and INV-3" in the locale's words."""
    shown = [str(item) for item in items]
    return str(format_list(shown, locale=parse(locale))) if shown else ""
