"""The Xero adapter against the local Xero sandbox: what the shared contract does not cover.

Paging across many 1,000-record pages, a crash mid-pull, the day limit, pacing under the real minute
limit, a 401 mid-sync, a disconnected organisation, granular scopes, Xero's reminders and online invoices.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.sandbox.generator import FirmSize
from adapters.xero.client import XeroNotFound, sdk_token
from adapters.xero.connect import GRANULAR_SCOPES
from adapters.xero.ledger import XeroLedger
from connector.ledger import AdapterContext
from connector.store import Store, records, synclog
from connector.sync import PageEvent, SyncResult, run_sync
from tests.contract.xero_harness import XeroHarness
from tests.scripted import Crash

PAGED = FirmSize(60, 2_500, 2_100)  # invoices and payments span three 1,000-record pages


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'ccm.db'}")
    yield opened
    opened.close()


def started(store: Store, tmp_path: Path, **options: Any) -> XeroHarness:
    h = XeroHarness()
    h.start(store, tmp_path, **options)
    return h


@pytest.fixture
def paged(sqlite_store: Store, tmp_path: Path) -> Iterator[XeroHarness]:
    h = started(sqlite_store, tmp_path, size=PAGED)
    yield h
    h.stop()


def sync(h: XeroHarness, **kwargs: Any) -> SyncResult:
    return run_sync(h.store, h.tenant.id, h.ledger(), h.mapping(), clock=h.now, **kwargs)


def test_a_full_sync_uses_ceil_records_over_1000_calls_per_stream(paged: XeroHarness) -> None:
    paged.connect()
    result = sync(paged, full=True)
    assert result.outcome == "ok", result.error
    counts = result.counts
    minimum = sum(max(1, math.ceil(c["read"] / 1000)) for c in counts.values())
    assert counts["invoices"]["read"] > 2000
    assert result.api_calls == minimum


def test_a_crash_between_pages_resumes_after_the_last_committed_page(paged: XeroHarness) -> None:
    paged.connect()
    pages: list[PageEvent] = []

    def crash_after_second_invoice_page(event: PageEvent) -> None:
        pages.append(event)
        if event.stream == "invoices" and event.page == 2:
            paged.pay_invoice()  # the books change while ccm is down: pages shift
            raise Crash

    with pytest.raises(Crash):
        sync(paged, full=True, on_page=crash_after_second_invoice_page)
    resumed = sync(paged)
    assert resumed.outcome == "ok", resumed.error
    assert resumed.counts["invoices"]["read"] < 1100  # resumed after page 2, not from the start
    with paged.store.read() as conn:
        stored = {r["id"] for r in records.load(conn, paged.tenant.id, "invoice")}
    assert stored == paged.expected_ids()["invoice"]


def test_a_spent_day_stops_the_run_cleanly_saying_when_it_can_resume(
    sqlite_store: Store, tmp_path: Path
) -> None:
    h = started(sqlite_store, tmp_path, limits=True, day_limit=3)
    try:
        h.connect()
        result = sync(h, full=True)
        assert result.outcome == "failed"
        assert "day limit reached; can resume after" in (result.error or "")
        assert result.retry_at is not None
        assert h.stats().throttled <= 1  # no retry storm against a spent day
        with h.store.read() as conn:
            assert synclog.get_cursor(conn, h.tenant.id, "contacts") is not None  # what was read is kept
    finally:
        h.stop()


def test_pacing_keeps_many_writes_under_the_minute_limit(sqlite_store: Store, tmp_path: Path) -> None:
    h = started(sqlite_store, tmp_path, limits=True, speed=30.0)
    try:
        h.connect()
        ledger = h.ledger()
        invoice = h.an_invoice()
        for i in range(40):  # 80 calls: a History read and a write each, more than one minute's 60
            ledger.add_note(f"invoice:{invoice}", f"note {i}", f"paced-{i}")
        assert h.stats().throttled == 0
        assert h.stats().calls >= 80
        assert len(h.notes("invoice", invoice)) == 40
    finally:
        h.stop()


def test_an_access_token_refused_mid_sync_is_renewed_once(paged: XeroHarness) -> None:
    paged.connect()

    def revoke_access(event: PageEvent) -> None:
        if event.page == 1 and event.stream == "invoices":
            paged.sandbox.expire_access_tokens()  # Xero answers 401 before ccm expected the token to die

    result = sync(paged, full=True, on_page=revoke_access)
    assert result.outcome == "ok", result.error


def test_a_disconnected_organisation_needs_a_reconnect(paged: XeroHarness) -> None:
    paged.connect()
    paged.sandbox.disconnect()
    result = sync(paged, full=True)
    assert result.outcome == "failed"
    assert result.reconnect_needed
    assert "no longer connected" in (result.error or "")


def test_granular_scopes_connect_and_sync(sqlite_store: Store, tmp_path: Path) -> None:
    h = started(sqlite_store, tmp_path, granular=True)
    try:
        h.connect()
        tokens = h.vault.get(h.tenant.id)
        assert tokens is not None
        assert set(tokens.scope) == set(GRANULAR_SCOPES)
        assert sync(h, full=True).outcome == "ok"
        assert h.ledger().add_note(f"invoice:{h.an_invoice()}", "granular", "g-1").applied
    finally:
        h.stop()


def test_xero_reminders_and_online_invoice_links(paged: XeroHarness) -> None:
    paged.connect()
    ledger = paged.ledger()
    assert isinstance(ledger, XeroLedger)
    assert ledger.reminders_enabled() is False
    paged.sandbox.set_reminders(True)
    assert ledger.reminders_enabled() is True  # ccm must warn: customers would be chased twice
    url = ledger.online_invoice_url(paged.an_invoice())
    assert url is not None
    assert url.startswith("https://")


def test_the_sdk_token_dict_holds_only_keys_xero_python_accepts(paged: XeroHarness) -> None:
    paged.connect()
    tokens = paged.vault.get(paged.tenant.id)
    assert tokens is not None
    token = sdk_token(tokens, paged.now())
    allowed = {"access_token", "scope", "expires_in", "token_type", "expires_at", "refresh_token", "id_token"}
    assert set(token) <= allowed
    assert isinstance(token["scope"], list)
    assert token["expires_at"] > time.time()  # the SDK compares expiry with the machine's clock


def test_the_hold_group_comes_from_the_tenant_mapping_override(paged: XeroHarness) -> None:
    paged.connect()
    override = paged.settings.tenant_dir(paged.tenant.id) / "mapping.yaml"
    override.parent.mkdir(parents=True)
    override.write_text("options: {hold_group: Stop List}\n")
    ledger = XeroLedger(
        AdapterContext(paged.tenant.id, paged.sandbox.tenant_id, paged.settings, paged.services())
    )
    customer = paged.a_customer()
    assert ledger.set_hold(f"customer:{customer}", True, "over limit", "stop-1").applied
    with paged.sandbox.book.lock:
        groups = {g.name: g.members for g in paged.sandbox.book.groups.values()}
    assert customer in groups["Stop List"]  # created on first use, as the override names it
    assert "Credit Hold" not in groups


def test_a_write_to_a_record_xero_does_not_have_fails_in_one_line(paged: XeroHarness) -> None:
    paged.connect()
    with pytest.raises(XeroNotFound) as caught:
        paged.ledger().add_note("invoice:00000000-0000-4000-8000-000000000000", "hello", "nf-1")
    message = str(caught.value)
    assert "\n" not in message
    assert "00000000-0000-4000-8000-000000000000" in message
