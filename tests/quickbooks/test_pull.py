"""Pulling from the QBO sandbox: query pages resume after a crash with no gap, records stamped in the same
second are paged past without loss, and the first page of a query is position 1 (QBO counts from 1)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from adapters.quickbooks.ledger import QuickBooksLedger
from connector.ledger import Cursor
from connector.store import Store, records, synclog
from connector.sync import PageEvent, run_sync
from tests.contract.quickbooks_harness import QuickBooksHarness
from tests.scripted import Crash


@pytest.fixture
def harness(store: Store, tmp_path: Path) -> Iterator[QuickBooksHarness]:
    h = QuickBooksHarness(speed=0)  # a stopped clock: many records share one LastUpdatedTime
    h.start(store, tmp_path)
    try:
        yield h
    finally:
        h.stop()


def ledger_with_pages(h: QuickBooksHarness, size: int) -> QuickBooksLedger:
    ledger = h.ledger()
    assert isinstance(ledger, QuickBooksLedger)
    ledger.puller.page_size = size
    return ledger


def sync(h, store, tenant, ledger, **kw):
    return run_sync(store, tenant, ledger, h.mapping(), clock=h.clock.now, **kw)


def stored_ids(store: Store, tenant: str, entity: str) -> set[str]:
    with store.read() as conn:
        return {row["id"] for row in records.load(conn, tenant, entity)}


@pytest.mark.parametrize("crash_at", [1, 3, 7])
def test_a_full_sync_killed_after_any_page_resumes_with_nothing_lost(harness, store, crash_at):
    tenant = harness.connect().id
    pages = 0

    def die(event: PageEvent) -> None:
        nonlocal pages
        pages += 1
        if pages == crash_at:
            raise Crash(f"killed after page {crash_at}")

    with pytest.raises(Crash):
        sync(harness, store, tenant, ledger_with_pages(harness, 40), full=True, on_page=die)
    with store.read() as conn:
        cursor = synclog.get_cursor(conn, tenant, "customers")
    assert cursor is not None
    harness.advance(120)
    result = sync(harness, store, tenant, ledger_with_pages(harness, 40))  # a new process: only the store
    assert result.outcome == "ok", result.error
    for entity, ids in harness.expected_ids().items():
        assert stored_ids(store, tenant, entity) == ids, entity


def test_more_records_in_one_second_than_a_page_holds_are_all_read_once(harness, store):
    harness.connect()
    company = harness.sb.company
    invoices = sorted(harness.expected_ids()["invoice"], key=int)[:95]
    for rid in invoices:  # all touched within the same (stopped) second
        token = str(company.get("Invoice", rid).sync_token)
        company.update(
            "Invoice", {"Id": rid, "SyncToken": token, "sparse": True, "PrivateNote": "same second"}
        )
    since = harness.clock.now()
    ledger = ledger_with_pages(harness, 20)
    ledger.puller.now = lambda: since + timedelta(days=40)  # past CDC's reach: ordered queries
    pages = list(ledger.pull("invoices", Cursor(since=since)))
    got = [r["Id"] for page in pages for r in page.records]
    assert sorted(got, key=int) == invoices  # every one, none twice
    assert len(pages) == 5
    tokens = [page.cursor.token for page in pages]
    assert tokens[:-1] == [f"q|{since:%Y-%m-%dT%H:%M:%SZ}|{n}" for n in (20, 40, 60, 80)]
    assert tokens[-1] is None  # finished: CDC again next time
    assert sum(page.api_calls for page in pages) == ledger.api.calls == 1 + 5  # a count, then five pages


def test_a_lowered_since_makes_the_pull_reread_from_there(harness, store):
    harness.connect()
    ledger = ledger_with_pages(harness, 1000)
    ledger.puller.now = lambda: harness.clock.now() + timedelta(days=40)
    later = harness.clock.now()
    earlier = later - timedelta(days=3650)
    # A query position recorded at `later` is meaningless once the core has lowered since to `earlier`.
    pages = list(ledger.pull("invoices", Cursor(since=earlier, token=f"q|{later:%Y-%m-%dT%H:%M:%SZ}|5")))
    assert sum(len(p.records) for p in pages) == len(harness.expected_ids()["invoice"])
