"""`ccm dispute|promise|plan|pause|do-not-chase|policy|backlog|include`: what people decided about chasing.

`ccm backlog` lists the invoices the backlog cutoff keeps out of chasing (overdue longer than the policy's
backlog_days when the firm was connected, connector/backlog.py); `ccm include` lets ccm chase them, for a
customer, one invoice or all, recorded as an `include` chasing event (`--off` keeps them back again).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from connector import backlog as cutoff
from connector import chasing
from connector.cli.app import UsageProblem, app, out, state
from connector.cli.commands.run import parse_at
from connector.cli.options import TenantOpt, pick_customer, pick_tenant
from connector.cli.output import Format, FormatOpt, emit
from connector.model import Money, Tenant
from connector.rules.policy import load_policies
from connector.run.plan import Context, evaluate_with_backlog
from connector.store import Store
from connector.store.tenants import get_tenant

UNTIL_YEARS = 5  # a promise further ahead is a typo (20226-01-01), not a plan
NoteOpt = Annotated[str, typer.Option("--note", "-n", help="Why, in a few words (kept in the history).")]


def _date(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageProblem(f"{option}: not a date (expected YYYY-MM-DD): {value!r}") from None


def _now() -> datetime:
    return datetime.now(UTC)


def _check_until(day: date, tenant: Tenant, option: str) -> None:
    """A date a person promises something by: today or later where the firm is, within UNTIL_YEARS."""
    today = _now().astimezone(ZoneInfo(tenant.timezone)).date()
    latest = _years_after(today, UNTIL_YEARS)
    if day < today:
        raise UsageProblem(f"{option}: {day} is in the past (today is {today} in {tenant.timezone})")
    if day > latest:
        raise UsageProblem(f"{option}: {day} is more than {UNTIL_YEARS} years ahead (at most {latest})")


def _firm_until(store: Store, tenant_id: str, value: str) -> date:
    """`--until` as typed, checked against the firm's today like `ccm promise --until`."""
    day = _date(value, "--until")
    with store.read() as conn:
        firm = get_tenant(conn, tenant_id)
    _check_until(day, firm, "--until")
    return day


