"""`ccm limit set|import|list|suggest`, `ccm hold`, `ccm release`, `ccm never-hold`: credit control."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from connector import chasing
from connector import creditcontrol as credit
from connector.cli.app import UsageProblem, app, out, state
from connector.cli.options import TenantOpt, pick_customer, pick_tenant
from connector.cli.output import Format, FormatOpt, amount, emit
from connector.model import Tenant
from connector.reconcile import load_snapshot
from connector.rules.credit import CreditFileError, load_rating
from connector.store.tenants import get_tenant

limit_app = typer.Typer(help="Credit limits (ccm's own: the ledgers have none).", no_args_is_help=True)
app.add_typer(limit_app, name="limit")
app.add_typer(limit_app, name="limits", hidden=True)  # `ccm limits suggest` reads naturally too


def _now() -> datetime:
    return datetime.now(UTC)


def _today(tenant: Tenant) -> date:
    """Today where the firm is: its limits and ratings are judged on its own calendar, not UTC's."""
    return _now().astimezone(ZoneInfo(tenant.timezone)).date()


@limit_app.command("set")
def set_(
    ctx: typer.Context,
    customer: Annotated[str, typer.Argument(help="Customer name or id.")],
    amount: Annotated[str, typer.Argument(help="The limit, e.g. 5000 or '5000 EUR'.")],
    tenant: TenantOpt = None,
) -> None:
    """Set a customer's credit limit (in the tenant's base currency unless one is given)."""
    store = state(ctx).store
    tenant_id, customer_id, name = pick_customer(store, tenant, customer)
    with store.begin() as conn:
        base = get_tenant(conn, tenant_id).base_currency
        try:
            limit = credit.parse_limit(amount, base)
        except ValueError as exc:
            raise UsageProblem(f"AMOUNT: {exc}") from None
        credit.set_limit(conn, tenant_id, customer_id, limit, _now(), "set")
    out.print(f"{name}: credit limit {limit}")


@limit_app.command("import")
def import_(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="CSV with a header: customer,amount[,currency].")],
    tenant: TenantOpt = None,
) -> None:
    """Import limits from CSV: every bad row is reported by line number; nothing is half-imported."""
    store = state(ctx).store
    tenant_id = pick_tenant(store, tenant)
    try:
        with store.begin() as conn:
            count = credit.import_limits(conn, get_tenant(conn, tenant_id), file, _now())
    except credit.LimitFileError as exc:
        raise UsageProblem(str(exc)) from None
    out.print(f"imported {count} credit limit(s)")


LIMIT_COLUMNS = (
    "customer",
    "customer id",
    "currency",
    "limit",
    "exposure",
    "rating",
    "on hold",
    "since",
    "reason",
)
SUGGEST_COLUMNS = (
    "customer",
    "customer id",
    "rating",
    "suggestion",
    "currency",
    "limit now",
    "suggested",
    "why",
)


@limit_app.command("list")
def list_(ctx: typer.Context, tenant: TenantOpt = None, fmt: FormatOpt = Format.TABLE) -> None:
    """Every limit with the customer's exposure and hold state (amounts in the limit's currency)."""
    st = state(ctx)
    tenant_id = pick_tenant(st.store, tenant)
    snapshot = load_snapshot(st.store, tenant_id)
    today = _today(snapshot.tenant)
    with st.store.read() as conn:
        _, accounts = credit.decide(
            conn, snapshot, today, (), st.settings.credit.include_drafts, st.settings.credit.segment_limits
        )
        held = credit.holds(conn, tenant_id)
    rows = []
    for a in accounts:
        if a.limit is None and a.customer_id not in held:
            continue
        h = held.get(a.customer_id)
        on = h is not None and h.on_hold
        rows.append((a.name, a.customer_id, a.exposure.currency, amount(a.limit.amount) if a.limit else None,
                     amount(a.exposure.amount), a.rating, on, h.since.date() if on and h else None,
                     h.reason if on and h else None))  # fmt: skip
    labels = {c: c for c in LIMIT_COLUMNS if c != "customer id"}
    emit(fmt, "limits", LIMIT_COLUMNS, rows, labels=labels, empty="no credit limits or holds yet")


