"""The pull engine against a scripted ledger: resumable after a crash anywhere, no duplicates, no gaps."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from connector.ledger import AuthExpired, Cursor, Page, RateLimited
from connector.mapping import CompiledMapping
from connector.model import Tenant
from connector.store import Store, synclog
from connector.store.tenants import save_tenant
from connector.sync import PageEvent, SyncResult, run_sync
from tests.scripted import Crash, ScriptedLedger, contact, invoice, payment
from tests.syncstate import assert_store_equals_source, insert_change_counts


def small_firm(ledger: ScriptedLedger) -> ScriptedLedger:
    for c in ("C1", "C2", "C3", "C4"):
        ledger.put("contacts", contact(c))
    for i in range(1, 9):
        ledger.put("invoices", invoice(f"I{i}", contact_id=f"C{i % 4 + 1}", total=f"{i * 100}.00"))
    ledger.put("payments", payment("P1", "I1", "100.00", "C2"))
    ledger.put("payments", payment("P2", "I2", "150.00", "C3"))
    return ledger


def new_tenant(store: Store, tenant_id: str) -> str:
    with store.begin() as conn:
        save_tenant(conn, Tenant(tenant_id, tenant_id, "scripted"))
    return tenant_id


def sync(
    store: Store, tenant: str, ledger: ScriptedLedger, mapping: CompiledMapping, **kw: Any
) -> SyncResult:
    return run_sync(store, tenant, ledger, mapping, clock=ledger.now, overlap=timedelta(seconds=2), **kw)


def test_a_first_sync_stores_every_record(store, scripted_mapping):
    ledger = small_firm(ScriptedLedger())
    tenant = new_tenant(store, "acme")
    result = sync(store, tenant, ledger, scripted_mapping)
    assert result.outcome == "ok"
    assert result.counts["invoices"] == {"read": 8, "inserted": 8, "updated": 0, "deleted": 0, "errors": 0}
    assert result.api_calls == ledger.calls
    assert_store_equals_source(store, tenant, ledger, scripted_mapping)


def total_pages(mapping: CompiledMapping) -> int:
    probe = small_firm(ScriptedLedger())
    return sum(1 for name in mapping.streams for _ in probe.pull(name, None))


@pytest.mark.parametrize("moment", ["while reading the page", "just after committing it"])
def test_a_crash_at_each_page_then_a_resume_ends_equal_to_the_source(store, scripted_mapping, moment):
    pages = total_pages(scripted_mapping)
    assert pages >= 6
    for k in range(1, pages + 1):
        ledger = small_firm(ScriptedLedger())
        tenant = new_tenant(store, f"t{k}")
        on_page = None
        if moment == "while reading the page":
            ledger.crash_on_page = k
        else:
            seen = iter(range(1, pages + 1))

            def on_page(event: PageEvent, seen: Iterator[int] = seen, k: int = k) -> None:
                if next(seen) == k:
                    raise Crash(f"died after committing page {k}")

        with pytest.raises(Crash):
            sync(store, tenant, ledger, scripted_mapping, on_page=on_page)
        # The world moves on while we are down.
        ledger.put("invoices", invoice("I3", "C4", total="999.00", AmountDue="0.00", Status="PAID"))
        ledger.remove("invoices", "I5")
        ledger.put("payments", payment("P3", "I3", "999.00", "C4"))
        ledger.crash_on_page = None
        result = sync(store, tenant, ledger, scripted_mapping)
        assert result.outcome == "ok", k
        assert_store_equals_source(store, tenant, ledger, scripted_mapping)
        assert set(insert_change_counts(store, tenant).values()) == {1}, (
            f"duplicate inserts after crash at {k}"
        )
        with store.read() as conn:
            outcomes = [r.outcome for r in synclog.runs(conn, tenant)]
        assert outcomes == ["ok", "interrupted"]


def test_overlap_re_reads_create_no_duplicate_change_rows(store, scripted_mapping):
    ledger = small_firm(ScriptedLedger())
    tenant = new_tenant(store, "acme")
    sync(store, tenant, ledger, scripted_mapping)
    again = run_sync(store, tenant, ledger, scripted_mapping, clock=ledger.now, overlap=timedelta(hours=1))
    assert sum(c["read"] for c in again.counts.values()) > 0  # the overlap was re-read ...
    with store.read() as conn:
        assert synclog.change_count(conn, tenant, again.run_id) == 0  # ... and changed nothing


def test_only_changes_are_read_and_logged_incrementally(store, scripted_mapping):
    ledger = small_firm(ScriptedLedger())
    tenant = new_tenant(store, "acme")
    sync(store, tenant, ledger, scripted_mapping)
    ledger.ticks += 60  # time passes beyond the overlap
    ledger.put("invoices", invoice("I2", "C3", total="200.00", AmountDue="50.00"))
    ledger.remove("invoices", "I4")
    result = sync(store, tenant, ledger, scripted_mapping)
    assert result.counts["invoices"]["read"] == 1
    with store.read() as conn:
        changes = synclog.changes(conn, tenant, result.run_id)
    assert [(c.record_id, c.op, c.fields) for c in changes] == [
        ("I2", "update", {"amount_due": ["200.0000", "50.0000"]}),
        ("I4", "delete", {"status": ["open", "deleted"]}),
    ]
    assert_store_equals_source(store, tenant, ledger, scripted_mapping)


def test_an_unmappable_record_is_logged_and_the_rest_are_stored(store, scripted_mapping):
    ledger = small_firm(ScriptedLedger())
    ledger.put("invoices", invoice("BAD", total="lots"))
    tenant = new_tenant(store, "acme")
    result = sync(store, tenant, ledger, scripted_mapping)
    assert result.outcome == "partial"
    with store.read() as conn:
        [error] = synclog.errors(conn, tenant, result.run_id)
    assert (error.stream, error.record_id, error.reason) == ("invoices", "BAD", "total: not a number: 'lots'")
    ledger.records["invoices"].pop("BAD")
    assert_store_equals_source(store, tenant, ledger, scripted_mapping)


def test_the_cursor_never_passes_the_pull_start_less_the_overlap(store, scripted_mapping):
    ledger = small_firm(ScriptedLedger())
    tenant = new_tenant(store, "acme")
    started = ledger.now()

    def change_during_pull(event: PageEvent) -> None:
        if event.stream == "invoices" and event.page == 1:
            ledger.put("invoices", invoice("LATE"))  # changes after the pull started

    sync(store, tenant, ledger, scripted_mapping, on_page=change_during_pull)
    with store.read() as conn:
        cursor = synclog.get_cursor(conn, tenant, "invoices")
    assert cursor is not None and cursor.since is not None
    assert cursor.since <= started - timedelta(seconds=2)
    sync(store, tenant, ledger, scripted_mapping)
    assert_store_equals_source(store, tenant, ledger, scripted_mapping)


class LoopingLedger(ScriptedLedger):
    def pull(self, stream: str, cursor: Cursor | None) -> Iterator[Page]:
        while True:
            yield Page([contact("C1")], Cursor(token="page-2"))


def test_a_ledger_repeating_a_page_position_is_stopped(store, scripted_mapping):
    tenant = new_tenant(store, "acme")
    result = sync(store, tenant, LoopingLedger(), scripted_mapping)
    assert result.outcome == "failed"
    assert "twice" in (result.error or "")


class FailingLedger(ScriptedLedger):
    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def pull(self, stream: str, cursor: Cursor | None) -> Iterator[Page]:
        yield Page([contact("C1")], Cursor(token="1"))
        raise self.error


def test_a_dead_refresh_token_fails_the_run_with_reconnect_needed(store, scripted_mapping):
    tenant = new_tenant(store, "acme")
    result = sync(store, tenant, FailingLedger(AuthExpired("refresh token expired")), scripted_mapping)
    assert (result.outcome, result.reconnect_needed) == ("failed", True)
    assert result.error == "reconnect needed: refresh token expired"
    with store.read() as conn:
        run = synclog.get_run(conn, result.run_id, tenant)
    assert run is not None and run.counts["contacts"]["inserted"] == 1  # what was read is kept


def test_a_day_limit_stops_the_run_and_says_when_it_can_resume(store, scripted_mapping):
    tenant = new_tenant(store, "acme")
    result = sync(store, tenant, FailingLedger(RateLimited(3600, "day")), scripted_mapping)
    assert result.outcome == "failed"
    assert result.retry_at is not None
    assert (result.error or "").startswith("day limit reached; can resume after ")


def test_a_full_sync_re_reads_everything(store, scripted_mapping):
    ledger = small_firm(ScriptedLedger())
    tenant = new_tenant(store, "acme")
    sync(store, tenant, ledger, scripted_mapping)
    ledger.ticks += 60
    result = sync(store, tenant, ledger, scripted_mapping, full=True)
    assert result.counts["invoices"]["read"] == 8
    assert result.counts["invoices"]["updated"] == 0
