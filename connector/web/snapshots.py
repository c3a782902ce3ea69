"""A firm's reconciled books, computed once and shared by every page that reads them (holds, discrepancies,
the customer pages, reports).

Guarantees:
- Fresh: every result is kept under a key of what it was computed from, and that key is read again on each
  request: the records (the latest sync run, its outcome and end), the firm's own settings and date, its
  files (policies, credit.yaml, templates: each file's size and change time), and, for what depends on
  them, ccm's own tables (chasing settings and events, limits, holds, the outbox, reminders sent, the
  audit log, the firm's standing). Records change only through a sync, which stores its run first and its
  outcome last. Nothing is served from an older key; a result computed while a sync wrote is newer than
  its key and is computed again when the sync ends.
- Shared and once: one computation per firm and part at a time; a request that finds one running waits
  for its result instead of starting its own. `Snapshots.computed` counts the computations per part.
- Bounded: the books of at most `FIRMS` firms are kept, the least recently read dropped first.
- Warm: `warm` computes a firm's books and pages in the background after a night or sync of a firm whose
  pages were read since the server started, and after the night of any firm while the cache has room, so the
  first view after a night finds them ready. A firm nobody reads never pushes out one somebody does (a
  practice of hundreds of firms warms the few it looks at, not every night's firm only to drop it).
"""

from __future__ import annotations

import functools
import threading
import weakref
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import Connection, Select, String, bindparam, func, select

from connector.config import Settings
from connector.model import Tenant
from connector.reconcile import Basis, Snapshot, load_snapshot
from connector.reconcile.rating import RatingModel
from connector.rules.credit import load_rating
from connector.run.plan import Context
from connector.store import Store
from connector.store.schema import (
    chasing_events,
    credit_holds,
    credit_limits,
    customer_settings,
    firm_profiles,
    outbox,
    reminder_history,
    sync_runs,
    tenants,
    web_audit,
)
from connector.store.tenants import get_tenant
from connector.words import locale as words
from connector.words.context import reading_locale

FIRMS = 4  # firms whose books are kept at once (a firm of 100,000 invoices takes a few hundred MB)
CREDIT_FILE = "credit.yaml"
Key = tuple[object, ...]
T = TypeVar("T")
log = structlog.get_logger(__name__)


def records_stamp(conn: Connection, tenant_id: str) -> Key:
    """What changes when the firm's records do: its latest sync run, and that run's outcome and end.

    Only a sync writes records (connector/sync.py): it stores its run (outcome "running") before its first
    record and writes the outcome and end after its last, so records read during a run are read again
    once it ends. Counting the records too would cost a scan of every invoice on every request."""
    r = sync_runs.c
    latest = select(func.max(r.run_id)).where(r.tenant_id == tenant_id).scalar_subquery()
    found = conn.execute(select(r.run_id, r.outcome, r.finished_at).where(r.run_id == latest)).first()
    return tuple(found) if found is not None else ()


def ccm_stamp(conn: Connection, tenant_id: str) -> Key:
    """What changes when ccm's own state of the firm does (chasing, credit, outbox, audit, standing): each
    table's row count and latest change, read in one query."""
    return tuple(conn.execute(_ccm_query(), {"tenant": tenant_id}).one())


@functools.cache
def _ccm_query() -> Select[Any]:
    """Built once: building it costs more than running it."""
    tenant = bindparam("tenant", type_=String())
    parts = []
    for table, *columns in (
        (customer_settings, customer_settings.c.updated_at),
        (chasing_events, chasing_events.c.event_id, chasing_events.c.closed_at),
        (credit_limits, credit_limits.c.updated_at),
        (credit_holds, credit_holds.c.since),
        (outbox, outbox.c.updated_at),
        (reminder_history, reminder_history.c.sent_on),
        (web_audit, web_audit.c.audit_id),
        (firm_profiles, firm_profiles.c.updated_at),
    ):
        for what in (func.count(), *(func.max(c) for c in columns)):
            parts.append(select(what).where(table.c.tenant_id == tenant).scalar_subquery())
    t = tenants.c
    for column in (t.mode, t.connected_at):
        parts.append(select(column).where(t.tenant_id == tenant).scalar_subquery())
    return select(*parts)


def files_stamp(folder: Path) -> Key:
    """Each file of the firm's folder (policies, credit.yaml, templates) by name, size and change time."""
    if not folder.is_dir():
        return ()
    found = []
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            st = path.stat()
            found.append((str(path.relative_to(folder)), st.st_size, st.st_mtime_ns))
    return tuple(found)


@dataclass(frozen=True)
class Books:
    """One firm's records reconciled as of its `today`: what every page reads."""

    tenant: Tenant
    today: date
    records: Key  # records_stamp when read
    key: Key  # records, today and the firm's files
    snapshot: Snapshot
    basis: Basis
    rating: RatingModel  # the firm's credit.yaml's, as the basis was rated by


@dataclass
class _Slot:
    lock: threading.Lock = field(default_factory=threading.Lock)
    key: object = None
    value: Any = None
    filled: bool = False


