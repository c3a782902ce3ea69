"""`ccm aging [--tenant T] [--as-of DATE] [--customer C]`: the aged receivables, DSO and CEI."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from connector.cli.app import UsageProblem, app
from connector.cli.commands.reconcile import AsOfOpt, TenantOpt, cents, load, parse_date
from connector.cli.output import Cell, Format, FormatOpt, emit
from connector.reconcile import BoundsError, Snapshot, aging, allocate, cei, dso
from connector.reconcile.aging import check_bounds
from connector.reconcile.fx import Rates
from connector.reconcile.metrics import months_before

CEI_MONTHS = 3


def find_customer(snapshot: Snapshot, wanted: str) -> str:
    """A customer's id from its id or its exact name (case-insensitive); a one-line error otherwise."""
    if wanted in snapshot.customer_names:
        return wanted
    named = sorted(c.id for c in snapshot.customers if c.name.casefold() == wanted.casefold())
    if len(named) == 1:
        return named[0]
    if named:
        raise UsageProblem(
            f"customer {wanted!r} is ambiguous in tenant {snapshot.tenant.id!r}: ids {', '.join(named)}"
        )
    raise UsageProblem(
        f"unknown customer {wanted!r} in tenant {snapshot.tenant.id!r} (give its id or exact name)"
    )


def parse_bounds(text: str) -> tuple[int, ...]:
    """`--buckets 30,60,90` as checked bounds, or a one-line usage error."""
    try:
        bounds = [int(part) for part in text.split(",")]
    except ValueError:
        raise UsageProblem(f"--buckets: expected day counts like 30,60,90, got {text!r}") from None
    try:
        return check_bounds(bounds)
    except BoundsError as exc:
        raise UsageProblem(f"--buckets: {exc}") from None


@app.command("aging")
def aging_(
    ctx: typer.Context,
    tenant: TenantOpt = None,
    as_of: AsOfOpt = None,
    customer: Annotated[
        str | None, typer.Option("--customer", "-c", help="Only this customer (id or name).")
    ] = None,
    buckets: Annotated[
        str, typer.Option("--buckets", help="Bucket bounds in days past due, e.g. 30,60,90 (the default).")
    ] = "30,60,90",
    cei_from: Annotated[
        str | None, typer.Option("--cei-from", help="Start of the CEI period (default: 3 months back).")
    ] = None,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """Aged receivables in base currency per customer (current, 1-30, 31-60, 61-90, 90+), with DSO and CEI."""
    snapshot, day = load(ctx, tenant, as_of)
    only = find_customer(snapshot, customer) if customer is not None else None
    rates = Rates.from_snapshot(snapshot)
    ledger = allocate(snapshot, day)
    report = aging(snapshot, ledger, rates, day, parse_bounds(buckets))
    days = dso(snapshot, rates, day, ledger)
    start = months_before(day, CEI_MONTHS) + timedelta(days=1)
    if cei_from is not None:
        start = parse_date("--cei-from", cei_from)
        if start > day:
            raise UsageProblem(f"--cei-from: {start} is after the report date {day}")
    index = cei(snapshot, rates, start, day, ledger)
    rows: list[tuple[Cell, ...]] = [
        (r.customer_id, r.name, *(cents(b) for b in r.buckets), cents(r.total))
        for r in report.rows
        if only is None or r.customer_id == only
    ]
    if only is None:  # CSV and JSON keep the name empty; the table, led by the name, says what the row is
        total_name = "total" if fmt is Format.TABLE else ""
        totals = (*(cents(b) for b in report.total.buckets), cents(report.total.total))
        rows.append(("total", total_name, *totals))
    cei_text = "n/a" if index is None else f"{index}%"
    emit(
        fmt, "aging", ("customer", "name", *report.labels, "total"), rows,
        title=f"aging · {snapshot.tenant.name} · as of {day} · {report.currency}",
        labels={"name": "customer", **{b: b for b in report.labels}, "total": "total"},
        meta={"tenant": snapshot.tenant.id, "as_of": day, "currency": report.currency, "dso_days": days,
              "cei_percent": index, "cei_from": start},
        caption=f"DSO (count-back) {days} days · CEI {start} to {day}: {cei_text}",
        footer=0 if only else 1,
    )  # fmt: skip
