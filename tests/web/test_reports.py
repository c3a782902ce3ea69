"""The reports page in Chromium: each chart is inline SVG (pygal's, without script) carrying the figures
reconciliation computes for the sandbox firm (computed again here, independently of the page's code), written
as the firm's locale writes them (en_GB, GBP); its table shows the same figures, each table downloads as CSV,
and the page passes axe and fits a 390 px screen."""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest
from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]

from connector.firmprofile import load_profile, save_profile
from connector.model import PaymentStatus
from connector.reconcile import Snapshot, aging, allocate, behaviours, cei, dso, forecast, load_snapshot
from connector.reconcile.fx import Rates
from tests.web.conftest import OTHER, TENANT, Site
from tests.web.test_pages import shoot

TODAY = date(2026, 3, 10)  # the server's clock: 03:00 UTC on the firm's day in London
URL = f"/t/{TENANT}/reports"


@pytest.fixture(scope="module")
def snapshot(site: Site) -> Snapshot:
    return load_snapshot(site.store, TENANT)


def month_ends() -> list[tuple[date, date]]:
    """The 12 calendar months before March 2026, written out: March 2025 .. February 2026."""
    found = []
    for n in range(12):
        year, month = (2025, 3 + n) if n < 10 else (2026, n - 9)
        start = date(year, month, 1)
        nxt = date(year + (month == 12), month % 12 + 1, 1)
        found.append((start, nxt - timedelta(days=1)))
    return found


def cells(page: object, table: str, column: int) -> list[str]:
    rows = page.locator(f"#{table} tbody tr")  # type: ignore[attr-defined]
    return [rows.nth(n).locator("th, td").nth(column).inner_text().strip() for n in range(rows.count())]


# Each drawn value of a pygal chart: its label, the figure pygal writes as its value, and its hover title.
POINTS = """svg => [...svg.querySelectorAll("g.bar, g.dots")].map(g => [
    g.querySelector("desc.x_label").textContent, g.querySelector("desc.value").textContent,
    g.querySelector("title").textContent])"""


def points(page: object, chart: str) -> dict[str, list[tuple[str, str]]]:
    """Per series, the (label, figure) pairs the chart draws, in drawing order, as each point's hover title
    ("label, series: figure") says them; the figure must be pygal's value text, the label begin as pygal's
    (which may be cut short, ending in "…")."""
    found: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for short, value, title in page.locator(f"svg#{chart}").evaluate(POINTS):  # type: ignore[attr-defined]
        assert f": {value}" in title, title
        label, series = title[: title.index(f": {value}")].rsplit(", ", 1)
        assert label.startswith(short.removesuffix("…")), (short, title)
        found[series].append((label, value))
    return dict(found)


def gbp(amount: Decimal) -> str:
    """An amount as en_GB writes pounds."""
    return f"-£{-amount:,.2f}" if amount < 0 else f"£{amount:,.2f}"


def test_the_aging_chart_stacks_each_top_customers_buckets_and_the_table_and_csv_agree(site, snapshot):
    day = TODAY
    rates = Rates.from_snapshot(snapshot)
    report = aging(snapshot, allocate(snapshot, day), rates, day)
    ranked = sorted(report.rows, key=lambda r: (-r.total, r.name))
    biggest, rest = ranked[:10], ranked[10:]
    assert biggest and report.total.total > 0, "the sandbox firm should owe money"

    page = site.signed_in("ann")
    page.goto(site.url + URL)
    svg = page.locator("svg#chart-aging")
    assert svg.get_attribute("role") == "img"
    assert svg.locator("title").first.text_content().startswith("Aged receivables by customer, GBP")
    drawn = points(page, "chart-aging")
    assert list(drawn) == list(report.labels)  # one series per bucket, in the report's order
    for n, bucket in enumerate(report.labels):  # each bar segment is one bucket of one customer, exactly
        want = [(row.name, gbp(row.buckets[n])) for row in biggest]
        if rest:
            want.append(
                (f"{len(rest):,} other customers", gbp(sum((r.buckets[n] for r in rest), Decimal(0))))
            )
        assert drawn[bucket] == want[::-1], bucket  # pygal draws from the bottom: the biggest is on top
    assert cells(page, "table-aging", 0)[: len(biggest)] == [r.name for r in biggest]
    total_row = page.locator("#table-aging tfoot tr").inner_text()
    assert f"{report.total.total:,.2f}" in total_row

    answer = page.request.get(site.url + URL + "?format=csv&table=aging")
    assert answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(answer.text())))
    assert rows[0] == ["customer", *(f"{label} (GBP)" for label in report.labels), "total (GBP)"]
    assert len(rows) == len(report.rows) + 2  # every customer, then the total
    assert [Decimal(v) for v in rows[-1][1:]] == [*report.total.buckets, report.total.total]
    page.context.close()


