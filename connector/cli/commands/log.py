"""`ccm log [--tenant T] [--failed]` and `ccm log RUN_ID`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table

from connector.cli.app import UsageProblem, app, out, state
from connector.store import changewords, synclog
from connector.store.tenants import get_tenant

_CHANGES_SHOWN = 200
RUN_ID_MAX = 2**63 - 1  # the store's run ids are 64-bit; a larger one is bad input, not an OverflowError
LIST_MAX = 1_000_000


def _duration(run: synclog.Run) -> str:
    if run.finished_at is None:
        return "-"
    seconds = (run.finished_at - run.started_at).total_seconds()
    return f"{seconds:.1f}s" if seconds < 120 else f"{seconds / 60:.1f}m"


def _total(run: synclog.Run, key: str) -> int:
    return sum(c.get(key, 0) for c in run.counts.values())


def _summary(run: synclog.Run) -> str:
    """What a run without errors did, in a few words (a log's summary is never empty)."""
    if run.finished_at is None:
        return "running, or stopped without finishing (a crash): the next run picks up from its cursors"
    counted = ((_total(run, "inserted"), "new"), (_total(run, "updated"), "changed"),
               (_total(run, "deleted"), "deleted"))  # fmt: skip
    parts = [f"{n} {label}" for n, label in counted if n]
    return ", ".join(parts) if parts else "nothing changed"


def _when(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M:%S}"


@app.command()
def log(
    ctx: typer.Context,
    run_id: Annotated[
        int | None, typer.Argument(min=1, max=RUN_ID_MAX, help="Show one run in detail.")
    ] = None,
    tenant: Annotated[str | None, typer.Option("--tenant", "-t", help="Only this tenant's runs.")] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Only runs that failed or had errors.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=LIST_MAX, help="How many runs to list.")] = 50,
) -> None:
    """The sync log: runs as a table, or one run's counts, changes and errors."""
    store = state(ctx).store
    with store.read() as conn:
        if tenant is not None:
            get_tenant(conn, tenant)
        if run_id is not None:
            _one(conn, run_id, tenant)
            return
        runs = synclog.runs(conn, tenant, failed_only=failed, limit=limit)
    if not runs:
        out.print("no runs yet" if not failed else "no failed runs")
        return
    table = Table("run", "tenant", "kind", "why", "started (UTC)", "took", "outcome", "read", "changed",
                  "errors", "API calls", "summary")  # fmt: skip
    for r in runs:
        changed = _total(r, "inserted") + _total(r, "updated") + _total(r, "deleted")
        table.add_row(
            str(r.run_id), r.tenant_id, r.kind, r.trigger or "-", _when(r.started_at), _duration(r),
            r.outcome, str(_total(r, "read")), str(changed), str(r.error_count), str(r.api_calls),
            r.error_summary or _summary(r),
        )  # fmt: skip
    out.print(table)


def _one(conn: object, run_id: int, tenant: str | None) -> None:
    from sqlalchemy import Connection

    assert isinstance(conn, Connection)
    run = synclog.get_run(conn, run_id, tenant)
    if run is None:
        raise UsageProblem(f"unknown run {run_id}" + (f" for tenant {tenant!r}" if tenant else ""))
    out.print(
        f"run {run.run_id} · tenant {run.tenant_id} · {run.kind} · started {_when(run.started_at)} UTC · "
        f"took {_duration(run)} · {run.outcome} · {run.api_calls} API calls"
    )
    if run.error_summary:
        out.print(f"summary: {run.error_summary}")
    counts = Table("stream", "read", "inserted", "updated", "deleted", "errors", title="counts")
    for stream, c in run.counts.items():
        counts.add_row(
            stream, *(str(c.get(k, 0)) for k in ("read", "inserted", "updated", "deleted", "errors"))
        )
    out.print(counts)
    total = synclog.change_count(conn, run.tenant_id, run.run_id)
    changes = synclog.changes(conn, run.tenant_id, run.run_id, limit=_CHANGES_SHOWN)
    if changes:
        table = Table("stream", "record", "what changed", title=f"changes ({total})")
        for ch, words in zip(changes, changewords.describe(conn, run.tenant_id, changes), strict=True):
            table.add_row(ch.stream, words.subject, words.what)
        out.print(table)
        if total > len(changes):
            out.print(f"… and {total - len(changes)} more changes")
    errors = synclog.errors(conn, run.tenant_id, run.run_id)
    if errors:
        table = Table("stream", "record", "reason", title=f"errors ({len(errors)})")
        for e in errors:
            table.add_row(e.stream, e.record_id or "(no id)", e.reason)
        out.print(table)
