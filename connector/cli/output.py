"""Every list and report of the command line as a Rich table, CSV or JSON, through one writer.

`--format` (`-f`) is one option type (`FormatOpt`) shared by every command that lists things. What each
format guarantees:

- table: for people; names before ids, amounts grouped as the firm's locale writes them (1,234.50 or
  1.234,50), instants in UTC (local times with their zone).
- csv: a header row (the row keys below), then one line per row. Amounts are exact decimal strings, dates
  ISO 8601. A text cell a spreadsheet would read as a formula (starting with `=`, `+`, `-`, `@`, a tab or a
  carriage return) is prefixed with `'`; numbers and amounts never are.
- json: one object, stable and documented (docs/cli-json.md; one JSON Schema per kind in schemas/):
  `{"kind": KIND, "version": 1, ...the report's own fields..., "rows": [{key: value, ...}, ...]}`.
  Amounts are exact decimal strings, dates `YYYY-MM-DD`, instants ISO 8601 with their offset (UTC), absent
  values `null`. `version` changes only when a field is removed or changes meaning; fields may be added.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from connector.cli.app import out
from connector.words.locale import grouped

VERSION = 1
Cell = str | int | bool | Decimal | date | datetime | None
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_CENT = Decimal("0.01")


class Format(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


FormatOpt = Annotated[
    Format, typer.Option("--format", "-f", help="table, csv or json (JSON: see docs/cli-json.md).")
]


def plain(value: Any) -> Any:
    """A value as JSON holds it: amounts as exact strings, dates and instants ISO 8601, nesting kept."""
    if isinstance(value, Decimal | StrEnum):
        return str(value)
    if isinstance(value, date):  # and datetime: an instant keeps its offset
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def amount(value: Decimal) -> Decimal:
    """An amount to the cent when that loses nothing (1000.0000 -> 1000.00), else with every digit kept."""
    cents = value.quantize(_CENT)
    return cents if cents == value else value


def _number_like(text: str) -> bool:
    try:
        Decimal(text)
    except ArithmeticError:
        return False
    return True


def csv_cell(value: Cell) -> str:
    """A cell as CSV holds it: exact, and never a formula a spreadsheet would run."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        if value.startswith(_FORMULA_START) and not _number_like(value):
            return "'" + value
        return value
    return str(plain(value))


def shown(value: Cell) -> str:
    """A cell as the table shows it to a person."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal):  # grouped as the firm in hand writes numbers (connector/words)
        return grouped(value)
    if isinstance(value, datetime):  # an instant in UTC as the column says; a local one with its zone
        local = value.tzinfo is not None and value.utcoffset() != UTC.utcoffset(None)
        return f"{value:%Y-%m-%d %H:%M %Z}" if local else f"{value:%Y-%m-%d %H:%M}"
    return str(value)


def emit(
    fmt: Format,
    kind: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    *,
    title: str | None = None,
    meta: Mapping[str, Any] | None = None,
    caption: str | None = None,
    footer: int = 0,
    labels: Mapping[str, str] | None = None,
    empty: str | None = None,
) -> None:
    """Print `rows` (one cell per column key) in the chosen format.

    `labels`: the table's columns (keys in order, with their headers) when they differ from `columns`, e.g.
    the name first and the id left out; CSV and JSON always hold every column, keyed by `columns`.
    `footer`: the last rows (totals) set apart in the table. `empty`: the table's one line when there are
    no rows (CSV still prints its header, JSON an empty "rows").
    """
    if fmt is Format.JSON:
        body: dict[str, Any] = {"kind": kind, "version": VERSION}
        body.update({k: plain(v) for k, v in (meta or {}).items()})
        body["rows"] = [dict(zip(columns, (plain(c) for c in row), strict=True)) for row in rows]
        sys.stdout.write(json.dumps(body, ensure_ascii=False, indent=2) + "\n")
        return
    if fmt is Format.CSV:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[csv_cell(c) for c in row] for row in rows])
        return
    if not rows and empty is not None:
        out.print(empty, markup=False)
        return
    out.print(table(columns, rows, title=title, caption=caption, footer=footer, labels=labels))


def table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    *,
    title: str | None = None,
    caption: str | None = None,
    footer: int = 0,
    labels: Mapping[str, str] | None = None,
) -> Table:
    """The Rich table of `rows` (amounts and counts right-aligned); `labels` as in `emit`."""
    picked = list(labels.items()) if labels else [(c, c) for c in columns]
    index = {c: n for n, c in enumerate(columns)}
    made = Table(title=title, caption=caption)
    for key, header in picked:
        n = index[key]
        numeric = any(isinstance(row[n], Decimal | int) and not isinstance(row[n], bool) for row in rows)
        made.add_column(header, justify="right" if numeric else "left")
    for r, row in enumerate(rows):
        if footer and r == len(rows) - footer:
            made.add_section()
        made.add_row(*(Text(shown(row[index[key]])) for key, _ in picked))
    return made