def test_dso_and_cei_are_drawn_per_month_end_for_the_last_twelve_months(site, snapshot):
    rates = Rates.from_snapshot(snapshot)
    periods = month_ends()
    want_dso = [dso(snapshot, rates, end) for _, end in periods]
    want_cei = [cei(snapshot, rates, start, end) for start, end in periods]
    assert any(d > 0 for d in want_dso)

    page = site.signed_in("ann")
    page.goto(site.url + URL)
    labels = [f"{end:%b %Y}" for _, end in periods]
    assert labels[0] == "Mar 2025" and labels[-1] == "Feb 2026"
    assert points(page, "chart-dso") == {
        "DSO (days)": [(m, f"{d:,.1f}") for m, d in zip(labels, want_dso, strict=True)]
    }
    assert points(page, "chart-cei") == {
        "CEI (%)": [
            (m, f"{c:,.1f}") for m, c in zip(labels, want_cei, strict=True) if c is not None
        ]  # a gap: nothing due
    }
    assert cells(page, "table-months", 1) == [str(d) for d in want_dso]

    rows = list(
        csv.DictReader(io.StringIO(page.request.get(site.url + URL + "?format=csv&table=months").text()))
    )
    assert [r["to"] for r in rows] == [end.isoformat() for _, end in periods]
    assert [r["CEI (%)"] for r in rows] == ["" if c is None else str(c) for c in want_cei]
    page.context.close()


def test_the_forecast_has_its_band_and_collected_weeks_sum_the_payments_applied(site, snapshot):
    rates = Rates.from_snapshot(snapshot)
    ledger = allocate(snapshot, TODAY)
    plan = forecast(ledger, rates, behaviours(snapshot, ledger, rates, TODAY), TODAY)
    since = TODAY - timedelta(days=91)
    then = allocate(snapshot, since)
    past = forecast(then, rates, behaviours(snapshot, then, rates, since), since)  # made 13 weeks ago
    collected = [Decimal(0)] * 13
    for p in snapshot.payments:  # money in: live payments' allocations, by the week they are dated in
        if p.status is not PaymentStatus.LIVE:
            continue
        for a in p.allocations:
            when = a.date or p.date
            if since <= when < TODAY:
                collected[(when - since).days // 7] += rates.to_base(a.amount.amount, a.amount.currency,
                                                                     p.currency_rate) or 0  # fmt: skip
    assert sum(collected) > 0, "the sandbox firm should have been paid in the last 13 weeks"

    page = site.signed_in("ann")
    page.goto(site.url + URL)
    weeks = [f"{w.start:%d %b}" for w in plan.weeks]
    assert points(page, "chart-forecast") == {
        "expected": [(d, gbp(w.expected)) for d, w in zip(weeks, plan.weeks, strict=True)]
    }
    assert page.locator("#chart-forecast g.dots title").all_text_contents() == [
        f"{d}, expected: {gbp(w.expected)} (90% band {gbp(w.low)} to {gbp(w.high)})"
        for d, w in zip(weeks, plan.weeks, strict=True)
    ]
    assert page.locator("#chart-forecast g.legends text").all_text_contents() == ["90% band", "expected"]
    filled = page.locator("#chart-forecast .series path.line:not(.nofill)")
    assert filled.count() == 2  # the band: high filled, then low filled over it
    assert cells(page, "table-forecast", 2) == [f"{w.expected:,.2f}" for w in plan.weeks]
    days = [f"{since + timedelta(days=7 * n):%d %b}" for n in range(13)]
    assert points(page, "chart-collected") == {
        "forecast": [(d, gbp(w.expected)) for d, w in zip(days, past.weeks, strict=True)],
        "collected": [(d, gbp(c)) for d, c in zip(days, collected, strict=True)],
    }
    assert page.locator("#chart-collected g.ci").count() == 13  # a whisker over each week's 90% band
    assert f"(90% band {gbp(past.weeks[0].low)} to {gbp(past.weeks[0].high)})" in (
        page.locator("#chart-collected g.bar title").first.text_content()
    )

    text = page.request.get(site.url + URL + "?format=csv&table=collected").text()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [Decimal(r["collected (GBP)"]) for r in rows] == collected
    assert rows[0]["from"] == since.isoformat()
    assert page.request.get(site.url + URL + "?format=csv&table=nonsense").status == 400
    page.context.close()


