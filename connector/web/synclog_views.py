"""What /t/{tenant}/log and /t/{tenant}/log/{run} show: the sync log in a bookkeeper's words.

Read through the store's sync-log functions (`ccm log`); each change worded by connector/store/changewords.py
(records by number and customer name, money formatted), each error with its record named where the store
knows it (a record that could not be read at all keeps its ledger id, said as such).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection

from connector.store import changewords, synclog
from connector.store.changewords import Described
from connector.store.synclog import ChangeRow, ErrorRow, Run

# A stream's records, told by its name (invoices, contacts, credit_memos, overpayments, ...); else any.
_HINTS = {"invoice": ("invoice",), "customer": ("customer", "contact"), "credit_note": ("credit",),
          "payment": ("payment",)}  # fmt: skip
_GONE = "(no longer in the store)"


def total(run: Run, key: str) -> int:
    return sum(c.get(key, 0) for c in run.counts.values())


def took(run: Run) -> str:
    if run.finished_at is None:
        return "-"
    seconds = (run.finished_at - run.started_at).total_seconds()
    return f"{seconds:.1f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def summary(run: Run) -> str:
    """What the run did, in a few words (its error summary when it has one)."""
    if run.error_summary:
        return run.error_summary
    if run.finished_at is None:
        return "running, or stopped without finishing (a crash): the next run picks up from its cursors"
    counted = ((total(run, "inserted"), "new"), (total(run, "updated"), "changed"),
               (total(run, "deleted"), "deleted"))  # fmt: skip
    parts = [f"{n} {label}" for n, label in counted if n]
    return ", ".join(parts) if parts else "nothing changed"


@dataclass(frozen=True, slots=True)
class ErrorLine:
    stream: str
    record: str  # the record named, or its ledger id said as such
    reason: str


@dataclass(frozen=True)
class RunPage:
    run: Run
    changes: list[Described]  # this page of them
    change_total: int
    errors: list[ErrorLine]


def runs(conn: Connection, tenant_id: str, limit: int, offset: int) -> list[Run]:
    return synclog.runs(conn, tenant_id, limit=limit, offset=offset)


def run_count(conn: Connection, tenant_id: str) -> int:
    return synclog.run_count(conn, tenant_id)


def one(conn: Connection, tenant_id: str, run_id: int, limit: int | None, offset: int) -> RunPage | None:
    """The run of this firm (None: no such run, or another firm's), a page of its changes, all its errors."""
    run = synclog.get_run(conn, run_id, tenant_id)
    if run is None:
        return None
    found = synclog.changes(conn, tenant_id, run_id, limit=limit, offset=offset)
    words = changewords.describe(conn, tenant_id, found)
    errors = synclog.errors(conn, tenant_id, run_id)
    return RunPage(
        run, words, synclog.change_count(conn, tenant_id, run_id), _errors(conn, tenant_id, errors)
    )


def _errors(conn: Connection, tenant_id: str, errors: list[ErrorRow]) -> list[ErrorLine]:
    wanted = sorted({(e.stream, e.record_id) for e in errors if e.record_id})
    guesses = [
        ChangeRow(stream, entity, rid, "insert", {}) for stream, rid in wanted for entity in _entities(stream)
    ]
    named: dict[tuple[str, str], str] = {}
    for guess, words in zip(guesses, changewords.describe(conn, tenant_id, guesses), strict=True):
        key = (guess.stream, guess.record_id)
        if key not in named and not words.subject.endswith(_GONE):
            named[key] = words.subject
    lines = []
    for e in errors:
        if not e.record_id:
            record = "(no record id)"
        else:
            unknown = f"{e.stream} record with ledger id {e.record_id} (not in the store)"
            record = named.get((e.stream, e.record_id), unknown)
        lines.append(ErrorLine(e.stream, record, e.reason))
    return lines


def _entities(stream: str) -> tuple[str, ...]:
    hinted = tuple(entity for entity, words in _HINTS.items() if any(w in stream.lower() for w in words))
    return hinted or tuple(_HINTS)
