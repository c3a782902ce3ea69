"""The Jinja2 filters every template (shipped or a firm's own) may use, writing in the view's `locale`.

`{{ line.outstanding | money(line.currency) }}` -> "£1,317.00"; `{{ line.due_date | date }}` -> "20 July 2025"
(`date("MMMM y")` -> "July 2025"); `{{ written_about | and_list }}` -> "INV-1, INV-2 and INV-3". A view
without a locale (a notice to the firm) writes en_GB. A bad value is the template's problem (TemplateProblem),
never a crash.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date as Date  # noqa: N812 - the filter is called `date`
from decimal import Decimal
from typing import Any

from jinja2 import pass_context
from jinja2.runtime import Context

from connector.words import locale as words


def _locale(ctx: Context) -> str:
    found = ctx.get("locale")
    return str(found) if found else words.DEFAULT


@pass_context
def money(ctx: Context, amount: Decimal | int | str, currency: str) -> str:
    """An amount in the currency's decimals, as the firm's locale writes it."""
    return words.money(Decimal(str(amount)), str(currency), _locale(ctx))


@pass_context
def date(ctx: Context, day: Date, form: str = "long") -> str:
    """A date in long form ("20 July 2025"), or `form` (short, medium, full, a CLDR pattern)."""
    return words.long_date(day, _locale(ctx), form)


@pass_context
def and_list(ctx: Context, items: Iterable[object]) -> str:
    """Items joined as the locale lists them: "INV-1, INV-2 and INV-3"."""
    return words.and_list(items, _locale(ctx))


FILTERS: dict[str, Callable[..., Any]] = {"money": money, "date": date, "and_list": and_list}
DOCS: dict[str, str] = {
    "money": "`{{ amount | money(currency) }}`: an amount in the firm's locale, in the currency's decimals "
    '("£1,317.00", "JP¥1,317", "BHD1,317.000")',
    "date": '`{{ day | date }}`: a date in long form ("20 July 2025"); `date("MMMM y")` for "July 2025"',
    "and_list": '`{{ numbers | and_list }}`: "INV-1, INV-2 and INV-3" in the firm\'s locale',
}
