"""The reports page's charts, drawn on the server by pygal as inline SVG: no script, no external file.

Guarantees: every chart is an `<svg role="img">` named by its own `<title>` and described by a `<desc>` that
says the table beneath it holds the figures (the table is the accessible form). pygal's script (its
tooltips) and its comments are left out, so the page's CSP (no script-src) holds and the SVG names no URL
but its namespace. Each drawn value keeps pygal's `<desc class="value">`, its exact figure as the firm's
locale writes it (money in the currency's own decimals, from the `Decimal`: pygal's float is only for
drawing), and a `<title>` ("label, series: figure") a browser shows on hover without script. Axis ticks are
short ("£1.2m" in en_GB). A chart with nothing to draw says "No figures yet". Colours keep at least 3:1
against white; the legend names each series in words.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from xml.etree.ElementTree import Element

import pygal  # type: ignore[import-untyped]
from babel.numbers import format_compact_currency, format_decimal
from markupsafe import Markup
from pygal.style import Style  # type: ignore[import-untyped]

from connector.words import locale as words

WIDTH = 440  # drawing units; the page scales the SVG to its width: 14-unit text is ~11.5 px at 390 px
FONT = 'system-ui, -apple-system, "Segoe UI", sans-serif'  # the page's own
# Light to dark and green to red: each meets 3:1 against white, and the legend names each one in words.
BUCKET_COLOURS = ("#2b7a3d", "#8a7a00", "#c25e00", "#b3261e", "#6e1212", "#3d0a5c")
LINE, BAND, PLOT = "#0b57a4", "#c5d9ef", "#ffffff"
NAME = 20  # characters of a bar's name written beside it (pygal leaves a horizontal chart's names whole)
GEOMETRY = frozenset(("d", "x", "y", "width", "height", "cx", "cy", "r", "transform"))
_TENTHS = re.compile(r"(\d\.\d)\d+")
Fmt = Callable[[Decimal], str]


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    values: tuple[Decimal | None, ...]  # None: no figure for that point (a gap)


@dataclass(frozen=True, slots=True)
class Formats:
    """How one chart writes its figures: `value` exactly (drawn values), `axis` short (ticks, from floats)."""

    value: Fmt
    axis: Callable[[float], str]


def money(currency: str, locale: str) -> Formats:
    """Amounts in `currency` as `locale` writes them: exact for values, compact for ticks."""
    written = words.parse(locale)
    return Formats(
        lambda v: words.money(v, currency, locale),
        lambda v: str(format_compact_currency(v, currency, locale=written, fraction_digits=1)),
    )


def number(locale: str) -> Formats:
    """Days or percentages to one decimal (as DSO and CEI are kept), as `locale` writes them."""
    written = words.parse(locale)
    return Formats(
        lambda v: str(format_decimal(v, "#,##0.0", locale=written)),
        lambda v: str(format_decimal(v, "#,##0.#", locale=written)),
    )


def _points(series: Series, labels: Sequence[str], fmt: Formats, notes: Sequence[str] = ()) -> list[Any]:
    """pygal's values: each a float to draw, its exact figure as pygal's value text, and its hover title."""
    return [None if v is None else _point(v, f"{label}, {series.name}", fmt, notes[n] if notes else "")
            for n, (label, v) in enumerate(zip(labels, series.values, strict=True))]  # fmt: skip


def _point(value: Decimal, name: str, fmt: Formats, note: str) -> dict[str, Any]:
    text = fmt.value(value)
    return {"value": float(value), "formatter": lambda _: text, "tooltip": f"{name}: {text}{note}"}


def _floats(values: Sequence[Decimal | None]) -> list[float | None]:
    return [None if v is None else float(v) for v in values]


def _chart(kind: type[Any], chart_id: str, colours: Sequence[str], fmt: Formats, **config: Any) -> Any:
    style = Style(
        font_family=FONT, background="transparent", plot_background=PLOT, foreground="#1b1f24",
        foreground_strong="#1b1f24", foreground_subtle="#5b6570", colors=tuple(colours),
        opacity="1", opacity_hover="1", stroke_opacity="1", stroke_opacity_hover="1", stroke_width="2.5",
        stroke_width_hover="2.5", transition="0s",
        label_font_size=14, major_label_font_size=14, legend_font_size=14, value_font_size=14,
        guide_stroke_color="#d0d6de", major_guide_stroke_color="#d0d6de", guide_stroke_dasharray="0",
        major_guide_stroke_dasharray="0", no_data_font_size=20,
    )  # fmt: skip
    chart = kind(
        style=style, width=WIDTH, js=[], disable_xml_declaration=True, classes=["chart"], margin=8,
        margin_right=24, spacing=8, legend_at_bottom=True, legend_at_bottom_columns=None, legend_box_size=12,
        truncate_legend=-1, value_formatter=fmt.axis, show_x_guides=False, include_x_axis=True,
        no_data_text="No figures yet",
        **{"truncate_label": -1, "max_scale": 8, **config},
    )  # fmt: skip
    chart.uuid = chart_id.removeprefix("chart-")  # pygal's id is "chart-" + uuid; its CSS is scoped to it
    return chart


def _render(chart: Any, chart_id: str, title: str, desc: str, hidden: int | None = None) -> Markup:
    """The SVG named and described for assistive technology, without pygal's script, tooltip placeholders
    and comments; the `hidden`-th legend entry left out."""

    def accessible(root: Element) -> Element:
        _strip(root)
        root.set("role", "img")
        root.set("aria-labelledby", f"{chart_id}-t {chart_id}-d")
        named = root.find("title")
        assert named is not None  # pygal always writes one
        named.set("id", f"{chart_id}-t")
        named.text = title
        about = Element("desc", id=f"{chart_id}-d")
        about.text = desc
        root.insert(list(root).index(named) + 1, about)
        for legends in root.iterfind(".//g[@class='legends']"):
            for n, entry in enumerate(list(legends)):
                entry.attrib.pop("id", None)  # "activate-serie-N", the same in every chart
                if n == hidden:
                    legends.remove(entry)
        return root

    chart.add_xml_filter(accessible)
    return Markup(chart.render(is_unicode=True))  # noqa: S704 - pygal's XML serialiser escapes all text


def _strip(node: Element) -> None:
    """Leave out scripts, comments, the tooltip placeholder and the tooltips' coordinates; write coordinates
    to a tenth of a unit (pygal writes millionths)."""
    for name in GEOMETRY.intersection(node.attrib):
        node.set(name, _TENTHS.sub(r"\1", node.attrib[name]))
    for child in list(node):
        kind = child.get("class", "").split()
        tooltip = "tooltip-overlay" in kind or (child.tag == "desc" and kind[:1] in (["x"], ["y"]))
        if not isinstance(child.tag, str) or child.tag == "script" or tooltip:
            node.remove(child)
        else:
            _strip(child)


def stacked_bars(
    chart_id: str, title: str, desc: str, categories: Sequence[str], series: Sequence[Series], fmt: Formats
) -> Markup:
    """Horizontal bars, one per category (the first on top), each stacked from `series` (e.g. aging buckets
    per customer); a missing value is drawn as zero."""
    chart = _chart(
        pygal.HorizontalStackedBar, chart_id, BUCKET_COLOURS, fmt, height=130 + 30 * max(len(categories), 1),
        max_scale=5,
    )  # fmt: skip
    shown = list(reversed(categories))  # pygal draws the first category at the bottom
    chart.x_labels = [c if len(c) <= NAME else c[: NAME - 1] + "…" for c in shown]  # the titles say it all
    for s in series:
        drawn = Series(s.name, tuple(v or Decimal(0) for v in reversed(s.values)))
        chart.add(s.name, _points(drawn, shown, fmt))
    return _render(chart, chart_id, title, desc)


def lines(
    chart_id: str, title: str, desc: str, labels: Sequence[str], series: Sequence[Series], fmt: Formats,
    band: tuple[Series, Series] | None = None,
) -> Markup:  # fmt: skip
    """One line per series over `labels`, a gap where a value is missing; optionally a shaded 90% band
    (low, high) under the last series, whose points' titles name it: drawn as high filled, then low filled
    with the plot's own colour, so only the space between them stays shaded."""
    chart = _chart(
        pygal.Line, chart_id, (*((BAND, PLOT) if band else ()), LINE), fmt, height=300,
        allow_interruptions=True, x_labels_major_every=3, show_minor_x_labels=False, dots_size=3.5,
    )  # fmt: skip
    chart.x_labels = list(labels)
    notes: list[str] = []
    if band is not None:
        low, high = band
        chart.add("90% band", _floats(high.values), fill=True, show_dots=False)
        chart.add(low.name, _floats(low.values), fill=True, show_dots=False)
        notes = [_band(lo, hi, fmt) for lo, hi in zip(low.values, high.values, strict=True)]
    for n, s in enumerate(series):
        chart.add(s.name, _points(s, labels, fmt, notes if n == len(series) - 1 else ()))
    return _render(chart, chart_id, title, desc, 1 if band else None)


def bars_with_band(
    chart_id: str, title: str, desc: str, labels: Sequence[str], banded: Series, band: tuple[Series, Series],
    beside: Series, fmt: Formats,
) -> Markup:  # fmt: skip
    """Bars side by side per label: `banded`, with a whisker over its 90% band (low, high), then `beside`."""
    chart = _chart(
        pygal.Bar, chart_id, (BAND, LINE), fmt, height=300, x_labels_major_every=3, show_minor_x_labels=False,
    )  # fmt: skip
    chart.x_labels = list(labels)
    low, high = band
    notes = [_band(lo, hi, fmt) for lo, hi in zip(low.values, high.values, strict=True)]
    points = _points(banded, labels, fmt, notes)
    for point, lo, hi in zip(points, low.values, high.values, strict=True):
        if point is not None and lo is not None and hi is not None:
            point["ci"] = {"low": float(lo), "high": float(hi)}
    chart.add(f"{banded.name} (90% band)", points)
    chart.add(beside.name, _points(beside, labels, fmt))
    return _render(chart, chart_id, title, desc)


def _band(low: Decimal | None, high: Decimal | None, fmt: Formats) -> str:
    return "" if low is None or high is None else f" (90% band {fmt.value(low)} to {fmt.value(high)})"
