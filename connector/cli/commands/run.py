"""`ccm run [--tenant T] [--dry-run] [--approve]`: a tenant's whole night, with progress and a summary.

Each tenant runs under its run lease, kept on the real clock as `ccm serve` keeps it (`--at` moves the
night, never the lease); a lease lost mid-run (the process was frozen and a server took the firm over)
stops the tenant at its next safe point, with one line saying so.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TaskID, TextColumn
from rich.table import Table

from connector import lease, nightreport, outbox
from connector.cli.app import Failure, UsageProblem, app, err, out, state
from connector.ledger import LedgerError
from connector.mail import TemplateProblem
from connector.outbox import Mode
from connector.run.execute import Outcome
from connector.run.night import NightSummary, for_night_at, night_held
from connector.store import Store, synclog
from connector.store.tenants import list_tenants
from connector.sync import PageEvent
from connector.wiring import NotConnected


def parse_at(value: str | None) -> datetime:
    """`--at` as a UTC instant (ISO 8601; naive means UTC), default now."""
    if value is None:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise UsageProblem(
            f"--at: not an ISO date-time (e.g. 2026-11-24T09:30:00+00:00): {value!r}"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def lost_lease(tenant_id: str, before: str) -> str:
    """The one line of a command that lost its tenant's run lease and stopped at a safe point."""
    return f"lost the lease on tenant {tenant_id!r} (another process may run it now); stopped before {before}"


def before_sending(outcome: Outcome | None) -> str:
    """What an execution that stopped early did not do."""
    if outcome is None:
        return "sending anything"
    done = (len(outcome.sent) + len(outcome.tasks) + len(outcome.notices) + len(outcome.holds)
            + len(outcome.releases) + outcome.notes)  # fmt: skip
    return f"sending the rest ({done} sent or written)" if done else "sending anything"


def _night_before(summary: NightSummary) -> str:
    if summary.sync is not None and summary.sync.outcome == synclog.SyncOutcome.INTERRUPTED:
        return "the sync finished; nothing was planned or sent"
    return before_sending(summary.outcome)


def summary_table(summaries: list[NightSummary]) -> Table:
    columns = ("tenant", "synced", "changed", "discrepancies", "planned", "sent", "call tasks", "skipped",
               "cancelled", "deferred", "failed", "unknown", "notes", "holds", "releases",
               "API calls")  # fmt: skip
    table = Table(*columns, title="ccm run")
    for s in summaries:
        counts = s.sync.counts.values() if s.sync else []
        read = sum(c.get("read", 0) for c in counts)
        changed = sum(c.get("inserted", 0) + c.get("updated", 0) + c.get("deleted", 0) for c in counts)
        o = s.outcome
        planned = len(s.plan.actions) if s.plan else 0
        table.add_row(
            s.tenant_id, str(read), str(changed), str(s.discrepancies), str(planned),
            str(len(o.sent)) if o else "-", str(len(o.tasks)) if o else "-", str(sum(s.skipped.values())),
            str(len(o.cancelled)) if o else "-", str(len(o.deferred)) if o else "-",
            str(len(o.failed)) if o else "-", str(len(o.unknown)) if o else "-", str(o.notes) if o else "-",
            str(len(o.holds)) if o else "-", str(len(o.releases)) if o else "-", str(s.api_calls),
        )  # fmt: skip
    return table


def print_unsettled(store: Store, tenant_ids: list[str]) -> None:
    """Every action still waiting for a person (unknown or failed), by customer and invoice, with what to do;
    at the end of every run, until someone settles it."""
    with store.read() as conn:
        waiting = [(t, item) for t in tenant_ids for item in outbox.unsettled(conn, t)]
    if waiting:
        out.print(f"{len(waiting)} action(s) need a person:", markup=False)
    for tenant_id, item in waiting:
        out.print(f"  {tenant_id}: {item.line()}", markup=False)


def print_details(summary: NightSummary) -> None:
    if summary.skipped:
        reasons = Table("skipped because", "invoices", title=f"{summary.tenant_id}: reminders not sent")
        for reason, count in summary.skipped.most_common():
            reasons.add_row(reason, str(count))
        out.print(reasons)
    if summary.plan and summary.plan.evaluation.flags:
        for flag in summary.plan.evaluation.flags:
            out.print(f"[bookkeeper] {flag}", markup=False)
    if summary.outcome:
        for key, reason in summary.outcome.cancelled:
            out.print(f"cancelled {key}: {reason}", markup=False)
        for key, reason in summary.outcome.deferred[:20]:
            out.print(f"deferred {key}: {reason}", markup=False)
        # failed and unknown ones: listed by name at the end (print_unsettled), with what to do
    for issue in summary.health:
        out.print(f"[health] {summary.tenant_id}: {issue.kind}: {issue.message}", markup=False)
    if summary.outcome and summary.outcome.notices:
        out.print(f"{summary.tenant_id}: told the firm's contact about it ({len(summary.outcome.notices)} "
                  "notice e-mail(s))", markup=False)  # fmt: skip
    for decision in summary.holds:
        who = decision.name or decision.customer_id
        out.print(f"{decision.action} {who}: {decision.reason}", markup=False)
    for note in summary.notes:
        out.print(f"{summary.tenant_id}: {note}", markup=False)
    if summary.stopped:
        out.print(f"{summary.tenant_id} stopped: {summary.stopped}", markup=False)


