"""`/t/{tenant}/reports`: aging, DSO and CEI by month, the 13-week cash forecast, collected against forecast.

```
GET /t/{tenant}/reports                          the four charts (inline SVG), each with its table beneath
GET /t/{tenant}/reports?format=csv&table=NAME    one table as CSV: aging (every customer), months, forecast,
                                                 collected
```
Guarantees: the figures are `reports_views.compute`'s (reconciliation's own functions), in the firm's base
currency, as of today where the firm is (by the server's clock). Computing them reads every record of the
firm, so the figures and the charts drawn from them are kept per firm until its records change or the
firm's date turns (connector/web/snapshots.py: one computation per firm at a time, the others wait for its
result; warmed after the firm's night).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from urllib.parse import quote
from zoneinfo import ZoneInfo

from markupsafe import Markup
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from connector.model import Tenant
from connector.reconcile import AgingRow
from connector.store import Store
from connector.web import charts, reports_views, snapshots
from connector.web.charts import Series
from connector.web.pages import Pages, RequestRefused, Visit, csv_response
from connector.web.reports_views import Reports
from connector.web.users import User
from connector.words import context
from connector.words import locale as words

TABLES = ("aging", "months", "forecast", "collected")


@dataclass(frozen=True, slots=True)
class _Kept:
    """A firm's figures with what the page draws of them (drawn once per computation, not per request)."""

    reports: Reports
    charts: dict[str, Markup]
    top: tuple[tuple[AgingRow, ...], AgingRow | None]


def reports_for(store: Store, tenant: Tenant, as_of: date) -> _Kept:
    """The firm's figures as of `as_of` and their charts, computed again only when its records change."""
    key, figures = reports_views.figures(store, tenant, as_of)
    locale = firm_locale(store, tenant)
    return snapshots.of(store).once(
        tenant.id, "reports.drawn", (key, locale),
        lambda: _Kept(figures, draw(figures, locale), figures.top()),
    )  # fmt: skip


def firm_locale(store: Store, tenant: Tenant) -> str:
    """The locale the firm's mail is written in (connector/words); its country's when that one is unknown."""
    with store.read() as conn:
        return context.reading_locale(conn, tenant)


class ReportsPage:
    """The reports page of one server (its figures kept in the server's per-firm cache)."""

    def __init__(self, pages: Pages) -> None:
        self.pages = pages

    def today(self, tenant: Tenant) -> date:
        return self.pages.rt.clock.now().astimezone(ZoneInfo(tenant.timezone)).date()

    def reports(self, tenant: Tenant) -> _Kept:
        """The firm's figures as of today, computed again only when its records have changed."""
        return reports_for(self.pages.rt.store, tenant, self.today(tenant))

    async def get(self, request: Request, visit: Visit, user: User) -> Response:
        tenant = await run_in_threadpool(self.pages.tenant_for, user, request.path_params["tenant"])
        kept = await run_in_threadpool(self.reports, tenant)
        figures = kept.reports
        if request.query_params.get("format") == "csv":
            table = request.query_params.get("table", "")
            if table not in TABLES:
                raise RequestRefused(400, f"table={table or '(none)'}: choose one of {', '.join(TABLES)}")
            header, rows = csv_table(figures, table)
            return csv_response(f"{tenant.id}-{table}", header, rows)
        return self.pages.render(
            request, visit, "reports.html", title=f"{tenant.name}: reports", tenant=tenant, r=figures,
            charts=kept.charts, top=kept.top, quote=quote,
        )  # fmt: skip

    def routes(self) -> list[Route]:
        return [Route("/t/{tenant}/reports", self.pages.page(self.get), methods=["GET"])]


def csv_table(r: Reports, table: str) -> tuple[Sequence[str], list[Sequence[object]]]:
    """One of the page's tables (aging: every customer, not only those drawn), amounts exact."""
    cur = r.currency
    if table == "aging":
        rows: list[Sequence[object]] = [
            (row.name, *row.buckets, row.total) for row in (*r.aging.rows, r.aging.total)
        ]
        return ("customer", *(f"{label} ({cur})" for label in r.aging.labels), f"total ({cur})"), rows
    if table == "months":
        rows = [(m.label, m.start, m.end, m.dso, "" if m.cei is None else m.cei) for m in r.months]
        return ("month", "from", "to", "DSO (days)", "CEI (%)"), rows
    if table == "forecast":
        rows = [(n + 1, w.start, w.end, w.low, w.expected, w.high) for n, w in enumerate(r.forecast.weeks)]
        rows.append(("later", "", "", "", r.forecast.later, ""))
        return ("week", "from", "to", f"low ({cur})", f"expected ({cur})", f"high ({cur})"), rows
    rows = [(c.start, c.end, c.low, c.expected, c.high, c.collected) for c in r.collected]
    return ("from", "to", f"forecast low ({cur})", f"forecast expected ({cur})", f"forecast high ({cur})",
            f"collected ({cur})"), rows  # fmt: skip


def draw(r: Reports, locale: str = words.DEFAULT) -> dict[str, Markup]:
    """The page's four charts (DSO and CEI drawn apart), amounts as the firm's `locale` writes them."""
    cur = r.currency
    amounts, days = charts.money(cur, locale), charts.number(locale)
    shown, rest = r.top()
    bars = [*shown, *([rest] if rest else [])]
    per_bucket = [
        Series(label, tuple(row.buckets[n] for row in bars)) for n, label in enumerate(r.aging.labels)
    ]
    weeks = [f"{w.start:%d %b}" for w in r.forecast.weeks]
    past = [f"{c.start:%d %b}" for c in r.collected]
    return {
        "aging": charts.stacked_bars(
            "chart-aging", f"Aged receivables by customer, {cur}, as of {r.as_of:%d %b %Y}",
            "Stacked bars: for each of the customers owing most, what they owe by days past due. "
            "The table below gives the figures.",
            [row.name for row in bars], per_bucket, amounts,
        ),
        "dso": charts.lines(
            "chart-dso", "DSO at each month-end, days",
            "Line: days sales outstanding (count-back) at the end of each of the last 12 months. "
            "The table below gives the figures.",
            [m.label for m in r.months], [Series("DSO (days)", tuple(m.dso for m in r.months))], days,
        ),
        "cei": charts.lines(
            "chart-cei", "CEI per month, percent",
            "Line: the collection effectiveness index of each of the last 12 months. "
            "The table below gives the figures.",
            [m.label for m in r.months], [Series("CEI (%)", tuple(m.cei for m in r.months))], days,
        ),
        "forecast": charts.lines(
            "chart-forecast", f"Cash forecast, next 13 weeks, {cur}",
            "Line: expected collections per week, in a shaded 90 percent band from low to high. "
            "The table below gives the figures.",
            weeks, [Series("expected", tuple(w.expected for w in r.forecast.weeks))], amounts,
            band=(Series("low", tuple(w.low for w in r.forecast.weeks)),
                  Series("high", tuple(w.high for w in r.forecast.weeks))),
        ),
        "collected": charts.bars_with_band(
            "chart-collected", f"Collected per week against the forecast, {cur}",
            f"Bars: for each of the last 13 weeks, what the forecast made on {r.hindcast_from:%d %b %Y} "
            "expected, with a whisker over its 90 percent band, beside the money collected. "
            "The table below gives the figures.",
            past, Series("forecast", tuple(c.expected for c in r.collected)),
            (Series("low", tuple(c.low for c in r.collected)),
             Series("high", tuple(c.high for c in r.collected))),
            Series("collected", tuple(c.collected for c in r.collected)), amounts,
        ),
    }  # fmt: skip
