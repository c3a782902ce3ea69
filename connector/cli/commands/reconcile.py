"""`ccm discrepancies` and `ccm forecast`, and what every reconciliation command shares.

Shared: picking the tenant (optional when the store holds exactly one), reading `--as-of`, loading the
snapshot, and printing rows as a Rich table, CSV or JSON (amounts exact, as strings, in JSON).
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from connector.cli.app import UsageProblem, app, out, state
from connector.cli.options import TenantOpt, pick_tenant
from connector.model import Tenant
from connector.reconcile import Snapshot, allocate, behaviours, find_discrepancies, forecast, load_snapshot
from connector.reconcile.fx import Rates

Cell = str | int | Decimal | date | None
_CENT = Decimal("0.01")


class Format(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSON = "json"


AsOfOpt = Annotated[
    str | None, typer.Option("--as-of", help="Date YYYY-MM-DD (default: today, tenant time).")
]
FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="table, csv or json.")]


def parse_date(option: str, value: str) -> date:
    """A YYYY-MM-DD option value, or a one-line usage error naming the option."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageProblem(f"{option}: not a date (expected YYYY-MM-DD): {value!r}") from None


def as_of_date(value: str | None, tenant: Tenant) -> date:
    """`--as-of` parsed, or today in the tenant's time zone."""
    if value is None:
        return datetime.now(ZoneInfo(tenant.timezone)).date()
    return parse_date("--as-of", value)


def load(ctx: typer.Context, tenant_id: str | None, as_of: str | None) -> tuple[Snapshot, date]:
    """The chosen tenant's snapshot and the report date (unknown tenants raise UnknownTenant: exit 2)."""
    store = state(ctx).store
    snapshot = load_snapshot(store, pick_tenant(store, tenant_id))
    return snapshot, as_of_date(as_of, snapshot.tenant)


def cents(value: Decimal) -> Decimal:
    """An amount rounded to cents for output (computation stays exact)."""
    return value.quantize(_CENT)


def _plain(value: Cell) -> str | int | None:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def _shown(value: Cell) -> str:
    if isinstance(value, Decimal):
        return f"{value:,}"
    return "" if value is None else str(value)


def emit(
    fmt: Format, title: str, columns: Sequence[str], rows: Sequence[Sequence[Cell]],
    meta: dict[str, Cell] | None = None, caption: str | None = None, footer: int = 0,
) -> None:  # fmt: skip
    """Print `rows` under `columns` as a Rich table (the last `footer` rows set apart), CSV, or JSON.

    JSON is one object: `meta`'s keys, then "rows" (a list of objects keyed by column); amounts are exact
    decimal strings there and in CSV, so spreadsheets get exactly what ccm computed.
    """
    if fmt is Format.JSON:
        body: dict[str, Any] = {k: _plain(v) for k, v in (meta or {}).items()}
        body["rows"] = [dict(zip(columns, (_plain(c) for c in row), strict=True)) for row in rows]
        sys.stdout.write(json.dumps(body, ensure_ascii=False, indent=2) + "\n")
        return
    if fmt is Format.CSV:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[_plain(c) for c in row] for row in rows])
        return
    table = Table(title=title, caption=caption)
    for n, name in enumerate(columns):
        numeric = any(isinstance(row[n], Decimal | int) for row in rows)
        table.add_column(name, justify="right" if numeric else "left")
    for n, row in enumerate(rows):
        if footer and n == len(rows) - footer:
            table.add_section()
        table.add_row(*(_shown(c) for c in row))
    out.print(table)


@app.command()
def discrepancies(ctx: typer.Context, tenant: TenantOpt = None, fmt: FormatOpt = Format.TABLE) -> None:
    """Where the ledger's records disagree with each other, each explained, as the ledger stands now."""
    snapshot, _ = load(ctx, tenant, None)
    found = find_discrepancies(snapshot, allocate(snapshot), Rates.from_snapshot(snapshot))
    rows = [
        (d.kind.value, snapshot.customer_name(d.customer_id) if d.customer_id else "", " ".join(d.records),
         "; ".join(f"{label} {m}" for label, m in d.amounts), d.explanation)
        for d in found
    ]  # fmt: skip
    if fmt is Format.TABLE and not rows:
        out.print(f"no discrepancies for {snapshot.tenant.id}")
        return
    emit(
        fmt, f"{len(rows)} discrepancies · {snapshot.tenant.name}",
        ("kind", "customer", "records", "amounts", "explanation"), rows,
        meta={"tenant": snapshot.tenant.id, "count": len(rows)},
    )  # fmt: skip


@app.command("forecast")
def forecast_(
    ctx: typer.Context, tenant: TenantOpt = None, as_of: AsOfOpt = None, fmt: FormatOpt = Format.TABLE
) -> None:
    """Expected collections per week for the next 13 weeks, with a low/expected/high band."""
    snapshot, day = load(ctx, tenant, as_of)
    rates = Rates.from_snapshot(snapshot)
    ledger = allocate(snapshot, day)
    plan = forecast(ledger, rates, behaviours(snapshot, ledger, rates, day), day)
    rows: list[tuple[Cell, ...]] = [
        (n + 1, w.start, w.end, w.low, w.expected, w.high) for n, w in enumerate(plan.weeks)
    ]
    rows.append(("later", None, None, None, plan.later, None))
    rows.append(("total", None, None, None, plan.open_total, None))
    emit(
        fmt, f"cash forecast · {snapshot.tenant.name} · as of {day} · {plan.currency}",
        ("week", "from", "to", "low", "expected", "high"), rows,
        meta={"tenant": snapshot.tenant.id, "as_of": day, "currency": plan.currency,
              "placed_by_tenant_prior": plan.on_prior},
        caption=f"{plan.on_prior} open invoice(s) placed by the tenant-wide history (customer has < 5 paid)",
        footer=2,
    )  # fmt: skip
