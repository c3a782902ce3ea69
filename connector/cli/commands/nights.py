"""`ccm nights [NIGHT] [-t T]`: what each night did, and everything that waits for a person.

Without NIGHT: the latest nights of every tenant (or one), from `ccm serve` and from `ccm run` alike, one line
each; scheduled nights that did not finish; then, per tenant, what needs a person now: connection-health
problems, actions that failed or whose outcome is unknown (each with the command that settles it), and
actions waiting to be tried again. With NIGHT (a local date, or `last`): that night's reports in full.
`--format csv|json`: the nights (kind "nights") or one night's report lines (kind "night"); JSON also holds
what waits and what needs a person.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

import typer
from sqlalchemy import Connection

from connector import health, nightreport, outbox
from connector.cli.app import UsageProblem, app, out, state
from connector.cli.output import Cell, Format, FormatOpt, emit
from connector.nightreport import RanFrom
from connector.serve import nights as scheduled
from connector.serve.nights import NightState
from connector.store.tenants import get_tenant, list_tenants

LIST_MAX = 10_000
_FROM = {RanFrom.SERVE: "ccm serve", RanFrom.CLI: "ccm run"}
_WAITING_TODO = {
    NightState.RETRY: "runs again by itself after the time shown",
    NightState.CRASHED: (
        "a fault in ccm or its database: see the server's log; it runs again at the next tick"
    ),
    NightState.FAILED: "fix what it says, then `ccm run -t {tenant}` (or wait for the next night)",
    NightState.DUE: "waiting for a `ccm serve` to run it",
    NightState.RUNNING: "running now",
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


NIGHT_COLUMNS = ("night", "tenant", "ran from", "mode", "outcome", "started", "finished", "took",
                 "what happened")  # fmt: skip
NIGHT_LABELS = {c: c for c in NIGHT_COLUMNS if c not in ("started", "finished")}
LINE_COLUMNS = ("night", "tenant", "section", "line")


@app.command()
def nights(
    ctx: typer.Context,
    night: Annotated[
        str | None, typer.Argument(help="Show this night in full: a local date (YYYY-MM-DD) or `last`.")
    ] = None,
    tenant: Annotated[str | None, typer.Option("--tenant", "-t", help="Only this tenant.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=LIST_MAX, help="How many nights to list.")] = 20,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """What each night did (reminders, holds, failures, by name) and what waits for a person now."""
    wanted = _parse_night(night) if night is not None else None
    store = state(ctx).store
    with store.read() as conn:
        tenant_ids = (
            [get_tenant(conn, tenant).id] if tenant is not None else [t.id for t in list_tenants(conn)]
        )
        reports = (
            nightreport.recent(conn, tenant, limit) if night is None else _of_night(conn, wanted, tenant)
        )
        waiting = _waiting_nights(conn, tenant)
        needs, retrying = _needs_a_person(conn, tenant_ids)
    if fmt is not Format.TABLE:
        meta = {"waiting": [dict(zip(WAITING_KEYS, w, strict=True)) for w in waiting],
                "needs_a_person": [{"tenant": t, "what": line} for t, line in needs],
                "retrying": [{"tenant": t, "what": line} for t, line in retrying]}  # fmt: skip
        if night is None:
            emit(fmt, "nights", NIGHT_COLUMNS, [_row(r) for r in reports], meta=meta)
        else:
            meta["reports"] = [
                {**dict(zip(NIGHT_COLUMNS, _row(r), strict=True)),
                 "sections": [{"title": title, "lines": list(lines)} for title, lines in r.sections]}
                for r in reports
            ]  # fmt: skip
            rows = [(r.night, r.tenant_id, title, line) for r in reports for title, lines in r.sections
                    for line in lines]  # fmt: skip
            emit(fmt, "night", LINE_COLUMNS, rows, meta=meta)
        return
    if night is None:
        emit(fmt, "nights", NIGHT_COLUMNS, [_row(r) for r in reports], labels=NIGHT_LABELS,
             title="ccm nights", empty="no nights yet: `ccm run` or `ccm serve` runs them")  # fmt: skip
    else:
        _show(reports)
    _print_waiting(waiting)
    _print_needs(needs, retrying)


def _row(r: nightreport.Report) -> tuple[Cell, ...]:
    ran_from = _FROM[r.ran_from]
    return (
        r.night,
        r.tenant_id,
        ran_from,
        r.mode,
        r.outcome,
        r.started_at,
        r.finished_at,
        _took(r),
        r.headline,
    )


def _of_night(conn: Connection, night: date | None, tenant: str | None) -> list[nightreport.Report]:
    """The reports of that night (`last`: the newest), or a one-line error when there is none."""
    if night is None:
        latest = nightreport.recent(conn, tenant, 1)
        if not latest:
            return []
        night = latest[0].night
    reports = nightreport.of_night(conn, night, tenant)
    if not reports:
        raise UsageProblem(f"no night {night} on record" + (f" for tenant {tenant!r}" if tenant else ""))
    return list(reports)


def _show(reports: list[nightreport.Report]) -> None:
    if not reports:
        out.print("no nights yet: `ccm run` or `ccm serve` runs them", markup=False)
    for r in reports:
        ran_from = _FROM[r.ran_from]
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


WAITING_KEYS = ("tenant", "night", "state", "not before", "summary", "to do")
Waiting = tuple[str, date, str, datetime | None, str, str]


def _waiting_nights(conn: Connection, tenant: str | None) -> list[Waiting]:
    """Scheduled nights that have not finished well: retrying, crashed, failed or not yet run."""
    found: list[Waiting] = []
    for tenant_id, n in sorted(scheduled.latest_per_tenant(conn).items()):
        if tenant is not None and tenant_id != tenant:
            continue
        if n.state in (NightState.DONE, NightState.SUPERSEDED):
            continue
        todo = _WAITING_TODO.get(n.state, "").format(tenant=tenant_id)
        not_before = n.not_before if n.state == NightState.RETRY else None
        found.append((tenant_id, n.night, n.state, not_before, n.summary or "", todo))
    return found


def _print_waiting(waiting: list[Waiting]) -> None:
    for tenant_id, night, state_, not_before, summary, todo in waiting:
        when = f" (after {not_before:%Y-%m-%d %H:%M} UTC)" if not_before else ""
        out.print(f"scheduled night {night} of {tenant_id}: {state_.upper()}{when}: "
                  f"{summary or 'no summary'}; {todo}", markup=False)  # fmt: skip


def _needs_a_person(
    conn: Connection, tenant_ids: list[str]
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(tenant, what) needing a person now, and (tenant, what) that will be tried again by itself."""
    needs: list[tuple[str, str]] = []
    for tenant_id in tenant_ids:
        for issue in health.open_issues(conn, tenant_id):
            if issue.kind == health.ATTENTION:  # the actions themselves are listed next, each by name
                continue
            needs.append(
                (tenant_id, f"PROBLEM {issue.kind}: {issue.message} (since {_day(issue.first_seen)})")
            )
        needs += [(tenant_id, item.line()) for item in outbox.unsettled(conn, tenant_id)]
    retrying: list[tuple[str, str]] = []
    for tenant_id in tenant_ids:
        for item in outbox.retrying(conn, tenant_id):
            when = f"{item.action.send_after:%Y-%m-%d %H:%M} UTC"
            retrying.append((tenant_id, f"{item.what} to {item.customer}{_numbers(item)}: next try {when}; "
                                        f"{item.action.reason}"))  # fmt: skip
    return needs, retrying


def _print_needs(needs: list[tuple[str, str]], retrying: list[tuple[str, str]]) -> None:
    if needs:
        out.print(f"{len(needs)} thing(s) need a person:", markup=False)
        for tenant_id, line in needs:
            out.print(f"  {tenant_id}: {line}", markup=False)
    else:
        out.print("nothing waits for a person", markup=False)
    if retrying:
        out.print(f"{len(retrying)} action(s) will be tried again by themselves:", markup=False)
        for tenant_id, line in retrying[:50]:
            out.print(f"  {tenant_id}: {line}", markup=False)
        if len(retrying) > 50:
            out.print(
                f"  ... and {len(retrying) - 50} more (`ccm outbox list --state planned`)", markup=False
            )


def _numbers(item: outbox.Unsettled) -> str:
    return f" ({', '.join(item.invoices)})" if item.invoices else ""


def _day(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M} UTC"