@limit_app.command("suggest")
def suggest_(ctx: typer.Context, tenant: TenantOpt = None, fmt: FormatOpt = Format.TABLE) -> None:
    """Limits worth raising (reliable payers with idle credit) and limits too high for the rating."""
    st = state(ctx)
    tenant_id = pick_tenant(st.store, tenant)
    snapshot = load_snapshot(st.store, tenant_id)
    try:
        model = load_rating(st.settings.tenant_dir(tenant_id) / "credit.yaml")
    except CreditFileError as exc:
        raise UsageProblem(str(exc)) from None
    with st.store.read() as conn:
        found = credit.suggest(snapshot, _today(snapshot.tenant), credit.limits(conn, tenant_id), model)
    rows = [
        (s.name, s.customer_id, s.rating, "idle credit line" if s.kind == "idle" else s.kind,
         s.suggested.currency, amount(s.limit.amount) if s.limit else None, amount(s.suggested.amount),
         s.reason)
        for s in found
    ]  # fmt: skip
    labels = {c: c for c in SUGGEST_COLUMNS if c not in ("customer id", "currency")}
    emit(fmt, "limit-suggestions", SUGGEST_COLUMNS, rows, labels=labels,
         caption=f"amounts in {snapshot.tenant.base_currency}",
         empty="no suggestions: every limit fits how its customer pays")  # fmt: skip


@app.command()
def hold(
    ctx: typer.Context,
    customer: Annotated[str, typer.Argument(help="Customer name or id.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (written to the ledger).")],
    tenant: TenantOpt = None,
) -> None:
    """Put a customer on credit hold by hand; the rules never release a manual hold."""
    store = state(ctx).store
    tenant_id, customer_id, name = pick_customer(store, tenant, customer)
    if not reason.strip():
        raise UsageProblem("--reason: say why, in a few words")
    with store.begin() as conn:
        chasing.update_settings(
            conn, tenant_id, customer_id, _now(), manual_hold=True, manual_hold_reason=reason
        )
    out.print(f"{name}: manual hold recorded; it reaches the ledger with the next `ccm run`")


@app.command()
def release(
    ctx: typer.Context,
    customer: Annotated[str, typer.Argument(help="Customer name or id.")],
    tenant: TenantOpt = None,
) -> None:
    """Lift a manual hold (rules may still hold the customer if one applies)."""
    store = state(ctx).store
    tenant_id, customer_id, name = pick_customer(store, tenant, customer)
    with store.begin() as conn:
        chasing.update_settings(
            conn, tenant_id, customer_id, _now(), manual_hold=False, manual_hold_reason=None
        )
        held = credit.holds(conn, tenant_id).get(customer_id)
        if held is not None and held.on_hold and held.source == "manual":
            credit.record_hold(
                conn, tenant_id, customer_id, True, "rule", held.reason, "manual-release", _now()
            )
    out.print(
        f"{name}: manual hold lifted; the next `ccm run` releases it in the ledger unless a rule applies"
    )


@app.command("never-hold")
def never_hold(
    ctx: typer.Context,
    customer: Annotated[str, typer.Argument(help="Customer name or id.")],
    off: Annotated[bool, typer.Option("--off", help="Let the rules hold this customer again.")] = False,
    tenant: TenantOpt = None,
) -> None:
    """Never put a customer on hold automatically (or, with --off, let the rules do so again)."""
    store = state(ctx).store
    tenant_id, customer_id, name = pick_customer(store, tenant, customer)
    with store.begin() as conn:
        chasing.update_settings(conn, tenant_id, customer_id, _now(), never_hold=not off)
    out.print(f"{name}: " + ("the rules may hold this customer again" if off else "never held automatically"))