def test_the_reports_page_meets_accessibility_basics_and_fits_a_phone(site):
    page = site.signed_in("ann")
    page.goto(site.url + URL)
    violations = Axe().run(page).response["violations"]
    bad = [
        (v["id"], v["impact"], len(v["nodes"])) for v in violations if v["impact"] in ("serious", "critical")
    ]
    assert bad == []
    served = page.request.get(site.url + URL)
    assert "script-src" not in served.headers["content-security-policy"]
    assert page.locator("script").count() == 0
    html = served.text()
    assert "<script" not in html and "<?xml" not in html
    charts = re.findall(r"<svg.*?</svg>", html, re.S)
    assert len(charts) == 5
    for svg in charts:  # the SVG namespace is the only URL a chart names
        assert re.findall(r"(?:https?:)?//[\w.-]+[^\s\"'<)]*", svg) == ["http://www.w3.org/2000/svg"], svg[
            :200
        ]
    for chart in ("aging", "dso", "cei", "forecast", "collected"):
        svg = page.locator(f"svg#chart-{chart}")
        assert svg.get_attribute("role") == "img"
        assert svg.get_attribute("aria-labelledby") == f"chart-{chart}-t chart-{chart}-d"
        assert page.locator(f"#chart-{chart}-d").text_content().endswith("The table below gives the figures.")
    shoot(page, "reports")
    assert page.goto(f"{site.url}/t/{OTHER}/reports").status == 404  # not granted to ann
    page.context.close()


def test_a_firm_with_no_records_gets_empty_charts_and_tables_not_an_error():
    from connector.model import Tenant
    from connector.web.reports import csv_table, draw
    from connector.web.reports_views import compute

    empty = compute(Snapshot(Tenant("empty", "Empty Ltd", "xero")), TODAY)
    drawn = draw(empty)
    assert set(drawn) == {"aging", "dso", "cei", "forecast", "collected"}
    assert all(str(svg).startswith("<svg") and 'role="img"' in str(svg) for svg in drawn.values())
    assert [m.dso for m in empty.months] == [Decimal("0.0")] * 12
    assert all(m.cei is None for m in empty.months)
    header, rows = csv_table(empty, "aging")
    assert header[0] == "customer" and header[-1] == "total (GBP)"
    assert rows == [("total", *([Decimal(0)] * 5), Decimal(0))]


def test_a_firm_writing_german_sees_every_amount_as_german_writes_it(site):
    """The profile's locale reaches the pages and the figures kept for them: the headline amount, the
    tables' numbers, the holds' reasons; the CSV stays exact. Set back afterwards (the site is shared)."""
    with site.store.read() as conn:
        before = load_profile(conn, TENANT)
    with site.store.begin() as conn:
        save_profile(conn, TENANT, replace(before, locale="de_DE"))
    try:
        page = site.signed_in("ann")
        page.goto(site.url + URL)
        headline = page.locator("main p").first.inner_text()
        assert re.search(r"\d,\d\d\u00a0£", headline) and not re.search(r"£\d", headline), headline
        cells = page.locator("table").first.locator("td.num").all_inner_texts()
        assert cells and all(re.fullmatch(r"-?\d{1,3}(\.\d{3})*,\d\d", c) for c in cells), cells
        served = page.request.get(f"{site.url}{URL}?format=csv&table=aging").text()
        assert re.search(r",\d+\.\d+(\r?\n|,)", served) and "\u00a0" not in served  # exact, not worded
        page.goto(f"{site.url}/t/{TENANT}/customers")
        listed = page.locator("tbody").inner_text()
        assert re.search(r"\d,\d\d\u00a0£", listed) and not re.search(r"£\d", listed), listed[:300]
        page.context.close()
    finally:
        with site.store.begin() as conn:
            save_profile(conn, TENANT, before)
    page = site.signed_in("ann")
    page.goto(site.url + URL)
    assert re.search(r"£\d", page.locator("main p").first.inner_text())  # en_GB again, not kept in German
    page.context.close()
