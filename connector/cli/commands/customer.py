"""`ccm customer C [--tenant T]`: one customer's position, rating, open invoices and payment history."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import typer
from rich.table import Table

from connector import chasing
from connector import creditcontrol as credit
from connector.cli import customer_history
from connector.cli.app import UsageProblem, app, out, state
from connector.cli.commands.aging import find_customer
from connector.cli.commands.reconcile import AsOfOpt, TenantOpt, cents, load
from connector.cli.output import Cell, Format, FormatOpt, emit
from connector.cli.output import shown as cell
from connector.cli.output import table as listing
from connector.reconcile import Balance, Snapshot, allocate, behaviours, positions
from connector.reconcile.behaviour import Sources, money_settlement
from connector.reconcile.explain import explain
from connector.reconcile.fx import Rates
from connector.rules.credit import CreditFileError, load_rating

CREDIT_FILE = "credit.yaml"  # the tenant's own rules file, beside its policies (as the night reads it)
COLUMNS = ("invoice", "state", "issued", "due", "paid on", "days late", "currency", "total", "outstanding")


@app.command()
def customer(
    ctx: typer.Context,
    who: Annotated[str, typer.Argument(metavar="CUSTOMER", help="The customer's id or exact name.")],
    tenant: TenantOpt = None,
    as_of: AsOfOpt = None,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """One customer: position, payment rating and risk, open invoices and payment history."""
    snapshot, day = load(ctx, tenant, as_of)
    cid = find_customer(snapshot, who)
    rates = Rates.from_snapshot(snapshot)
    ledger = allocate(snapshot, day)
    try:
        model = load_rating(state(ctx).settings.tenant_dir(snapshot.tenant.id) / CREDIT_FILE)
    except CreditFileError as exc:
        raise UsageProblem(str(exc)) from None
    seen = behaviours(snapshot, ledger, rates, day, model)[cid]
    paid_dates = Sources.of(snapshot, rates, day).paid_on
    position = positions(snapshot, ledger, rates, day).get(cid)
    base_balance = position.base if position else Balance()
    mine = sorted(
        (s for s in ledger.invoices.values() if s.invoice.customer_id == cid),
        key=lambda s: (s.invoice.issue_date, s.invoice.id),
    )
    rows: list[tuple[Cell, ...]] = []
    for s in mine:
        inv = s.invoice
        money_on, _, _ = money_settlement(s, paid_dates)
        if s.outstanding > 0:
            late: int | None = max(s.days_past_due(day), 0)
            shown = "open"
        elif money_on is not None:  # days late to the day the money arrived, not the allocation's
            late, shown = (money_on - s.due).days, "paid"
        elif s.paid_on is not None:
            late, shown = None, "credited"
        else:
            late, shown = None, "settled"
        rows.append((inv.number or inv.id, shown, inv.issue_date, s.due, money_on, late, inv.currency,
                     cents(inv.total.amount), cents(s.outstanding)))  # fmt: skip
    base = snapshot.tenant.base_currency
    summary: dict[str, Cell] = {
        "tenant": snapshot.tenant.id, "customer": cid, "name": seen.name, "as_of": day, "currency": base,
        "open": cents(base_balance.open), "overdue": cents(base_balance.overdue),
        "unapplied": cents(base_balance.unapplied), "net_exposure": cents(base_balance.net),
        "rating": seen.rating, "risk": seen.risk.value, "trend": seen.trend.value,
        "average_days_late": seen.average_days_late, "weighted_days_late": seen.weighted_days_late,
        "on_time_share": seen.on_time_share, "paid_invoices": seen.paid_count,
        "rating_reasons": "\n".join(explain(seen, snapshot.tenant.base_currency)),
    }  # fmt: skip
    summary.update(_credit_and_chasing(ctx, snapshot, cid, base_balance.net))
    contact = next((c for c in snapshot.customers if c.id == cid), None)
    summary["email"], summary["phone"] = (contact.email, contact.phone) if contact else (None, None)
    with state(ctx).store.read() as conn:
        history = customer_history.load(conn, snapshot.tenant.id, cid)
    if fmt is not Format.TABLE:
        emit(fmt, "customer", COLUMNS, rows, meta={**summary, **history.as_json()})
        return
    out.print(
        f"{seen.name} ({cid}) · as of {day} · rating {seen.rating or 'unrated'} · risk {seen.risk.value} · "
        f"trend {seen.trend.value}"
    )
    out.print(f"e-mail {summary['email'] or 'none'} · phone {summary['phone'] or 'none'}", markup=False)
    out.print(
        f"average {seen.average_days_late} days late, weighted {seen.weighted_days_late}, "
        f"{seen.on_time_share * 100:.0f}% on time over {seen.paid_count} paid and "
        f"{seen.open_overdue_count} overdue invoice(s)"
    )
    out.print("why this rating:", markup=False)
    for line in explain(seen, base):
        out.print(f"  - {line}", markup=False)
    table = Table("currency", "open", "overdue", "unapplied credit", "net exposure", title="position")
    for currency, bal in (*(position.by_currency if position else ()), (f"in {base}", base_balance)):
        table.add_row(currency, *(cell(cents(v)) for v in (bal.open, bal.overdue, bal.unapplied, bal.net)))
    out.print(table)
    _print_credit_and_chasing(ctx, snapshot.tenant.id, cid, summary)
    if history.reminders:
        out.print(listing(customer_history.REMINDER_COLUMNS, history.reminders, title="reminders sent"))
    if history.holds:
        out.print(listing(customer_history.HOLD_COLUMNS, history.holds, title="holds placed and released"))
    emit(fmt, "customer", COLUMNS, rows, title="invoices")


def _credit_and_chasing(ctx: typer.Context, snapshot: Snapshot, cid: str, net: Decimal) -> dict[str, Cell]:
    """Limit, exposure and hold, and what people decided about chasing (for every output format)."""
    st = state(ctx)
    tenant_id = snapshot.tenant.id
    with st.store.read() as conn:
        limit = credit.with_segment_defaults(
            snapshot, credit.limits(conn, tenant_id), st.settings.credit.segment_limits
        ).get(cid)
        held = credit.holds(conn, tenant_id).get(cid)
        chase = chasing.states(conn, tenant_id).get(cid, chasing.ChasingState())
        business = chasing.is_business(conn, tenant_id, cid)
        history = chasing.events(conn, tenant_id, cid)
    numbers = {e.invoice_id: e.invoice_number for e in history if e.invoice_id}
    latest = max([d for d in (chase.promise_until, *chase.promised.values()) if d is not None], default=None)
    on_hold = held is not None and held.on_hold
    return {
        "credit_limit": f"{limit}" if limit else None, "on_hold": on_hold,
        "hold_reason": held.reason if on_hold and held else None,
        "hold_since": held.since.date() if on_hold and held else None,
        "policy": chase.policy, "do_not_chase": chase.do_not_chase, "never_hold": chase.never_hold,
        "paused_until": chase.paused_until, "promise_until": latest,
        "promised": ", ".join(sorted(f"{numbers.get(i) or i} by {d}" for i, d in chase.promised.items()))
        or None, "payment_plan": chase.on_plan,
        "disputed": ", ".join(sorted(numbers.get(i) or i for i in chase.disputed)) or None,
        "business": business,
        "over_limit": bool(limit and limit.currency == snapshot.tenant.base_currency and net > limit.amount),
    }  # fmt: skip


def _print_credit_and_chasing(ctx: typer.Context, tenant_id: str, cid: str, summary: dict[str, Cell]) -> None:
    limit = summary["credit_limit"] or "none"
    hold = (
        f"ON HOLD since {summary['hold_since']}: {summary['hold_reason']}"
        if summary["on_hold"]
        else "not on hold"
    )
    out.print(f"credit limit {limit} · {hold}", markup=False)
    flags = [f"{k.replace('_', ' ')}: {v}" for k, v in summary.items()
             if k in ("policy", "paused_until", "promise_until", "promised", "disputed") and v]  # fmt: skip
    flags += [k.replace("_", " ") for k in ("do_not_chase", "never_hold", "payment_plan") if summary[k]]
    if not summary["business"]:
        flags.append("consumer (no statutory interest)")
    out.print("chasing: " + ("; ".join(flags) if flags else "normal"), markup=False)
    with state(ctx).store.read() as conn:
        history = chasing.events(conn, tenant_id, cid)
    if history:
        table = Table(
            "opened", "kind", "invoice", "until", "amount", "note", "closed", title="chasing history"
        )
        for e in history:
            closed = f"{e.closed_at:%Y-%m-%d} {e.outcome}" if e.closed_at else ""
            table.add_row(f"{e.opened_at:%Y-%m-%d}", e.kind, e.invoice_number or "", str(e.until or ""),
                          str(e.amount or ""), e.note, closed)  # fmt: skip
        out.print(table)
