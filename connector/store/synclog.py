"""The sync log: runs, per-record changes, per-record errors, and stream cursors. All scoped by tenant.

Every function runs in the caller's transaction and never commits: the sync engine writes a page's change
and error rows, its counts and the stream's cursor in the page's one transaction (connector/sync.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, func, select, update

from connector.ledger import Cursor
from connector.model import RecordError
from connector.store import bulk
from connector.store.records import RowChange
from connector.store.schema import sync_changes, sync_cursors, sync_errors, sync_runs


class SyncOutcome(StrEnum):
    """How a sync run ended (its `sync_runs.outcome`; the values are what the column stores)."""

    RUNNING = "running"  # not ended yet (or its process died: the next run of the tenant closes it)
    OK = "ok"
    PARTIAL = "partial"  # finished, but some records could not be mapped
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # stopped (a shutdown, the operator, a dead process); the next run resumes

    @property
    def read_all(self) -> bool:
        """Whether the run ended having read every stream it was asked for.

        True for ok and partial (some records could not be mapped); False for failed, interrupted and running.
        """
        return self in (SyncOutcome.OK, SyncOutcome.PARTIAL)


_CHANGE_COLUMNS = ("run_id", "tenant_id", "stream", "entity", "record_id", "op", "fields")


@dataclass(frozen=True, slots=True)
class Run:
    """One sync run as logged.

    Attributes:
        kind: full or incremental.
        outcome: running, ok, partial, failed or interrupted.
        counts: Per stream: read, inserted, updated, deleted and errors.
        error_summary: The one-line reason of a failed or interrupted run, the summary of a partial one.
    """

    run_id: int
    tenant_id: str
    kind: str
    started_at: datetime
    finished_at: datetime | None
    outcome: SyncOutcome
    counts: dict[str, dict[str, int]]
    api_calls: int
    error_summary: str | None
    trigger: str | None = None  # what started it: cli, night, webhook, poll, now, send

    @property
    def error_count(self) -> int:
        """Records that could not be mapped, over every stream of the run."""
        return sum(c.get("errors", 0) for c in self.counts.values())


@dataclass(frozen=True, slots=True)
class ChangeRow:
    """A logged change of one record (see `records.RowChange`), with the stream that brought it."""

    stream: str
    entity: str
    record_id: str
    op: str
    fields: dict[str, list[str | None]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ErrorRow:
    """A raw record a run could not map: its id when it had one, why, and when."""

    stream: str
    record_id: str | None
    reason: str
    at: datetime


def _now() -> datetime:
    return datetime.now(UTC)


def start_run(
    conn: Connection, tenant_id: str, kind: str, started_at: datetime, trigger: str | None = None
) -> int:
    """Open a run row; runs of this tenant still 'running' belong to a dead process and are closed.

    The caller holds the tenant's run lease, so no live process is syncing this tenant.
    """
    conn.execute(
        update(sync_runs)
        .where(sync_runs.c.tenant_id == tenant_id, sync_runs.c.outcome == SyncOutcome.RUNNING)
        .values(outcome=SyncOutcome.INTERRUPTED, finished_at=started_at,
                error_summary="the process stopped before this run finished; later runs resumed it")
    )  # fmt: skip
    result = conn.execute(
        sync_runs.insert().values(
            tenant_id=tenant_id,
            kind=kind,
            started_at=started_at,
            outcome=SyncOutcome.RUNNING,
            counts={},
            api_calls=0,
            trigger=trigger,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def record_page(
    conn: Connection,
    tenant_id: str,
    run_id: int,
    stream: str,
    changes: Sequence[RowChange],
    errors: Sequence[RecordError],
    read: int,
    api_calls: int,
) -> None:
    """Write a page's change and error rows and add its counts to the run (in the page's transaction)."""
    if changes:
        rows = [
            {"run_id": run_id, "tenant_id": tenant_id, "stream": stream, "entity": c.entity,
             "record_id": c.record_id, "op": c.op, "fields": c.fields}
            for c in changes
        ]  # fmt: skip
        bulk.executemany(
            conn, "insert:sync_changes", sync_changes.insert, sync_changes, rows, _CHANGE_COLUMNS
        )
    if errors:
        at = _now()
        conn.execute(
            sync_errors.insert(),
            [
                {"run_id": run_id, "tenant_id": tenant_id, "stream": e.stream, "record_id": e.record_id,
                 "reason": e.reason, "at": at}
                for e in errors
            ],
        )  # fmt: skip
    row = conn.execute(
        select(sync_runs.c.counts, sync_runs.c.api_calls).where(
            sync_runs.c.tenant_id == tenant_id, sync_runs.c.run_id == run_id
        )
    ).one()
    counts: dict[str, dict[str, int]] = {k: dict(v) for k, v in (row.counts or {}).items()}
    mine = counts.setdefault(stream, {"read": 0, "inserted": 0, "updated": 0, "deleted": 0, "errors": 0})
    mine["read"] += read
    mine["errors"] += len(errors)
    for c in changes:
        mine[{"insert": "inserted", "update": "updated", "delete": "deleted"}[c.op]] += 1
    conn.execute(
        update(sync_runs)
        .where(sync_runs.c.tenant_id == tenant_id, sync_runs.c.run_id == run_id)
        .values(counts=counts, api_calls=row.api_calls + api_calls)
    )


def finish_run(
    conn: Connection,
    tenant_id: str,
    run_id: int,
    outcome: SyncOutcome,
    error_summary: str | None = None,
    at: datetime | None = None,
) -> None:
    """Close a run with its outcome (ok, partial, failed, interrupted) at `at` (default: now)."""
    conn.execute(
        update(sync_runs)
        .where(sync_runs.c.tenant_id == tenant_id, sync_runs.c.run_id == run_id)
        .values(outcome=outcome, finished_at=at or _now(), error_summary=error_summary)
    )


def _run(row: Any) -> Run:
    return Run(
        run_id=row.run_id, tenant_id=row.tenant_id, kind=row.kind, started_at=row.started_at,
        finished_at=row.finished_at, outcome=SyncOutcome(row.outcome), counts=row.counts or {},
        api_calls=row.api_calls, error_summary=row.error_summary, trigger=row.trigger,
    )  # fmt: skip


def runs(
    conn: Connection,
    tenant_id: str | None = None,
    failed_only: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> list[Run]:
    """Logged runs, newest first, `limit` of them from `offset`.

    Args:
        tenant_id: Only this tenant's; None lists every tenant's runs (the bookkeeper's overview).
        failed_only: Only runs that did not end ok: failed, partial and interrupted.
    """
    query = select(sync_runs).order_by(sync_runs.c.run_id.desc()).limit(limit).offset(offset)
    if tenant_id is not None:
        query = query.where(sync_runs.c.tenant_id == tenant_id)
    if failed_only:
        query = query.where(
            sync_runs.c.outcome.in_([SyncOutcome.FAILED, SyncOutcome.PARTIAL, SyncOutcome.INTERRUPTED])
        )
    return [_run(r) for r in conn.execute(query)]


def get_run(conn: Connection, run_id: int, tenant_id: str | None = None) -> Run | None:
    """The run with this id; None if there is none (or it is another tenant's, when `tenant_id` is given)."""
    query = select(sync_runs).where(sync_runs.c.run_id == run_id)
    if tenant_id is not None:
        query = query.where(sync_runs.c.tenant_id == tenant_id)
    row = conn.execute(query).first()
    return _run(row) if row else None


def changes(
    conn: Connection, tenant_id: str, run_id: int, limit: int | None = None, offset: int = 0
) -> list[ChangeRow]:
    """The run's changes in the order they were written, a page of them with `limit` and `offset`."""
    c = sync_changes.c
    query = (
        select(c.stream, c.entity, c.record_id, c.op, c.fields)
        .where(c.tenant_id == tenant_id, c.run_id == run_id)
        .order_by(c.change_id)
        .limit(limit)
        .offset(offset)
    )
    return [ChangeRow(r.stream, r.entity, r.record_id, r.op, r.fields or {}) for r in conn.execute(query)]


def run_count(conn: Connection, tenant_id: str) -> int:
    """How many runs the tenant has logged, whatever their outcome."""
    query = select(func.count()).where(sync_runs.c.tenant_id == tenant_id)
    return int(conn.execute(query).scalar_one())


def change_count(conn: Connection, tenant_id: str, run_id: int) -> int:
    """How many changes the run logged (for paging `changes`)."""
    c = sync_changes.c
    query = select(func.count()).where(c.tenant_id == tenant_id, c.run_id == run_id)
    return int(conn.execute(query).scalar_one())


def errors(conn: Connection, tenant_id: str, run_id: int) -> list[ErrorRow]:
    """The run's record errors in the order they were written."""
    e = sync_errors.c
    query = (
        select(e.stream, e.record_id, e.reason, e.at)
        .where(e.tenant_id == tenant_id, e.run_id == run_id)
        .order_by(e.error_id)
    )
    return [ErrorRow(r.stream, r.record_id, r.reason, r.at) for r in conn.execute(query)]


def get_cursor(conn: Connection, tenant_id: str, stream: str) -> Cursor | None:
    """Where the stream's next incremental pull resumes; None when it was never synced (or was reset)."""
    c = sync_cursors.c
    text = conn.execute(select(c.cursor).where(c.tenant_id == tenant_id, c.stream == stream)).scalar()
    return Cursor.from_json(text) if text else None


def set_cursor(conn: Connection, tenant_id: str, stream: str, cursor: Cursor) -> None:
    """Store where the stream's next pull resumes, replacing the stream's cursor.

    Write it in the same transaction as the page it follows, so a cursor never passes what was committed.
    """
    c = sync_cursors.c
    values = {"cursor": cursor.to_json(), "updated_at": _now()}
    done = conn.execute(
        update(sync_cursors).where(c.tenant_id == tenant_id, c.stream == stream).values(**values)
    )
    if done.rowcount == 0:
        conn.execute(sync_cursors.insert().values(tenant_id=tenant_id, stream=stream, **values))


def clear_cursors(conn: Connection, tenant_id: str) -> None:
    """Forget every stream's cursor of the tenant: its next sync reads everything again."""
    conn.execute(sync_cursors.delete().where(sync_cursors.c.tenant_id == tenant_id))
