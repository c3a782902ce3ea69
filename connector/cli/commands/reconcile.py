"""`ccm discrepancies` and `ccm forecast`, and what every reconciliation command shares.

Shared: picking the tenant (optional when the store holds exactly one), reading `--as-of` and loading the
snapshot. Output goes through connector/cli/output.py (table, CSV or JSON; amounts exact strings in JSON).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from connector.cli.app import UsageProblem, app, state
from connector.cli.options import TenantOpt, pick_tenant
from connector.cli.output import Cell, Format, FormatOpt, emit
from connector.model import Tenant
from connector.reconcile import Snapshot, allocate, behaviours, find_discrepancies, forecast, load_snapshot
from connector.reconcile.fx import Rates

__all__ = ["AsOfOpt", "Cell", "Format", "FormatOpt", "TenantOpt", "as_of_date", "cents", "load", "parse_date"]
_CENT = Decimal("0.01")

AsOfOpt = Annotated[
    str | None, typer.Option("--as-of", help="Date YYYY-MM-DD (default: today, tenant time).")
]


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
    emit(
        fmt, "discrepancies", ("kind", "customer", "records", "amounts", "explanation"), rows,
        title=f"{len(rows)} discrepancies · {snapshot.tenant.name}",
        meta={"tenant": snapshot.tenant.id, "count": len(rows)},
        empty=f"no discrepancies for {snapshot.tenant.id}",
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
        fmt, "forecast", ("week", "from", "to", "low", "expected", "high"), rows,
        title=f"cash forecast · {snapshot.tenant.name} · as of {day} · {plan.currency}",
        meta={"tenant": snapshot.tenant.id, "as_of": day, "currency": plan.currency,
              "placed_by_tenant_prior": plan.on_prior},
        caption=f"{plan.on_prior} open invoice(s) placed by the tenant-wide history (customer has < 5 paid)",
        footer=2,
    )  # fmt: skip
