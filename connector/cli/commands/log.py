"""`ccm log [--tenant T] [--failed]` and `ccm log RUN_ID`, as a table, CSV or JSON.

JSON of one run (kind "run"): the run's fields, its counts per stream, and rows of its changes (in words,
records named) and errors, each with its section; CSV holds those rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import Connection

from connector.cli.app import UsageProblem, app, out, state
from connector.cli.output import Cell, Format, FormatOpt, emit
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


RUN_COLUMNS = ("run", "tenant", "kind", "why", "started", "finished", "took", "outcome", "read", "changed",
               "errors", "api calls", "summary")  # fmt: skip
RUN_LABELS = {"run": "run", "tenant": "tenant", "kind": "kind", "why": "why", "started": "started (UTC)",
              "took": "took", "outcome": "outcome", "read": "read", "changed": "changed", "errors": "errors",
              "api calls": "API calls", "summary": "summary"}  # fmt: skip
DETAIL_COLUMNS = ("section", "stream", "record", "what")
COUNT_KEYS = ("read", "inserted", "updated", "deleted", "errors")


@app.command()
def log(
    ctx: typer.Context,
    run_id: Annotated[
        int | None, typer.Argument(min=1, max=RUN_ID_MAX, help="Show one run in detail.")
    ] = None,
    tenant: Annotated[str | None, typer.Option("--tenant", "-t", help="Only this tenant's runs.")] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Only runs that failed or had errors.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=LIST_MAX, help="How many runs to list.")] = 50,
    fmt: FormatOpt = Format.TABLE,
) -> None:
    """The sync log: runs as a table, or one run's counts, changes and errors."""
    store = state(ctx).store
    with store.read() as conn:
        if tenant is not None:
            get_tenant(conn, tenant)
        if run_id is not None:
            _one(conn, run_id, tenant, fmt)
            return
        runs = synclog.runs(conn, tenant, failed_only=failed, limit=limit)
    rows = [
        (r.run_id, r.tenant_id, r.kind, r.trigger, r.started_at, r.finished_at, _duration(r), r.outcome,
         _total(r, "read"), _total(r, "inserted") + _total(r, "updated") + _total(r, "deleted"),
         r.error_count, r.api_calls, r.error_summary or _summary(r))
        for r in runs
    ]  # fmt: skip
    emit(
        fmt,
        "runs",
        RUN_COLUMNS,
        rows,
        labels=RUN_LABELS,
        empty="no runs yet" if not failed else "no failed runs",
    )


def _one(conn: Connection, run_id: int, tenant: str | None, fmt: Format) -> None:
    run = synclog.get_run(conn, run_id, tenant)
    if run is None:
        raise UsageProblem(f"unknown run {run_id}" + (f" for tenant {tenant!r}" if tenant else ""))
    total = synclog.change_count(conn, run.tenant_id, run.run_id)
    changes = synclog.changes(conn, run.tenant_id, run.run_id, limit=_CHANGES_SHOWN)
    words = changewords.describe(conn, run.tenant_id, changes)
    errors = synclog.errors(conn, run.tenant_id, run.run_id)
    if fmt is not Format.TABLE:
        rows: list[tuple[Cell, ...]] = [
            ("change", ch.stream, w.subject, w.what) for ch, w in zip(changes, words, strict=True)
        ]
        rows += [("error", e.stream, e.record_id, e.reason) for e in errors]
        meta = {
            "run": run.run_id, "tenant": run.tenant_id, "run_kind": run.kind, "why": run.trigger,
            "started": run.started_at, "finished": run.finished_at, "outcome": run.outcome,
            "api_calls": run.api_calls, "summary": run.error_summary or _summary(run),
            "counts": {stream: {k: c.get(k, 0) for k in COUNT_KEYS} for stream, c in run.counts.items()},
            "changes_total": total, "changes_listed": len(changes),
        }  # fmt: skip
        emit(fmt, "run", DETAIL_COLUMNS, rows, meta=meta)
        return
    out.print(
        f"run {run.run_id} · tenant {run.tenant_id} · {run.kind} · started {_when(run.started_at)} UTC · "
        f"took {_duration(run)} · {run.outcome} · {run.api_calls} API calls"
    )
    if run.error_summary:
        out.print(f"summary: {run.error_summary}")
    counts = Table("stream", "read", "inserted", "updated", "deleted", "errors", title="counts")
    for stream, c in run.counts.items():
        counts.add_row(stream, *(str(c.get(k, 0)) for k in COUNT_KEYS))
    out.print(counts)
    if changes:
        table = Table("stream", "record", "what changed", title=f"changes ({total})")
        for ch, w in zip(changes, words, strict=True):
            table.add_row(ch.stream, w.subject, w.what)
        out.print(table)
        if total > len(changes):
            out.print(f"… and {total - len(changes)} more changes")
    if errors:
        table = Table("stream", "record", "reason", title=f"errors ({len(errors)})")
        for e in errors:
            table.add_row(e.stream, e.record_id or "(no id)", e.reason)
        out.print(table)
