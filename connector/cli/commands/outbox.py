"""`ccm outbox list|approve|send|resolve|retry|dismiss|cancel`: what ccm plans, has sent, and could not.

`list` shows each action's customer by name, its invoices by number and its key's shortest unique prefix
(CSV and JSON: the full key too); every command taking keys takes such a prefix (connector/cli/actionkeys.py).
An action awaiting approval that a person snoozed (the approvals page, connector/snooze.py) shows when its
snooze ends (`snoozed until`, UTC; empty when not snoozed at `--at`, default now).
`cancel` drops actions not sent yet (awaiting approval or planned), one line per key saying what happened.

`resolve` settles an action whose outcome is unknown: `--sent` records it exactly as a sent one (the
reminder history, so the customer's sequence goes on, and the ledger notes it leaves), `--not-sent` plans it
again. `retry` plans failed actions again (same key, attempts kept, the reason saying what it retries);
`dismiss` drops failed ones for good.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from connector import lease, outbox, settle, snooze
from connector.cli import actionkeys
from connector.cli.app import Failure, UsageProblem, app, out, state
from connector.cli.commands.reconcile import parse_date
from connector.cli.commands.run import before_sending, lost_lease, parse_at, print_unsettled
from connector.cli.options import TenantOpt, pick_customer, pick_tenant
from connector.cli.output import Format, FormatOpt, emit
from connector.outbox import State
from connector.payloads import Kind as ActionKind
from connector.payloads import lines_of
from connector.run.execute import Executor
from connector.run.night import for_night_at
from connector.run.plan import Context
from connector.store.tenants import get_tenant
from connector.sync import run_sync
from connector.wiring import NotConnected, ledger_for, mapping_for

outbox_app = typer.Typer(help="The outbox: planned, sent and unsettled actions.", no_args_is_help=True)
app.add_typer(outbox_app, name="outbox")


class Kind(StrEnum):
    REMINDER = "reminder"
    NOTE = "note"
    HOLD = "hold"
    RELEASE = "release"
    CALL_TASK = "call_task"
    NOTICE = "notice"


COLUMNS = ("key", "short key", "kind", "channel", "customer", "customer id", "invoices", "state",
           "send after", "snoozed until", "attempts", "reason")  # fmt: skip
LABELS = {"short key": "key", "kind": "kind", "channel": "channel", "customer": "customer",
          "invoices": "invoices", "state": "state", "send after": "send after (UTC)",
          "snoozed until": "snoozed until (UTC)", "reason": "reason / result"}  # fmt: skip


@outbox_app.command("list")
def list_(
    ctx: typer.Context,
    tenant: TenantOpt = None,
    state_: Annotated[list[State] | None, typer.Option("--state", "-s", help="Only these states.")] = None,
    kind: Annotated[list[Kind] | None, typer.Option("--kind", "-k", help="Only these kinds.")] = None,
    customer: Annotated[
        str | None, typer.Option("--customer", "-c", help="Only this customer (name, part of one, or id).")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="Only actions to send on or after this date (YYYY-MM-DD).")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Only actions to send on or before this date (YYYY-MM-DD).")
    ] = None,
    at: Annotated[
        str | None, typer.Option("--at", help="As if it were this instant (ISO 8601): which snoozes run.")
    ] = None,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """Actions with their customer, invoices, state, send time, snooze and reason (dates: the firm's own)."""
    now = parse_at(at)
    store = state(ctx).store
    tenant_id = pick_tenant(store, tenant)
    customer_id = pick_customer(store, tenant_id, customer)[1] if customer is not None else None
    first, last = (parse_date(o, v) if v else None for o, v in (("--since", since), ("--until", until)))
    if first and last and first > last:
        raise UsageProblem(f"--since {first} is after --until {last}")
    with store.read() as conn:
        zone = ZoneInfo(get_tenant(conn, tenant_id).timezone)
        everything = outbox.actions(conn, tenant_id)
        found = [
            a for a in everything
            if (not state_ or a.state in state_) and (not kind or str(a.kind) in kind)
            and customer_id in (None, a.customer_id)
            and (first is None or a.send_after.astimezone(zone).date() >= first)
            and (last is None or a.send_after.astimezone(zone).date() <= last)
        ]  # fmt: skip
        listed = outbox.described(conn, tenant_id, found)
        snoozed = snooze.active(conn, tenant_id, now)
    short = actionkeys.shortest([a.key for a in everything])
    rows = [
        (u.action.key, short[u.action.key], u.action.kind, u.action.channel, u.customer, u.action.customer_id,
         _invoices(u), u.action.state, u.action.send_after, _snoozed_until(u.action, snoozed),
         u.action.attempts,
         u.action.reason or u.action.result or "")
        for u in listed
    ]  # fmt: skip
    filtered = any((state_, kind, customer, since, until))
    emit(fmt, "outbox", COLUMNS, rows, labels=LABELS, title=f"outbox · {tenant_id}",
         empty="no actions match" if filtered else "the outbox is empty")  # fmt: skip


def _snoozed_until(action: outbox.Action, snoozed: dict[str, snooze.Snoozed]) -> datetime | None:
    """When the action's snooze ends, if it awaits approval and is snoozed."""
    found = snoozed.get(action.key)
    return found.until if found is not None and action.state is State.AWAITING_APPROVAL else None


def _invoices(item: outbox.Unsettled) -> str:
    """`INV-1@2, INV-2@1`: each invoice number with the reminder level it is at (a note: its invoice)."""
    lines = lines_of(item.action.payload)
    if lines and item.action.kind == ActionKind.REMINDER:
        pairs = zip(item.invoices, lines, strict=False)
        return ", ".join(f"{number}@{line.get('level')}" for number, line in pairs)
    return ", ".join(item.invoices)


@outbox_app.command()
def cancel(
    ctx: typer.Context,
    keys_: Annotated[list[str], typer.Argument(metavar="KEY...", help="Action keys (or unique prefixes).")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept with the action).")] = "",
    tenant: TenantOpt = None,
) -> None:
    """Cancel actions not sent yet (awaiting approval or planned): one line per key saying what happened."""
    store = state(ctx).store
    tenant_id = pick_tenant(store, tenant)
    why = f"cancelled by a person: {reason.strip()}" if reason.strip() else "cancelled by a person"
    with store.begin() as conn:
        get_tenant(conn, tenant_id)
        wanted = actionkeys.resolve(conn, tenant_id, keys_)
        lines = []
        for typed, key in zip(keys_, wanted, strict=True):
            found = outbox.by_keys(conn, tenant_id, [key])
            if not found:
                lines.append(f"{typed}: no such action in {tenant_id!r}")
                continue
            [item] = outbox.described(conn, tenant_id, found)
            on = f" on {', '.join(item.invoices)}" if item.invoices else ""
            done = outbox.cancel(conn, tenant_id, key, why, datetime.now(UTC))
            result = "cancelled" if done else f"not cancelled, it is {item.action.state}"
            lines.append(f"{key}: {item.what} for {item.customer}{on}: {result}")
    for line in lines:
        out.print(line, markup=False)
    if len(lines) > sum(line.endswith(": cancelled") for line in lines):
        raise UsageProblem("some actions were not cancelled (see above): only those not sent yet can be")


@outbox_app.command()
def approve(
    ctx: typer.Context,
    keys: Annotated[list[str] | None, typer.Argument(help="Action keys (or prefixes) to approve.")] = None,
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
        keys = actionkeys.resolve(conn, tenant_id, keys) if keys else keys
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
    key: Annotated[str, typer.Argument(help="The unknown action's key (or a unique prefix).")],
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
        [key] = actionkeys.resolve(conn, tenant_id, [key])
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
        keys = actionkeys.resolve(conn, tenant_id, keys) if keys else keys
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
        keys = actionkeys.resolve(conn, tenant_id, keys)
        dropped = outbox.dismiss(conn, tenant_id, keys, datetime.now(UTC))
    if len(dropped) < len(keys):
        others = ", ".join(k for k in keys if k not in dropped)
        raise UsageProblem(f"dismissed {len(dropped)} of {len(keys)}; not failed in {tenant_id!r}: {others}")
    out.print(f"dismissed {len(dropped)} failed action(s)")
