"""The pull engine: pages → mapping → upsert → change rows → cursor, one transaction per page.

A page's rows, its change and error rows, the run's counts and the stream's cursor commit together, so a
crash at any instant loses nothing and duplicates nothing: the next run resumes after the last committed
page. Stored cursors never pass the moment the pull started, less an overlap (re-reading the overlap is
harmless: upserts are keyed and unchanged records write nothing).

A full sync also makes the store equal the ledger: once every stream that feeds an entity has been read to
its end in the run, the entity's live records the ledger did not return are marked deleted, in one short
transaction of their own, as a deletion the ledger reported would be. Only ids are held until then.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import structlog

from connector.ledger import (
    AuthExpired,
    Cursor,
    Fatal,
    Ledger,
    LedgerError,
    RateLimited,
    RawRecord,
    Retriable,
)
from connector.mapping import CompiledMapping
from connector.mapping.compile import CompiledStream
from connector.store import Store, records, synclog
from connector.store.synclog import SyncOutcome

log = structlog.get_logger(__name__)
DEFAULT_OVERLAP = timedelta(minutes=5)
MISSING = "not returned by a full read"  # why a record the ledger no longer has is marked deleted


class Stopped(Exception):
    """Raised inside a pull when `should_stop` said so; the run ends after its last committed page."""


class LoopDetected(Fatal):
    """The ledger handed back a position it had already given in this pull."""


@dataclass(frozen=True, slots=True)
class PageEvent:
    """Reported after each committed page (for progress bars)."""

    stream: str
    page: int
    read: int  # records read in this stream so far
    total_hint: int | None
    changed: int


@dataclass(frozen=True)
class SyncResult:
    """How a sync run ended, as its run row in the sync log says.

    Attributes:
        outcome: ok, partial (some records could not be mapped: see the run's errors), failed or
            interrupted (stopped for a shutdown or by the operator; the next run resumes).
        counts: Per stream: read, inserted, updated, deleted and errors.
        api_calls: The ledger calls the committed pages cost.
        error: The one-line reason for a failed or interrupted run, the summary of a partial one; None
            when ok.
        reconnect_needed: The ledger refused the connection (AuthExpired): a person must reconnect.
        retry_at: With a rate limit, the earliest time the tenant's sync may resume.
    """

    run_id: int
    outcome: SyncOutcome
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    api_calls: int = 0
    error: str | None = None
    reconnect_needed: bool = False
    retry_at: datetime | None = None
    transient: bool = False  # the failure may pass by itself (5xx, dropped connections, a rate limit)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def cap(cursor: Cursor, limit: datetime) -> Cursor:
    """`cursor` with `since` no later than `limit` (the pull's start less the overlap)."""
    if cursor.since is not None and cursor.since > limit:
        return dataclasses.replace(cursor, since=limit)
    return cursor


def run_sync(
    store: Store,
    tenant_id: str,
    ledger: Ledger,
    mapping: CompiledMapping,
    *,
    full: bool = False,
    overlap: timedelta = DEFAULT_OVERLAP,
    clock: Callable[[], datetime] = _utcnow,
    on_page: Callable[[PageEvent], None] | None = None,
    streams: list[str] | None = None,
    trigger: str = "cli",
    should_stop: Callable[[], bool] | None = None,
) -> SyncResult:
    """Pull every mapped stream (or `streams`) of one tenant into the store and log the run.

    The caller holds the tenant's run lease. The run row is committed first; each page then commits with its
    records, change and error rows, counts and cursor (see the module docstring), so whatever ends the run,
    what was committed stays and the next run resumes after it. Records the mapping cannot map are logged
    as the run's errors and the run goes on (outcome partial).

    Ledger errors end the run with a failed outcome and a one-line reason (other tenants are unaffected);
    anything else is recorded as failed and re-raised. `should_stop` is asked after every committed page:
    when it says yes (the server is shutting down) the run ends `interrupted` there, and the next run resumes
    from that page's cursor.

    A full sync (`full`) re-reads everything; once every stream of an entity has been read to its end, the
    entity's records the ledger did not return are marked deleted (change rows say why). Never otherwise.

    Args:
        full: Read every stream from the beginning instead of from its stored cursor.
        overlap: Stored cursors never pass the pull's start less this (the next run re-reads it).
        clock: The current instant (tests pin it).
        on_page: Called after each committed page, for progress.
        streams: Only these of the mapping's streams (names it does not map are ignored); None: all.
        trigger: What started the run (cli, night, webhook, poll, now, send), stored on it.
        should_stop: Asked after each committed page; True ends the run there.

    Returns:
        The run's outcome and counts: failed (with `reconnect_needed`, `retry_at` and `transient` saying
        what to do next) when the ledger raised a LedgerError.

    Raises:
        KeyboardInterrupt: After recording the run as interrupted.
        Exception: Anything but a LedgerError (a bug, the database), after recording the run as failed.
    """
    started = clock()
    kind = "full" if full else "incremental"
    with store.begin() as conn:
        run_id = synclog.start_run(conn, tenant_id, kind, started, trigger)
    log.info("sync.start", tenant=tenant_id, run=run_id, kind=kind)
    selected = [name for name in mapping.streams if streams is None or name in streams]
    whole = _FullRead.of(mapping, selected) if full else None
    pull = _Pull(store, tenant_id, run_id, ledger, started - overlap, on_page, should_stop, whole)
    try:
        for name in selected:
            pull.stream(name, mapping.streams[name], full)
    except LedgerError as exc:
        return _fail(store, tenant_id, run_id, exc, clock)
    except Stopped:
        reason = "stopped for a shutdown after its last committed page; the next run resumes there"
        return _finish(store, tenant_id, run_id, SyncOutcome.INTERRUPTED, reason, clock())
    except KeyboardInterrupt:
        _finish(store, tenant_id, run_id, SyncOutcome.INTERRUPTED, "interrupted by the operator", clock())
        raise
    except Exception as exc:
        _finish(
            store, tenant_id, run_id, SyncOutcome.FAILED, f"internal error: {type(exc).__name__}", clock()
        )
        raise
    errors_seen = pull.errors
    outcome = SyncOutcome.PARTIAL if errors_seen else SyncOutcome.OK
    summary = f"{errors_seen} record(s) could not be mapped; see `ccm log {run_id}`" if errors_seen else None
    log.info("sync.finish", tenant=tenant_id, run=run_id, outcome=outcome, api_calls=pull.api_calls)
    return _finish(store, tenant_id, run_id, outcome, summary, clock())


@dataclass
class _FullRead:
    """What a full sync has read of each entity, until every stream that feeds the entity is read whole.

    Xero's payments, overpayments and prepayments all feed `payment`: a payment missing from one stream may
    be in another, so an entity is settled only after all of its streams. Entities with a stream outside
    this run are never settled. Marks are counted under the entity's first stream.
    """

    counted_under: dict[str, str]  # entity -> stream
    pending: dict[str, set[str]]  # entity -> its streams not yet read to the end in this run
    seen: dict[str, set[str]]  # entity -> ids of every record the ledger returned (mapped or not)
    unsure: set[str] = field(default_factory=set)  # entities a record without an id came back for

    @classmethod
    def of(cls, mapping: CompiledMapping, selected: Collection[str]) -> _FullRead:
        """The tracker for a full sync of `selected`: only entities all of whose streams are selected."""
        feeds: dict[str, list[str]] = {}
        for name, stream in mapping.streams.items():
            feeds.setdefault(stream.record, []).append(name)
        whole = {entity: names for entity, names in feeds.items() if all(n in selected for n in names)}
        return cls(
            {entity: names[0] for entity, names in whole.items()},
            {entity: set(names) for entity, names in whole.items()},
            {entity: set() for entity in whole},
        )

    def note(self, stream: CompiledStream, raws: Sequence[RawRecord]) -> None:
        """Keep the ids of a page's raw records (one the mapping rejected or left out was still returned)."""
        seen = self.seen.get(stream.record)
        if seen is None:
            return
        for raw in raws:
            rid = stream.id_of(raw) if isinstance(raw, dict) else None
            if rid is not None and rid != "":
                seen.add(rid if type(rid) is str else str(rid))
            elif stream.accepts(raw):  # one of ours, but which? Marking anything could mark it.
                self.unsure.add(stream.record)

    def read_whole(self, name: str, entity: str) -> set[str] | None:
        """Stream `name` was read to its end: the entity's ids once all its streams were, else None."""
        pending = self.pending.get(entity)
        if pending is None:
            return None
        pending.discard(name)
        if pending:
            return None
        del self.pending[entity]
        return self.seen.pop(entity)


@dataclass
class _Pull:
    """One run's pages: each committed with its changes, errors, counts and cursor, in one transaction."""

    store: Store
    tenant_id: str
    run_id: int
    ledger: Ledger
    limit: datetime  # cursors never pass this: the pull's start less the overlap
    on_page: Callable[[PageEvent], None] | None
    should_stop: Callable[[], bool] | None
    whole: _FullRead | None  # a full sync's ids read so far; None in an incremental one
    api_calls: int = 0
    errors: int = 0

    def stream(self, name: str, stream: CompiledStream, full: bool) -> None:
        """Pull one stream page by page from its cursor (the beginning when `full`), committing each page.

        Raises:
            LoopDetected: The ledger returned a position twice.
            Stopped: `should_stop` said so after a committed page.
        """
        tenant_id = self.tenant_id
        with self.store.read() as conn:
            cursor = None if full else synclog.get_cursor(conn, tenant_id, name)
        seen: set[Cursor] = set()
        read = 0
        for number, page in enumerate(self.ledger.pull(name, cursor), start=1):
            if page.cursor in seen:
                raise LoopDetected(f"{name}: the ledger returned position {page.cursor} twice; stopped")
            seen.add(page.cursor)
            mapped, errors = stream.map_page(page.records)
            if self.whole is not None:
                self.whole.note(stream, page.records)
            with self.store.begin() as conn:
                changes = records.upsert(conn, tenant_id, stream.record, mapped)
                changes += records.mark_deleted(conn, tenant_id, stream.record, list(page.deleted_ids))
                synclog.record_page(
                    conn, tenant_id, self.run_id, name, changes, errors, len(page.records), page.api_calls
                )
                synclog.set_cursor(conn, tenant_id, name, cap(page.cursor, self.limit))
            self.api_calls += page.api_calls
            self.errors += len(errors)
            read += len(page.records)
            for error in errors:
                log.warning("sync.record_error", tenant=tenant_id, stream=name, record=error.record_id,
                            reason=error.reason)  # fmt: skip
            if self.on_page is not None:
                self.on_page(PageEvent(name, number, read, page.total_hint, len(changes)))
            if self.should_stop is not None and self.should_stop():
                raise Stopped
        returned = self.whole.read_whole(name, stream.record) if self.whole is not None else None
        if returned is not None:
            self.settle(stream.record, returned)

    def settle(self, entity: str, seen: set[str]) -> None:
        """After a full read of every stream of `entity`: mark deleted what the ledger did not return."""
        assert self.whole is not None
        if entity in self.whole.unsure:
            log.warning("sync.not_settled", tenant=self.tenant_id, run=self.run_id, entity=entity,
                        reason="a record without an id came back; nothing was marked deleted")  # fmt: skip
            return
        name = self.whole.counted_under[entity]
        with self.store.begin() as conn:
            changes = records.mark_missing(conn, self.tenant_id, entity, seen, MISSING)
            if changes:
                synclog.record_page(conn, self.tenant_id, self.run_id, name, changes, [], 0, 0)
        if changes:
            log.info("sync.marked_missing", tenant=self.tenant_id, run=self.run_id, entity=entity,
                     count=len(changes))  # fmt: skip


def _finish(
    store: Store, tenant_id: str, run_id: int, outcome: SyncOutcome, summary: str | None, at: datetime
) -> SyncResult:
    with store.begin() as conn:
        synclog.finish_run(conn, tenant_id, run_id, outcome, summary, at)
        run = synclog.get_run(conn, run_id, tenant_id)
    assert run is not None
    return SyncResult(run_id, outcome, run.counts, run.api_calls, summary)


def _fail(
    store: Store, tenant_id: str, run_id: int, exc: LedgerError, clock: Callable[[], datetime]
) -> SyncResult:
    reconnect = isinstance(exc, AuthExpired)
    retry_at = None
    reason = str(exc)
    now = clock()
    if isinstance(exc, RateLimited):
        retry_at = now + timedelta(seconds=exc.retry_after)
        reason = f"{exc.scope} limit reached; can resume after {retry_at:%Y-%m-%d %H:%M} UTC"
    elif reconnect:
        reason = f"reconnect needed: {exc}"
    with store.begin() as conn:
        synclog.finish_run(conn, tenant_id, run_id, SyncOutcome.FAILED, reason, now)
        run = synclog.get_run(conn, run_id, tenant_id)
    assert run is not None
    log.warning("sync.failed", tenant=tenant_id, run=run_id, reason=reason)
    transient = isinstance(exc, Retriable | RateLimited)
    return SyncResult(
        run_id, SyncOutcome.FAILED, run.counts, run.api_calls, reason, reconnect, retry_at, transient
    )
