"""A firm's locale, and money, dates and lists written in it (babel).

Guarantees:
- `firm_locale` answers for a valid setting: the firm's own locale when set, else the one babel's likely
  subtags give the tenant's country (GB -> en_GB, US -> en_US, IE -> en_IE, DE -> de_DE, FR -> fr_FR ...).
- An unknown locale is a one-line `LocaleProblem` naming where it was set and the value.
- `money` uses the currency's own number of decimals (GBP 2, JPY 0, BHD/KWD/JOD 3) and the locale's symbol
  and grouping: "£1,317.00", "JP¥1,317", "BHD1,317.000", "1.317,00 €".
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from functools import lru_cache

from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from babel.lists import format_list
from babel.numbers import format_currency

from connector.errors import NeedsPerson

DEFAULT = "en_GB"


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


def money(amount: Decimal, currency: str, locale: str = DEFAULT) -> str:
    """An amount with its currency, as the locale writes it, in the currency's own decimals."""
    return str(format_currency(amount, currency, locale=parse(locale)))


def long_date(day: date, locale: str = DEFAULT, form: str = "long") -> str:
    """A date as the locale writes it: "20 July 2025" (en_GB), "July 20, 2025" (en_US). `form`: short,
    medium, long, full, or a CLDR pattern such as "MMMM y"."""
    return str(format_date(day, form, locale=parse(locale)))


def and_list(items: Iterable[object], locale: str = DEFAULT) -> str:
    """ "INV-1, INV-2 and INV-3" in the locale's words."""
    shown = [str(item) for item in items]
    return str(format_list(shown, locale=parse(locale))) if shown else ""