class Snapshots:
    """The kept books and pages of one store's firms (see the module docstring)."""

    def __init__(self, store: Store, firms: int = FIRMS) -> None:
        self.store = store
        self.firms = firms
        self.computed: Counter[str] = Counter()  # computations per part, as tests and logs read them
        self._kept: OrderedDict[str, dict[str, _Slot]] = OrderedDict()
        self._guard = threading.Lock()

    def once(self, tenant_id: str, part: str, key: object, make: Callable[[], T]) -> T:
        """`make()`'s result for the firm's `part` at `key`: computed only when `key` differs from the kept
        one's, by one thread at a time (the others wait and read its result). The locale amounts are written
        in (connector/words) is part of every key: what is kept may hold words."""
        key = (key, words.current())
        slot = self._slot(tenant_id, part)
        with slot.lock:
            if slot.filled and slot.key == key:
                return slot.value
            slot.filled, slot.value = False, None  # the old result goes before the new one is made
            value = make()
            slot.key, slot.value, slot.filled = key, value, True
            self.computed[part] += 1
            return value

    def _slot(self, tenant_id: str, part: str) -> _Slot:
        with self._guard:
            parts = self._kept.get(tenant_id)
            if parts is None:
                parts = self._kept[tenant_id] = {}
                while len(self._kept) > self.firms:
                    self._kept.popitem(last=False)
            else:
                self._kept.move_to_end(tenant_id)
            return parts.setdefault(part, _Slot())

    def known(self, tenant_id: str) -> bool:
        with self._guard:
            return tenant_id in self._kept

    def has_room(self) -> bool:
        """Fewer firms kept than the cache holds: one more would push none out."""
        with self._guard:
            return len(self._kept) < self.firms

    def forget(self, tenant_id: str) -> None:
        with self._guard:
            self._kept.pop(tenant_id, None)

    def snapshot(self, tenant: Tenant) -> tuple[Key, Snapshot]:
        """The firm's records as stored now, and their stamp with the firm's own settings (its currency,
        time zone): no date, no files, as discrepancies and reports need none."""
        with self.store.read() as conn:
            records = (*records_stamp(conn, tenant.id), tenant)
        found = self.once(tenant.id, "snapshot", records, lambda: load_snapshot(self.store, tenant.id))
        return records, found

    def books(self, settings: Settings, tenant: Tenant, today: date) -> Books:
        """The firm's books as of `today` (CreditFileError when its credit.yaml is bad)."""
        folder = settings.tenant_dir(tenant.id)
        files = files_stamp(folder)
        model = self.once(tenant.id, "rating", files, lambda: load_rating(folder / CREDIT_FILE))
        records, snapshot = self.snapshot(tenant)
        key = (records, today, files)
        basis = self.once(tenant.id, "basis", key, lambda: Basis.of(snapshot, today, model))
        return Books(tenant, today, records, key, basis.snapshot, basis, model)

    def context(self, settings: Settings, tenant: Tenant) -> Context:
        """The night's Context of the firm (its policies, calendar, templates, rules), read again only when
        one of its files or the settings change."""
        files = files_stamp(settings.tenant_dir(tenant.id))
        return self.once(
            tenant.id, "context", (files, settings, tenant), lambda: Context.load(settings, tenant)
        )

    def ccm(self, tenant_id: str) -> Key:
        with self.store.read() as conn:
            return ccm_stamp(conn, tenant_id)


_ALL: weakref.WeakKeyDictionary[Store, Snapshots] = weakref.WeakKeyDictionary()
_ALL_GUARD = threading.Lock()


def of(store: Store) -> Snapshots:
    """The one cache of `store` (every page of a server shares it, and the server's work warms it)."""
    with _ALL_GUARD:
        found = _ALL.get(store)
        if found is None:
            found = _ALL[store] = Snapshots(store)
        return found


def warm(
    store: Store, settings: Settings, tenant_id: str, now: datetime, always: bool = False
) -> threading.Thread | None:
    """Compute the firm's books and pages as of its date at `now`, in a background thread, if its pages were
    read since the server started, or, with `always` (after its night), while the cache has room for it (None:
    nothing to do). Errors are logged: the page shows them when read."""
    kept = of(store)
    if not kept.known(tenant_id) and not (always and kept.has_room()):
        return None
    thread = threading.Thread(
        target=_warm, args=(kept, settings, tenant_id, now), name=f"warm-{tenant_id}", daemon=True
    )
    thread.start()
    return thread


def _warm(kept: Snapshots, settings: Settings, tenant_id: str, now: datetime) -> None:
    from connector.web import customer_views, discrepancies_views, holds_views, reports

    try:
        with kept.store.read() as conn:
            tenant = get_tenant(conn, tenant_id)
            locale = reading_locale(conn, tenant)  # as its pages write (connector/web/pages.py)
    except Exception:  # the firm is gone, or the database is: the pages say so when read
        log.warning("web.warm_failed", tenant=tenant_id, exc_info=True)
        return
    today = now.astimezone(ZoneInfo(tenant.timezone)).date()
    steps: tuple[Callable[[], object], ...] = (
        lambda: holds_views.page(kept.store, settings, tenant, today),
        lambda: discrepancies_views.rows(kept.store, tenant),
        lambda: reports.reports_for(kept.store, tenant, today),
        lambda: customer_views.prepare(kept.store, settings, tenant, today),
    )
    with words.writing_in(locale):
        for step in steps:
            try:
                step()
            except Exception:  # a bad file of the firm, say: the page computes again when read, and shows it
                log.warning("web.warm_failed", tenant=tenant_id, exc_info=True)
    log.info("web.warmed", tenant=tenant_id, computed=dict(kept.computed))
