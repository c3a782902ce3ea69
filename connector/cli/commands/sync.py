"""`ccm sync --tenant T [--full]`, under the tenant's run lease (a lease lost mid-pull stops it after its last
committed page, as `ccm serve` stops)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from connector import lease
from connector.cli.app import Failure, UsageProblem, app, err, out, state
from connector.cli.commands.run import lost_lease
from connector.config import Settings
from connector.ledger import Ledger
from connector.mapping import CompiledMapping
from connector.store import Store, synclog
from connector.store.tenants import get_tenant
from connector.sync import PageEvent, run_sync
from connector.wiring import NotConnected, ledger_for, mapping_for


def _queue(ctx: typer.Context, store: Store, tenant_id: str) -> None:
    """Ask the running server(s) for an incremental sync of the tenant (debounced with its webhooks)."""
    from connector.serve import servers, syncqueue

    now = datetime.now(UTC)
    with store.begin() as conn:
        alive = servers.alive(conn, now)
        if not alive:
            raise Failure(
                f"no `ccm serve` is running to take it; `ccm sync -t {tenant_id}` syncs here and now"
            )
        syncqueue.add(conn, tenant_id, [None], syncqueue.NOW, now)
    if store.backend == "postgresql":  # the workers take it from the job queue (connector/jobs/engine.py)
        from connector.jobs.engine import request_sync_once

        request_sync_once(state(ctx).settings, store, tenant_id)
    where = ", ".join(s.url for s in alive)
    out.print(f"queued an incremental sync of {tenant_id} for the running server ({where}); "
              f"`ccm log -t {tenant_id}` shows it when done", markup=False)  # fmt: skip


@app.command()
def sync(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Option("--tenant", "-t", help="The tenant to sync.")],
    full: Annotated[bool, typer.Option("--full", help="Re-read everything, not just what changed.")] = False,
    now: Annotated[
        bool,
        typer.Option("--now", help="Let the running `ccm serve` do it (within seconds), not this process."),
    ] = False,
) -> None:
    """Pull customers, invoices, credit notes and payments from the tenant's ledger."""
    st = state(ctx)
    store, settings = st.store, st.settings
    with store.read() as conn:
        found = get_tenant(conn, tenant)
    if now:
        if full:
            raise UsageProblem("--now asks the server for an incremental sync; --full runs here only")
        _queue(ctx, store, found.id)
        return
    mapping = mapping_for(settings, found)
    try:
        ledger = ledger_for(settings, store, found)
    except NotConnected as exc:
        raise UsageProblem(str(exc)) from None
    try:
        with lease.kept(store, found.id, lease.new_holder(), log_loss=False) as keeper:
            _pull(found.id, store, settings, ledger, mapping, full, keeper)
    except lease.Busy as exc:
        raise Failure(str(exc)) from None


def _pull(
    found_id: str,
    store: Store,
    settings: Settings,
    ledger: Ledger,
    mapping: CompiledMapping,
    full: bool,
    keeper: lease.Keeper,
) -> None:
    with Progress(
        SpinnerColumn(), TextColumn("{task.description:<14}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[changed]} changed"), TimeElapsedColumn(), console=err, transient=False,
    ) as progress:  # fmt: skip
        tasks = {name: progress.add_task(name, total=None, changed=0) for name in mapping.streams}

        def on_page(event: PageEvent) -> None:
            task = tasks[event.stream]
            changed = progress.tasks[task].fields["changed"] + event.changed
            total = max(event.total_hint, event.read) if event.total_hint is not None else None
            progress.update(task, completed=event.read, total=total, changed=changed)

        result = run_sync(
            store, found_id, ledger, mapping, full=full, on_page=on_page,
            overlap=timedelta(seconds=settings.sync.overlap_seconds), should_stop=keeper.is_lost,
        )  # fmt: skip
        for task in tasks.values():
            if progress.tasks[task].total is None:
                progress.update(task, total=progress.tasks[task].completed or 0)

    table = Table("stream", "read", "inserted", "updated", "deleted", "errors", title=f"run {result.run_id}")
    for stream, c in result.counts.items():
        table.add_row(
            stream, *(str(c.get(k, 0)) for k in ("read", "inserted", "updated", "deleted", "errors"))
        )
    out.print(table)
    out.print(f"outcome: {result.outcome}; API calls: {result.api_calls}")
    if result.outcome == synclog.SyncOutcome.INTERRUPTED and keeper.lost.is_set():
        raise Failure(lost_lease(found_id, "the sync finished (it resumes from its last committed page)"))
    if result.outcome == synclog.SyncOutcome.FAILED:
        raise Failure(f"sync of {found_id} failed: {result.error}")
    if result.error:
        out.print(result.error)
