"""`ccm outbox list|approve|send|resolve|retry|dismiss`: what ccm plans to send, has sent, and could not.

`resolve` settles an action whose outcome is unknown: `--sent` records it exactly as a sent one (the
reminder history, so the customer's sequence goes on, and the ledger notes it leaves), `--not-sent` plans it
again. `retry` plans failed actions again (same key, attempts kept, the reason saying what it retries);
`dismiss` drops failed ones for good.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table

from connector import lease, outbox, settle
from connector.cli.app import Failure, UsageProblem, app, out, state
from connector.cli.commands.run import before_sending, lost_lease, parse_at, print_unsettled
from connector.cli.options import TenantOpt, pick_tenant
from connector.outbox import State
from connector.run.execute import Executor
from connector.run.night import for_night_at
from connector.run.plan import Context
from connector.runtime import NotConnected, ledger_for, mapping_for
from connector.store.tenants import get_tenant
from connector.sync import run_sync

outbox_app = typer.Typer(help="The outbox: planned, sent and unsettled actions.", no_args_is_help=True)
app.add_typer(outbox_app, name="outbox")


@outbox_app.command("list")
def list_(
    ctx: typer.Context,
    tenant: TenantOpt = None,
    state_: Annotated[list[State] | None, typer.Option("--state", "-s", help="Only these states.")] = None,
) -> None:
    """Actions with their state, send time and reason."""
    store = state(ctx).store
    tenant_id = pick_tenant(store, tenant)
    with store.read() as conn:
        get_tenant(conn, tenant_id)
        found = outbox.actions(conn, tenant_id, state_)
    if not found:
        out.print("the outbox is empty" if not state_ else "no actions in that state")
        return
    table = Table(
        "key", "kind", "channel", "customer", "invoices", "state", "send after (UTC)", "reason / result"
    )
    for a in found:
        lines = a.payload.get("lines", [])
        invoices = ", ".join(f"{line.get('number')}@{line.get('level')}" for line in lines) or str(
            a.payload.get("ref", "")
        )
        table.add_row(
            a.key, a.kind, a.channel, str(a.payload.get("customer_name", a.customer_id)), invoices, a.state,
            f"{a.send_after:%Y-%m-%d %H:%M}", a.reason or a.result or "",
        )  # fmt: skip
    out.print(table)


@outbox_app.command()
def approve(
    ctx: typer.Context,
    keys: Annotated[list[str] | None, typer.Argument(help="Action keys to approve.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Approve every action awaiting approval.")] = False,
    tenant: TenantOpt = None,
) -> None:
    """Approve actions a night planned for approval (a firm's safe first nights, approve mode, `--approve`).

    Exactly what is approved goes out, at the next run or `ccm outbox send`, unless the customer paid or was
    credited since (then it is cancelled, with the reason); what the night would now plan instead awaits
    approval again while the firm is in approve mode.
    """
    if bool(keys) == all_:
        raise UsageProblem("give action keys or --all")
    store = state(ctx).store
    tenant_id = pick_tenant(store, tenant)
    now = datetime.now(UTC)
    with store.begin() as conn:
        get_tenant(conn, tenant_id)
        waiting = outbox.actions(conn, tenant_id, [State.AWAITING_APPROVAL])
        chosen = [a for a in waiting if all_ or a.key in (keys or [])]
        count = outbox.approve(conn, tenant_id, [a.key for a in chosen], now)
        if keys and count < len(set(keys)):
            others = ", ".join(k for k in keys if k not in {a.key for a in chosen})
            raise UsageProblem(
                f"not awaiting approval in {tenant_id!r}: {others} (nothing was approved; see "
                f"`ccm outbox list -t {tenant_id} --state awaiting_approval`)"
            )
        listed = outbox.described(conn, tenant_id, chosen)
    for item in listed:
        on = f" on {', '.join(item.invoices)}" if item.invoices else ""
        out.print(f"approved {item.what} for {item.customer}{on}", markup=False)
    out.print(
        f"approved {count} action(s); they go out at the next run or `ccm outbox send -t {tenant_id}`",
        markup=False,
    )


@outbox_app.command()
def send(
    ctx: typer.Context,
    tenant: TenantOpt = None,
    at: Annotated[
        str | None, typer.Option("--at", help="Send as if it were this instant (ISO 8601).")
    ] = None,
) -> None:
    """Send what is due now, after re-pulling the tenant so nothing paid since planning goes out.

    Under the tenant's run lease, kept as `ccm serve` keeps it: a lease lost on the way stops the sending
    at its next safe point, leaving alone whatever the new holder has in flight.
    """
    now = parse_at(at)
    st = state(ctx)
    store, settings = st.store, st.settings
    tenant_id = pick_tenant(store, tenant)
    with store.read() as conn:
        found = get_tenant(conn, tenant_id)
    try:
        ledger = ledger_for(settings, store, found)
    except NotConnected as exc:
        raise UsageProblem(str(exc)) from None
    context = Context.load(settings, found)
    context.check_templates()
    mapping = mapping_for(settings, found)
    holder = lease.new_holder()
    try:  # the lease is kept on the real clock: `--at` moves what is due, never the lease
        with lease.kept(store, tenant_id, holder, log_loss=False) as keeper:
            stop = keeper.is_lost
            mode = for_night_at(store, settings, tenant_id, now).mode  # re-planned ones await approval too
            executor = Executor(store, settings, context, ledger, holder, mode, should_stop=stop)
            outcome = executor.run(
                now, resync=lambda: run_sync(store, tenant_id, ledger, mapping, should_stop=stop)
            )
    except lease.Busy as exc:
        raise Failure(str(exc)) from None
    o = outcome
    out.print(
        f"sent {len(o.sent)}, call tasks {len(o.tasks)}, cancelled {len(o.cancelled)}, "
        f"deferred {len(o.deferred)}, failed {len(o.failed)}, unknown {len(o.unknown)}, notes {o.notes}"
    )
    for key, reason in o.deferred[:20]:
        out.print(f"deferred {key}: {reason}", markup=False)
    print_unsettled(store, [tenant_id])
    if outcome.stopped and keeper.lost.is_set():
        raise Failure(lost_lease(tenant_id, before_sending(outcome)))
    if outcome.stopped:
        raise Failure(f"{tenant_id} stopped: {outcome.stopped}")


@outbox_app.command()
def resolve(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="The unknown action's key.")],
    sent: Annotated[bool, typer.Option("--sent", help="It did go out: record it as sent.")] = False,
    not_sent: Annotated[bool, typer.Option("--not-sent", help="It did not go out: send it again.")] = False,
    tenant: TenantOpt = None,
) -> None:
    """Settle an action whose outcome was unknown (the process died while sending it).

    `--sent` records it as a sent one would be: the reminder history (the customer's sequence goes on from
    it) and the ledger notes, planned to be written at the next send. `--not-sent` plans it again.
    """
    if sent == not_sent:
        raise UsageProblem("give exactly one of --sent or --not-sent")
    store = state(ctx).store
    tenant_id = pick_tenant(store, tenant)
    with store.begin() as conn:
        resolved = settle.resolve(
            conn, get_tenant(conn, tenant_id), key, went_out=sent, now=datetime.now(UTC)
        )
    if resolved is None:
        raise UsageProblem(f"no unknown action {key!r} in tenant {tenant_id!r}")
    notes, day = resolved.notes, resolved.day
    if sent:
        noted = f"; {notes} ledger note(s) planned (`ccm outbox send`)" if notes else ""
        out.print(f"{key}: recorded as sent on {day}{noted}")
    else:
        out.print(f"{key}: planned again")


@outbox_app.command()
def retry(
    ctx: typer.Context,
    keys: Annotated[list[str] | None, typer.Argument(help="Failed action keys to plan again.")] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Plan every failed action again.")] = False,
    tenant: TenantOpt = None,
) -> None:
    """Plan failed actions again once their cause is fixed: same key, attempts kept, sent at the next send."""
    if bool(keys) == failed:
        raise UsageProblem("give failed action keys or --failed")
    store = state(ctx).store
    tenant_id = pick_tenant(store, tenant)
    with store.begin() as conn:
        get_tenant(conn, tenant_id)
        planned = outbox.retry(conn, tenant_id, None if failed else keys, datetime.now(UTC))
    if keys and len(planned) < len(keys):
        others = ", ".join(k for k in keys if k not in planned)
        raise UsageProblem(
            f"planned {len(planned)} of {len(keys)} again; not failed in {tenant_id!r}: {others}"
        )
    out.print(
        f"planned {len(planned)} failed action(s) again; they go out at the next send (`ccm outbox send`)"
    )


@outbox_app.command()
def dismiss(
    ctx: typer.Context,
    keys: Annotated[list[str], typer.Argument(help="Failed action keys to drop for good.")],
    tenant: TenantOpt = None,
) -> None:
    """Drop failed actions for good (a note on an invoice deleted since): cancelled, their reason kept."""
    store = state(ctx).store
    tenant_id = pick_tenant(store, tenant)
    with store.begin() as conn:
        get_tenant(conn, tenant_id)
        dropped = outbox.dismiss(conn, tenant_id, keys, datetime.now(UTC))
    if len(dropped) < len(keys):
        others = ", ".join(k for k in keys if k not in dropped)
        raise UsageProblem(f"dismissed {len(dropped)} of {len(keys)}; not failed in {tenant_id!r}: {others}")
    out.print(f"dismissed {len(dropped)} failed action(s)")
