"""The dispatcher's choice of work: sends first, then quiet syncs, then nights; never a disconnected tenant's."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from connector import outbox
from connector.clock import Clock
from connector.config import ServeSettings, Settings
from connector.model import Connection, ConnectionState, Tenant
from connector.outbox import Mode, NewAction
from connector.payloads import Kind, NotePayload
from connector.serve import nights, syncqueue, work
from connector.serve.dispatch import Dispatcher, Task
from connector.serve.runtime import Runtime
from connector.store import Store
from connector.store.tenants import save_connection, save_tenant

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def _runtime(store: Store, tmp_path: Path) -> Runtime:
    settings = Settings(data_dir=tmp_path, serve=ServeSettings(debounce_seconds=5, max_delay_seconds=60))
    return Runtime(settings, store, Clock(NOW, datetime.now(UTC).timestamp(), 1.0), "test-server")


def _tenant(store: Store, tenant_id: str, state: ConnectionState = ConnectionState.CONNECTED) -> None:
    with store.begin() as conn:
        save_tenant(conn, Tenant(tenant_id, tenant_id, "xero"))
        save_connection(conn, Connection(tenant_id, "xero", f"org-{tenant_id}", state))


def _work_for(store: Store, tenant_id: str) -> None:
    with store.begin() as conn:
        nights.mark_due(conn, tenant_id, date(2026, 12, 1), NOW - timedelta(hours=8))
        syncqueue.add(
            conn, tenant_id, ["invoices"], syncqueue.WEBHOOK, datetime.now(UTC) - timedelta(seconds=10)
        )
        action = NewAction(f"note:{tenant_id}", Kind.NOTE, "ledger", "c1", NotePayload("i1", "x"), NOW)
        outbox.plan(conn, tenant_id, [action], Mode.AUTO, NOW - timedelta(hours=1))


def test_sends_then_quiet_syncs_then_nights_and_nothing_for_a_disconnected_tenant(
    store: Store, tmp_path: Path
):
    _tenant(store, "live")
    _tenant(store, "gone", ConnectionState.DISCONNECTED)
    for tenant_id in ("live", "gone"):
        _work_for(store, tenant_id)
    _tenant(store, "busy")
    with store.begin() as conn:  # a burst still arriving for another tenant: not yet
        syncqueue.add(conn, "busy", ["contacts"], syncqueue.WEBHOOK, datetime.now(UTC))
    dispatcher = Dispatcher(_runtime(store, tmp_path))
    waiting = [(t.kind, t.tenant_id) for t in dispatcher._waiting()]
    assert waiting == [("send", "live"), ("sync", "live"), ("night", "live")]


def test_one_job_per_tenant_and_a_cool_off_after_a_busy_answer(store: Store, tmp_path: Path):
    dispatcher = Dispatcher(_runtime(store, tmp_path))
    release = threading.Event()

    def slow() -> work.Done:
        release.wait(5)
        return work.Done("sync", "acme", work.JobOutcome.BUSY, "another holder is running this tenant")

    assert dispatcher._submit(Task("sync", "acme", slow)) == 1
    assert dispatcher._submit(Task("night", "acme", slow)) == 0  # the tenant is taken in this process
    assert dispatcher.busy() == {"acme": "sync"}
    release.set()
    dispatcher.pool.shutdown(wait=True)
    assert dispatcher.busy() == {}
    assert dispatcher._submit(Task("sync", "acme", slow)) == 0  # "busy" elsewhere: looked at again later