def _years_after(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


@app.command()
def dispute(
    ctx: typer.Context,
    invoice: Annotated[str, typer.Argument(help="Invoice number (or id).")],
    reason: Annotated[
        str, typer.Option("--reason", "--note", "-n", help="Why the customer disputes it (kept in history).")
    ] = "",
    tenant: TenantOpt = None,
    resolve: Annotated[
        bool, typer.Option("--resolve", help="The dispute is settled: chase it again.")
    ] = False,
) -> None:
    """Mark an invoice disputed, with the reason (it is not chased), or, with --resolve, settled."""
    if not resolve and not reason.strip():
        raise UsageProblem("--reason: say why the invoice is disputed, in a few words")
    store = state(ctx).store
    tenant_id = pick_tenant(store, tenant)
    with store.begin() as conn:
        get_tenant(conn, tenant_id)
        try:
            customer_id, number = chasing.record_dispute(
                conn, tenant_id, invoice, reason.strip(), _now(), resolve=resolve
            )
        except chasing.CustomerOrInvoiceNotFound as exc:
            raise UsageProblem(str(exc)) from None
        name = chasing.find_customer(conn, tenant_id, customer_id)[1]
    if resolve:
        out.print(f"invoice {number} ({name}): dispute resolved; chased again", markup=False)
    else:
        out.print(f"invoice {number} ({name}): disputed ({reason.strip()}); not chased", markup=False)


@app.command()
def promise(
    ctx: typer.Context,
    customer: Annotated[str, typer.Argument(help="Customer name or id.")],
    until: Annotated[str, typer.Option("--until", help="The date they promised to pay by (YYYY-MM-DD).")],
    invoice: Annotated[
        list[str] | None,
        typer.Option("--invoice", "-i", help="An invoice promised (number or id); repeat for several."),
    ] = None,
    amount: Annotated[str | None, typer.Option("--amount", help="The amount promised, e.g. 250.00.")] = None,
    currency: Annotated[
        str | None, typer.Option("--currency", help="Currency of --amount (default: base).")
    ] = None,
    tenant: TenantOpt = None,
    note: NoteOpt = "",
) -> None:
    """Record a promise to pay: the invoices promised (--invoice; else the oldest the --amount pays; else
    every open one) are not chased until that date; the customer's other invoices still are."""
    until_day = _date(until, "--until")
    tenant_id, customer_id, name = pick_customer(state(ctx).store, tenant, customer)
    store = state(ctx).store
    with store.read() as conn:
        firm = get_tenant(conn, tenant_id)
    promised: Money | None = None
    if amount is not None:
        if currency is not None and " " in amount.strip():
            raise UsageProblem(f"--amount: give the currency with --currency only: {amount!r}")
        try:
            promised = chasing.parse_amount(
                amount + (f" {currency}" if currency is not None else ""), firm.base_currency
            )
        except ValueError as exc:
            raise UsageProblem(f"--amount/--currency: {exc}") from None
    _check_until(until_day, firm, "--until")
    with store.begin() as conn:
        try:
            covered = chasing.promised_invoices(conn, tenant_id, customer_id, list(invoice or []), promised)
        except chasing.CustomerOrInvoiceNotFound as exc:
            raise UsageProblem(f"--invoice: {exc}" if invoice else f"{name}: {exc}") from None
        chasing.record_promise(conn, tenant_id, customer_id, covered, until_day, promised, note, _now())
    what = f" {promised}" if promised else ""
    numbers = ", ".join(c.number for c in covered)
    out.print(f"{name}: promised to pay{what} by {until_day} on {numbers}; reminders for "
              f"{'them' if len(covered) > 1 else 'it'} wait until then", markup=False)  # fmt: skip


@app.command()
def plan(
    ctx: typer.Context,
    customer: Annotated[str, typer.Argument(help="Customer name or id.")],
    tenant: TenantOpt = None,
    note: NoteOpt = "",
    until: Annotated[str | None, typer.Option("--until", help="When the plan ends (YYYY-MM-DD).")] = None,
    end: Annotated[bool, typer.Option("--end", help="The plan is over: chase normally again.")] = False,
) -> None:
    """Put a customer on a payment plan (not chased while it runs), or end it with --end."""
    tenant_id, customer_id, name = pick_customer(state(ctx).store, tenant, customer)
    until_day = _firm_until(state(ctx).store, tenant_id, until) if until else None
    store = state(ctx).store
    with store.begin() as conn:
        if end:
            if not chasing.close_events(conn, tenant_id, customer_id, chasing.PLAN, "ended", _now()):
                raise UsageProblem(f"{name} is not on a payment plan")
        else:
            chasing.open_event(conn, tenant_id, customer_id, chasing.PLAN, _now(), note=note, until=until_day)
    out.print(
        f"{name}: " + ("payment plan ended; chased normally" if end else "on a payment plan; not chased")
    )


@app.command()
def pause(
    ctx: typer.Context,
    customer: Annotated[str, typer.Argument(help="Customer name or id.")],
    until: Annotated[str | None, typer.Option("--until", help="Pause reminders up to this date.")] = None,
    resume: Annotated[bool, typer.Option("--resume", help="End the pause now.")] = False,
    tenant: TenantOpt = None,
) -> None:
    """Pause reminders to a customer until a date (or resume them)."""
    if (until is None) == (not resume):
        raise UsageProblem("give either --until DATE or --resume")
    tenant_id, customer_id, name = pick_customer(state(ctx).store, tenant, customer)
    until_day = _firm_until(state(ctx).store, tenant_id, until) if until else None
    with state(ctx).store.begin() as conn:
        chasing.update_settings(conn, tenant_id, customer_id, _now(), paused_until=until_day)
    out.print(f"{name}: " + (f"paused until {until_day}" if until_day else "reminders resumed"))


@app.command("do-not-chase")
def do_not_chase(
    ctx: typer.Context,
    customer: Annotated[str, typer.Argument(help="Customer name or id.")],
    off: Annotated[bool, typer.Option("--off", help="Chase this customer again.")] = False,
    tenant: TenantOpt = None,
) -> None:
    """Never send reminders to a customer (or, with --off, chase them again)."""
    tenant_id, customer_id, name = pick_customer(state(ctx).store, tenant, customer)
    with state(ctx).store.begin() as conn:
        chasing.update_settings(conn, tenant_id, customer_id, _now(), do_not_chase=not off)
    out.print(f"{name}: " + ("chased again" if off else "never chased"))


@app.command()
def policy(
    ctx: typer.Context,
    customer: Annotated[str, typer.Argument(help="Customer name or id.")],
    name: Annotated[str | None, typer.Argument(help="Policy name; omit with --default.")] = None,
    default: Annotated[
        bool, typer.Option("--default", help="Back to the policy chosen by segment and risk.")
    ] = False,
    tenant: TenantOpt = None,
) -> None:
    """Give a customer their own dunning policy (it wins over segment and risk)."""
    if (name is None) == (not default):
        raise UsageProblem("give a policy name or --default")
    tenant_id, customer_id, customer_name = pick_customer(state(ctx).store, tenant, customer)
    settings = state(ctx).settings
    policies = load_policies(settings.tenant_dir(tenant_id) / "policy.yaml")
    if name is not None and policies.get(name) is None:
        known = ", ".join(p.name for p in policies.policies)
        raise UsageProblem(f"no policy named {name!r} (have: {known})")
    with state(ctx).store.begin() as conn:
        chasing.update_settings(conn, tenant_id, customer_id, _now(), policy=name)
    out.print(f"{customer_name}: " + (f"policy {name}" if name else "policy chosen by segment and risk"))


@app.command()
def consumer(
    ctx: typer.Context,
    customer: Annotated[str, typer.Argument(help="Customer name or id.")],
    off: Annotated[bool, typer.Option("--off", help="The customer is a business after all.")] = False,
    tenant: TenantOpt = None,
) -> None:
    """Mark a customer as a consumer: statutory late-payment interest (business to business) never applies."""
    tenant_id, customer_id, name = pick_customer(state(ctx).store, tenant, customer)
    with state(ctx).store.begin() as conn:
        chasing.update_settings(conn, tenant_id, customer_id, _now(), business=off)
    out.print(
        f"{name}: "
        + ("a business (statutory interest may apply)" if off else "a consumer (no statutory interest)")
    )


AtOpt = Annotated[str | None, typer.Option("--at", help="As if it were this instant (ISO 8601).")]


def _kept_back(ctx: typer.Context, tenant_id: str, at: str | None) -> list[cutoff.Kept]:
    """What the cutoff keeps back from the night at `at` (default: now), as that night would see it."""
    st = state(ctx)
    with st.store.read() as conn:
        firm = get_tenant(conn, tenant_id)
    context = Context.load(st.settings, firm)
    _, _, kept = evaluate_with_backlog(st.store, context, context.calendar.local_date(parse_at(at)))
    return kept


BACKLOG_COLUMNS = ("customer", "customer id", "invoice", "due", "days overdue at connection", "currency",
                   "outstanding", "cutoff days")  # fmt: skip
BACKLOG_LABELS = {"customer": "customer", "invoice": "invoice", "due": "due",
                  "days overdue at connection": "days overdue at connection", "currency": "currency",
                  "outstanding": "outstanding", "cutoff days": "cutoff (days)"}  # fmt: skip


@app.command("backlog")
def backlog_(
    ctx: typer.Context, tenant: TenantOpt = None, at: AtOpt = None, fmt: FormatOpt = Format.TABLE
) -> None:
    """Invoices not chased because they were long overdue when ccm was connected, until a person includes
    them (`ccm include`)."""
    tenant_id = pick_tenant(state(ctx).store, tenant)
    kept = sorted(_kept_back(ctx, tenant_id, at), key=lambda k: (k.customer, k.due_date, k.number))
    rows = [(k.customer, k.customer_id, k.number, k.due_date, k.days_at_connection, k.outstanding.currency,
             k.outstanding.amount, k.backlog_days) for k in kept]  # fmt: skip
    emit(fmt, "backlog", BACKLOG_COLUMNS, rows, labels=BACKLOG_LABELS, meta={"tenant": tenant_id},
         title=f"{tenant_id}: kept back from chasing",
         empty=f"{tenant_id}: nothing is kept back")  # fmt: skip
    if fmt is not Format.TABLE or not kept:
        return
    out.print(f"include them with `ccm include CUSTOMER -t {tenant_id}` (one invoice: --invoice NUMBER; "
              "every one: --all)", markup=False)  # fmt: skip


@app.command()
def include(
    ctx: typer.Context,
    customer: Annotated[str | None, typer.Argument(help="Customer name or id.")] = None,
    invoice: Annotated[
        str | None, typer.Option("--invoice", help="Only this invoice (number or id).")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every invoice kept back, of every customer.")] = False,
    off: Annotated[bool, typer.Option("--off", help="Keep them back again.")] = False,
    tenant: TenantOpt = None,
    note: NoteOpt = "",
    at: AtOpt = None,
) -> None:
    """Chase invoices the backlog cutoff kept back (a customer's, one, or --all) from the next night on."""
    if sum((customer is not None, invoice is not None and customer is None, all_)) != 1:
        raise UsageProblem("give a customer, --invoice NUMBER, or --all")
    store = state(ctx).store
    tenant_id = pick_tenant(store, tenant)
    customer_id, name = (None, None)
    if customer is not None:
        tenant_id, customer_id, name = pick_customer(store, tenant_id, customer)
    invoice_id = None
    if invoice is not None:
        with store.read() as conn:
            try:
                invoice_id, owner, _ = chasing.find_invoice(conn, tenant_id, invoice)
            except chasing.CustomerOrInvoiceNotFound as exc:
                raise UsageProblem(str(exc)) from None
        if customer_id is not None and owner != customer_id:
            raise UsageProblem(f"--invoice: {invoice} is not {name}'s")
        customer_id = owner
    if off:
        _include_off(store, tenant_id, customer_id, invoice_id, all_)
        return
    kept = [k for k in _kept_back(ctx, tenant_id, at)
            if all_ or (k.customer_id == customer_id and invoice_id in (None, k.invoice_id))]  # fmt: skip
    if not kept:
        who = "nothing" if all_ else f"no invoice of {name or customer_id}" if invoice is None else invoice
        raise UsageProblem(f"{who} is kept back in {tenant_id!r} (see `ccm backlog -t {tenant_id}`)")
    now = _now()
    with store.begin() as conn:
        for cid in sorted({k.customer_id for k in kept}):
            chasing.open_event(conn, tenant_id, cid, cutoff.INCLUDE, now, note=note, invoice_id=invoice_id)
    for k in kept:
        out.print(f"included {k.customer}: {k.number} ({k.outstanding}, {k.days_at_connection} days overdue "
                  "at connection)", markup=False)  # fmt: skip
    out.print(f"{len(kept)} invoice(s) chased from the next night (`ccm run -t {tenant_id}`)", markup=False)


def _include_off(
    store: Store, tenant_id: str, customer_id: str | None, invoice_id: str | None, all_: bool
) -> None:
    with store.begin() as conn:
        if all_:
            closed = sum(chasing.close_events(conn, tenant_id, cid, cutoff.INCLUDE, "withdrawn", _now())
                         for cid in cutoff.included_customers(conn, tenant_id))  # fmt: skip
        else:
            assert customer_id is not None
            closed = chasing.close_events(conn, tenant_id, customer_id, cutoff.INCLUDE, "withdrawn", _now(),
                                          invoice_id)  # fmt: skip
    if not closed:
        raise UsageProblem("nothing was included (see `ccm customer` for the chasing history)")
    out.print(f"kept back again: {closed} inclusion(s) withdrawn", markup=False)
