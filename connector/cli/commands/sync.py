"""`ccm sync --tenant T [--full]`."""

from __future__ import annotations

from datetime import timedelta
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

from connector.cli.app import Failure, UsageProblem, app, err, out, state
from connector.runtime import NotConnected, ledger_for, mapping_for
from connector.store import synclog
from connector.store.tenants import get_tenant
from connector.sync import PageEvent, run_sync


@app.command()
def sync(
    ctx: typer.Context,
    tenant: Annotated[str, typer.Option("--tenant", "-t", help="The tenant to sync.")],
    full: Annotated[bool, typer.Option("--full", help="Re-read everything, not just what changed.")] = False,
) -> None:
    """Pull customers, invoices, credit notes and payments from the tenant's ledger."""
    st = state(ctx)
    store, settings = st.store, st.settings
    with store.read() as conn:
        found = get_tenant(conn, tenant)
    mapping = mapping_for(settings, found)
    try:
        ledger = ledger_for(settings, store, found)
    except NotConnected as exc:
        raise UsageProblem(str(exc)) from None

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
            store, found.id, ledger, mapping, full=full, on_page=on_page,
            overlap=timedelta(seconds=settings.sync.overlap_seconds),
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
    if result.outcome == synclog.FAILED:
        raise Failure(f"sync of {found.id} failed: {result.error}")
    if result.error:
        out.print(result.error)
