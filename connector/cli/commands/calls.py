"""`ccm calls`, `ccm call done`, `ccm outbox snooze`: call tasks from the terminal, approvals put aside.

`ccm calls [-t T]` lists the call tasks still to do: customer, phone, invoices, amounts, what to say and from
when the call is due. `ccm call done KEY --outcome promise|dispute|no-answer|paid [--note TEXT] [--until DATE
--amount X]` records what came of one (a key prefix is enough when unique): a promise suspends reminders until
its date, a dispute stops chasing the task's invoices (connector/calls.py). `ccm outbox snooze KEY... --until
DATE` puts actions awaiting approval aside until then (connector/snooze.py).
"""

from __future__ import annotations

import getpass
from datetime import UTC, date, datetime, time
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from connector import calls, snooze
from connector.cli import actionkeys
from connector.cli.app import UsageProblem, app, out, state
from connector.cli.commands.outbox import outbox_app
from connector.cli.commands.run import parse_at
from connector.cli.options import TenantOpt, pick_tenant
from connector.cli.output import Cell, Format, FormatOpt, emit
from connector.store.tenants import get_tenant

call_app = typer.Typer(help="Call tasks: record what came of a call.", no_args_is_help=True)
app.add_typer(call_app, name="call")
AtOpt = Annotated[
    str | None, typer.Option("--at", help="The moment it happens (ISO 8601 UTC; default now).", hidden=True)
]


def _who() -> str:
    try:
        return f"cli:{getpass.getuser()}"[:64]
    except (KeyError, OSError):  # no user name in the environment (a container)
        return "cli"


@app.command("calls")
def calls_(
    ctx: typer.Context,
    tenant: TenantOpt = None,
    done: Annotated[bool, typer.Option("--done", help="Also the calls whose outcome is recorded.")] = False,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """The call tasks still to do: whom to call, on which number, about which invoices, and what to say."""
    store = state(ctx).store
    tenant_id = pick_tenant(store, tenant)
    with store.read() as conn:
        firm = get_tenant(conn, tenant_id)
        found = calls.tasks(conn, tenant_id, done=done)
    rows: list[tuple[Cell, ...]] = [
        (
            t.key, t.customer, t.phone or "no phone number on record", ", ".join(t.invoices),
            "; ".join(f"{line.number} {calls.money(line.amount)}" for line in t.lines), t.total,
            t.script(firm.name), t.due, t.outcome.words() if t.outcome else "",
        )
        for t in found
    ]  # fmt: skip
    if fmt is not Format.TABLE:
        columns = (
            "key",
            "customer",
            "phone",
            "invoices",
            "amounts",
            "total",
            "what to say",
            "due",
            "outcome",
        )
        emit(fmt, "calls", columns, rows, meta={"tenant": tenant_id})
        return
    if not found:
        out.print(f"no calls to make for {firm.name}", markup=False)
        return
    for t in found:  # a call reads better as a card than as a table row: what to say is a paragraph
        due = f"{t.level_name}; due from {t.due:%Y-%m-%d %H:%M} UTC"
        on = f" on {t.phone} ({due})" if t.phone else f" ({due}; no phone number on record)"
        out.print(f"Call {t.customer}{on}", markup=False)
        for line in t.lines:
            out.print(f"  {line.words()}", markup=False)
        out.print(f"  total: {t.total}", markup=False)
        out.print(f"  what to say: {t.script(firm.name)}", markup=False)
        if t.outcome is not None:
            by = f"{t.outcome.by}, {t.outcome.at:%Y-%m-%d %H:%M} UTC"
            out.print(f"  outcome: {t.outcome.words()} ({by})", markup=False)
        else:
            out.print(f"  then: ccm call done {t.key} --outcome promise|dispute|no-answer|paid", markup=False)
        out.print("")


@call_app.command("done")
def done_(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="The call task's key (a unique prefix is enough).")],
    outcome: Annotated[
        str, typer.Option("--outcome", help="promise, dispute, no-answer or paid.", show_default=False)
    ],
    note: Annotated[str, typer.Option("--note", "-n", help="What was said, in a few words.")] = "",
    until: Annotated[
        str | None, typer.Option("--until", help="A promise: the date they will pay by (YYYY-MM-DD).")
    ] = None,
    amount: Annotated[
        str | None, typer.Option("--amount", help="A promise: the amount, e.g. 250.00.")
    ] = None,
    tenant: TenantOpt = None,
    at: AtOpt = None,
) -> None:
    """Record what came of a call; a promise or a dispute is applied to chasing at once."""
    store = state(ctx).store
    tenant_id = pick_tenant(store, tenant)
    now = parse_at(at)
    day: date | None = None
    if until is not None:
        try:
            day = date.fromisoformat(until)
        except ValueError:
            raise UsageProblem(f"--until: not a date (expected YYYY-MM-DD): {until!r}") from None
    with store.begin() as conn:
        firm = get_tenant(conn, tenant_id)
        today = now.astimezone(ZoneInfo(firm.timezone)).date()
        try:
            task = calls.record(conn, firm, key, outcome, note=note, until=day, amount=amount, by=_who(),
                                today=today, now=now)  # fmt: skip
        except calls.CallProblem as exc:
            raise UsageProblem(str(exc)) from None
    assert task.outcome is not None
    then = {
        "promise": "reminders wait until then",
        "dispute": f"{', '.join(task.invoices)} not chased while disputed",
        "no-answer": "kept in the customer's history",
        "paid": "chasing stops once the payment is in the ledger",
    }[outcome]
    out.print(f"{task.customer}: {task.outcome.words()}; {then}", markup=False)


