"""`ccm nights [NIGHT] [-t T]`: what each night did, and everything that waits for a person.

Without NIGHT: the latest nights of every tenant (or one), from `ccm serve` and from `ccm run` alike, one line
each; scheduled nights that did not finish; then, per tenant, what needs a person now: connection-health
problems, actions that failed or whose outcome is unknown (each with the command that settles it), and
actions waiting to be tried again. With NIGHT (a local date, or `last`): that night's reports in full.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import Connection

from connector import health, nightreport, outbox
from connector.cli.app import UsageProblem, app, out, state
from connector.serve import nights as scheduled
from connector.store.tenants import get_tenant, list_tenants

LIST_MAX = 10_000
_FROM = {nightreport.SERVE: "ccm serve", nightreport.CLI: "ccm run"}
_WAITING_TODO = {
    scheduled.RETRY: "runs again by itself after the time shown",
    scheduled.CRASHED: "a fault in ccm or its database: see the server's log; it runs again at the next tick",
    scheduled.FAILED: "fix what it says, then `ccm run -t {tenant}` (or wait for the next night)",
    scheduled.DUE: "waiting for a `ccm serve` to run it",
    scheduled.RUNNING: "running now",
}


def _took(report: nightreport.Report) -> str:
    seconds = (report.finished_at - report.started_at).total_seconds()
    return f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.0f}m"


def _parse_night(value: str) -> date | None:
    if value == "last":
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageProblem(f"NIGHT: not a date (YYYY-MM-DD) or `last`: {value!r}") from None


@app.command()
def nights(
    ctx: typer.Context,
    night: Annotated[
        str | None, typer.Argument(help="Show this night in full: a local date (YYYY-MM-DD) or `last`.")
    ] = None,
    tenant: Annotated[str | None, typer.Option("--tenant", "-t", help="Only this tenant.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=LIST_MAX, help="How many nights to list.")] = 20,
) -> None:
    """What each night did (reminders, holds, failures, by name) and what waits for a person now."""
    wanted = _parse_night(night) if night is not None else None
    store = state(ctx).store
    with store.read() as conn:
        tenant_ids = (
            [get_tenant(conn, tenant).id] if tenant is not None else [t.id for t in list_tenants(conn)]
        )
        if night is None:
            _list(conn, tenant, limit)
        else:
            _show(conn, wanted, tenant)
        _waiting_nights(conn, tenant)
        _needs_a_person(conn, tenant_ids)


def _list(conn: Connection, tenant: str | None, limit: int) -> None:
    reports = nightreport.recent(conn, tenant, limit)
    if not reports:
        out.print("no nights yet: `ccm run` or `ccm serve` runs them", markup=False)
        return
    table = Table(
        "night", "tenant", "ran from", "mode", "outcome", "took", "what happened", title="ccm nights"
    )
    for r in reports:
        ran_from = _FROM.get(r.ran_from, r.ran_from)
        table.add_row(f"{r.night}", r.tenant_id, ran_from, r.mode, r.outcome, _took(r), r.headline)
    out.print(table)


def _show(conn: Connection, night: date | None, tenant: str | None) -> None:
    if night is None:
        latest = nightreport.recent(conn, tenant, 1)
        if not latest:
            out.print("no nights yet: `ccm run` or `ccm serve` runs them", markup=False)
            return
        night = latest[0].night
    reports = nightreport.of_night(conn, night, tenant)
    if not reports:
        raise UsageProblem(f"no night {night} on record" + (f" for tenant {tenant!r}" if tenant else ""))
    for r in reports:
        ran_from = _FROM.get(r.ran_from, r.ran_from)
        out.print(
            f"{r.tenant_id}: night of {r.night}, ran from {ran_from} in {r.mode} mode, {r.outcome}, "
            f"{r.started_at:%Y-%m-%d %H:%M}-{r.finished_at:%H:%M} UTC",
            markup=False,
        )
        out.print(f"  {r.headline}", markup=False)
        for title, lines in r.sections:
            out.print(f"  {title}:", markup=False)
            for line in lines:
                out.print(f"    {line}", markup=False)


def _waiting_nights(conn: Connection, tenant: str | None) -> None:
    """Scheduled nights that have not finished well: retrying, crashed, failed or not yet run."""
    latest = scheduled.latest_per_tenant(conn)
    for tenant_id, n in sorted(latest.items()):
        if tenant is not None and tenant_id != tenant:
            continue
        if n.state in (scheduled.DONE, scheduled.SUPERSEDED):
            continue
        todo = _WAITING_TODO.get(n.state, "").format(tenant=tenant_id)
        when = (
            f" (after {n.not_before:%Y-%m-%d %H:%M} UTC)"
            if n.not_before and n.state == scheduled.RETRY
            else ""
        )
        out.print(f"scheduled night {n.night} of {tenant_id}: {n.state.upper()}{when}: "
                  f"{n.summary or 'no summary'}; {todo}", markup=False)  # fmt: skip


def _needs_a_person(conn: Connection, tenant_ids: list[str]) -> None:
    lines: list[str] = []
    for tenant_id in tenant_ids:
        for issue in health.open_issues(conn, tenant_id):
            if issue.kind == health.ATTENTION:  # the actions themselves are listed next, each by name
                continue
            lines.append(f"  {tenant_id}: PROBLEM {issue.kind}: {issue.message} (since "
                         f"{_day(issue.first_seen)})")  # fmt: skip
        for item in outbox.unsettled(conn, tenant_id):
            lines.append(f"  {tenant_id}: {item.line()}")
    waiting: list[str] = []
    for tenant_id in tenant_ids:
        for item in outbox.retrying(conn, tenant_id):
            when = f"{item.action.send_after:%Y-%m-%d %H:%M} UTC"
            waiting.append(f"  {tenant_id}: {item.what} to {item.customer}{_numbers(item)}: next try {when}; "
                           f"{item.action.reason}")  # fmt: skip
    if lines:
        out.print(f"{len(lines)} thing(s) need a person:", markup=False)
        for line in lines:
            out.print(line, markup=False)
    else:
        out.print("nothing waits for a person", markup=False)
    if waiting:
        out.print(f"{len(waiting)} action(s) will be tried again by themselves:", markup=False)
        for line in waiting[:50]:
            out.print(line, markup=False)
        if len(waiting) > 50:
            out.print(f"  ... and {len(waiting) - 50} more (`ccm outbox list --state planned`)", markup=False)


def _numbers(item: outbox.Unsettled) -> str:
    return f" ({', '.join(item.invoices)})" if item.invoices else ""


def _day(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC"