@app.command()
def run(
    ctx: typer.Context,
    tenant: Annotated[
        list[str] | None, typer.Option("--tenant", "-t", help="Tenant(s) to run (default: all).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Plan and show; store and send nothing.")
    ] = False,
    approve: Annotated[
        bool, typer.Option("--approve", help="Plan for approval (`ccm outbox approve`).")
    ] = False,
    no_sync: Annotated[
        bool, typer.Option("--no-sync", help="Use what the store holds; do not pull.")
    ] = False,
    at: Annotated[str | None, typer.Option("--at", help="Run as if it were this instant (ISO 8601).")] = None,
) -> None:
    """Sync, reconcile, plan and send reminders for each tenant; prints what happened and why."""
    if dry_run and approve:
        raise UsageProblem("--dry-run and --approve exclude each other")
    mode = Mode.DRY_RUN if dry_run else Mode.APPROVE if approve else None  # None: the firm's own
    now = parse_at(at)
    st = state(ctx)
    store, settings = st.store, st.settings
    with store.read() as conn:
        known = [t.id for t in list_tenants(conn)]
    chosen = tenant or known
    for t in chosen:
        if t not in known:
            raise UsageProblem(f"unknown tenant {t!r} (see `ccm tenants list`)")
    summaries: list[NightSummary] = []
    problems: list[str] = []
    lost: list[str] = []
    with Progress(SpinnerColumn(), TextColumn("{task.description:<24}"), BarColumn(), MofNCompleteColumn(),
                  console=err, transient=True, disable=not err.is_terminal) as progress:  # fmt: skip
        for tenant_id in chosen:
            task = progress.add_task(f"{tenant_id}: syncing", total=None)

            def on_page(event: PageEvent, task: TaskID = task, tenant_id: str = tenant_id) -> None:
                progress.update(task, description=f"{tenant_id}: {event.stream}", completed=event.read,
                                total=event.total_hint)  # fmt: skip

            holder = lease.new_holder()
            began = time.perf_counter()
            try:
                with lease.kept(store, tenant_id, holder, log_loss=False) as keeper:
                    summary = night_held(
                        store, settings, tenant_id, now=now, holder=holder, mode=mode, sync=not no_sync,
                        on_page=on_page, should_stop=keeper.is_lost,
                    )  # fmt: skip
                if summary.stopped and keeper.lost.is_set():
                    summary.stopped = lost_lease(tenant_id, _night_before(summary))
                    lost.append(summary.stopped)
                ran: NightSummary | None = summary
            except (lease.Busy, NotConnected, TemplateProblem, LedgerError) as exc:
                problems.append(f"{tenant_id}: {exc}")
                summary, ran = NightSummary(tenant_id, stopped=str(exc)), None
                busy = isinstance(exc, lease.Busy)  # another holder runs this night: its record is theirs
            else:
                busy = False
            used = ran.mode if ran is not None else for_night_at(store, settings, tenant_id, now, mode).mode
            if used is not Mode.DRY_RUN and not busy:  # a dry run is a look, not a night: it leaves no record
                finished = now + timedelta(seconds=time.perf_counter() - began)
                nightreport.record(store, tenant_id, ran, ran_from=nightreport.RanFrom.CLI, mode=used,
                                   started_at=now, finished_at=finished, problem=summary.stopped)  # fmt: skip
            summaries.append(summary)
            progress.update(task, visible=False)
    out.print(summary_table(summaries))
    for summary in summaries:
        print_details(summary)
    print_unsettled(store, chosen)
    failed = [s for s in summaries if s.stopped]
    if lost:  # the one line that matters: another process may be running these firms now
        others = [f"{s.tenant_id}: {s.stopped}" for s in failed if s.stopped not in lost]
        raise Failure("; ".join(lost + others))
    if failed:
        raise Failure(f"{len(failed)} of {len(summaries)} tenant(s) stopped: " + "; ".join(
            f"{s.tenant_id}: {s.stopped}" for s in failed))  # fmt: skip