def _until(text: str, timezone: str) -> datetime:
    """`--until` as a UTC instant: a date means the start of that day where the firm is."""
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(0), ZoneInfo(timezone)).astimezone(UTC)
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise UsageProblem(
            f"--until: not a date or date-time (e.g. 2026-12-24 or 2026-12-24T09:00): {text!r}"
        ) from None
    return (
        parsed.replace(tzinfo=ZoneInfo(timezone)).astimezone(UTC)
        if parsed.tzinfo is None
        else parsed.astimezone(UTC)
    )


@outbox_app.command("snooze")
def snooze_(
    ctx: typer.Context,
    keys: Annotated[
        list[str], typer.Argument(help="Keys (or unique prefixes) of actions awaiting approval.")
    ],
    until: Annotated[
        str,
        typer.Option("--until", help="Until when: YYYY-MM-DD (the firm's midnight) or a local date-time."),
    ],
    tenant: TenantOpt = None,
    at: AtOpt = None,
) -> None:
    """Put actions awaiting approval aside until a time: off the approval list and never sent before it."""
    store = state(ctx).store
    tenant_id = pick_tenant(store, tenant)
    now = parse_at(at)
    with store.begin() as conn:
        firm = get_tenant(conn, tenant_id)
        when = _until(until, firm.timezone)
        keys = actionkeys.resolve(conn, tenant_id, keys)  # a unique prefix, as `ccm outbox list` shows it
        try:
            done = snooze.snooze(conn, tenant_id, keys, when, _who(), now)
        except snooze.SnoozeProblem as exc:
            raise UsageProblem(f"--until: {exc}") from None
    missed = [k for k in keys if k not in done]
    if missed:
        left = ", ".join(missed[:5]) + (f" and {len(missed) - 5} more" if len(missed) > 5 else "")
        if not done:
            raise UsageProblem(f"not awaiting approval (or no such key): {left}; nothing snoozed")
        out.print(f"not awaiting approval (or no such key), left alone: {left}", markup=False)
    local = when.astimezone(ZoneInfo(firm.timezone))
    out.print(f"{len(done)} action(s) snoozed until {local:%Y-%m-%d %H:%M %Z}", markup=False)
