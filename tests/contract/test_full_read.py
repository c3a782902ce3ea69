"""A full sync makes the store equal the ledger, for every ledger (runs once per harness, see conftest.py).

Records removed from a sandbox's books behind its API (tests/contract/vanish.py) are seen by no incremental
sync; a full sync marks them deleted, one change row each saying why, and nothing else. A full read that
fails or stops part-way marks nothing, and a record the mapping rejected was still returned: never marked.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.sandbox.faults import Faults
from adapters.sandbox.generator import FirmSize
from connector import ledger as registry
from connector.mapping import CompiledMapping, load_mapping
from connector.reconcile import live_allocations, load_snapshot
from connector.store import Store, records, synclog
from connector.sync import MISSING, PageEvent, SyncResult, run_sync
from tests.contract.conftest import HARNESSES
from tests.contract.harness import Harness
from tests.contract.quickbooks_harness import QuickBooksHarness
from tests.contract.test_contract import ENTITIES, sync
from tests.contract.vanish import (
    a_customer_and_everything_it_has,
    a_payment_of_another_customer,
    an_invoice_nothing_is_allocated_to,
    vanish,
)
from tests.contract.xero_harness import XeroHarness

Rows = dict[tuple[str, str], dict[str, Any]]


def rows(store: Store, tenant_id: str) -> Rows:
    with store.read() as conn:
        return {(e, r["id"]): r for e in ENTITIES for r in records.load(conn, tenant_id, e)}


def changes(store: Store, tenant_id: str, run_id: int) -> list[synclog.ChangeRow]:
    with store.read() as conn:
        return synclog.changes(conn, tenant_id, run_id)


def deletes(store: Store, tenant_id: str, run_id: int) -> set[tuple[str, str]]:
    return {(c.entity, c.record_id) for c in changes(store, tenant_id, run_id) if c.op == "delete"}


def marked(result: SyncResult) -> int:
    return sum(c.get("deleted", 0) for c in result.counts.values())


def test_a_full_sync_marks_deleted_what_the_ledger_no_longer_has(harness: Harness, store: Store) -> None:
    tenant = harness.connect()
    assert sync(harness, store, tenant.id, full=True).outcome == "ok"
    before = rows(store, tenant.id)
    gone = a_customer_and_everything_it_has(store, tenant.id)
    for entity in ("payment", "credit_note", "invoice", "customer"):  # a customer last: see vanish()
        for rid in gone[entity]:
            vanish(harness, entity, rid)
    # Already deleted at the ledger (a deleted payment, say) stays as it is: nothing to mark.
    to_mark = {(e, rid) for e, ids in gone.items() for rid in ids if before[(e, rid)]["status"] != "deleted"}
    assert {e for e, _ in to_mark} >= {"customer", "invoice", "payment"}

    incremental = sync(harness, store, tenant.id)
    assert incremental.outcome == "ok", incremental.error
    assert changes(store, tenant.id, incremental.run_id) == []  # no event, no status: nothing to see
    assert rows(store, tenant.id) == before

    full = sync(harness, store, tenant.id, full=True)
    assert full.outcome == "ok", full.error
    logged = changes(store, tenant.id, full.run_id)
    assert {(c.entity, c.record_id) for c in logged} == to_mark  # and nothing else changed
    for c in logged:
        was = before[(c.entity, c.record_id)]["status"]
        assert (c.op, c.fields) == ("delete", {"status": [was, "deleted"], "reason": [None, MISSING]})
    assert marked(full) == len(to_mark)
    after = rows(store, tenant.id)
    assert after == {k: {**row, "status": "deleted"} if k in to_mark else row for k, row in before.items()}
    # The store now equals the ledger: every live record is one the ledger has, and it has no other.
    for entity, ids in harness.expected_ids().items():
        live = {rid for (e, rid), row in after.items() if e == entity and row["status"] != "deleted"}
        assert live <= ids <= {rid for e, rid in after if e == entity}, entity
    # Money from a payment or credit note that is gone no longer counts anywhere.
    sources = {rid for e, rid in to_mark if e in ("payment", "credit_note")}
    assert not [a for a in live_allocations(load_snapshot(store, tenant.id)) if a.source_id in sources]

    again = sync(harness, store, tenant.id, full=True)
    assert again.outcome == "ok", again.error
    assert changes(store, tenant.id, again.run_id) == []  # idempotent
    assert marked(again) == 0
    assert rows(store, tenant.id) == after


def test_a_record_the_mapping_rejected_is_not_marked_deleted(
    harness: Harness, store: Store, tmp_path: Path
) -> None:
    tenant = harness.connect()
    assert sync(harness, store, tenant.id, full=True).outcome == "ok"
    before = rows(store, tenant.id)
    invoices = {rid: row for (e, rid), row in before.items() if e == "invoice"}
    currencies = [row["currency"] for row in invoices.values()]
    kept = max(set(currencies), key=currencies.count)
    rejected = {rid for rid, row in invoices.items() if row["currency"] != kept}
    assert rejected, "the demo firm invoices in one currency only"
    # The tenant's own mapping accepts one currency: the ledger's other invoices fail to map.
    mapping = _with_override(harness, tmp_path, {"invoices": {"fields": {"currency": {
        "path": _shipped(harness)["invoices"]["fields"]["currency"], "map": {kept: kept}}}}})  # fmt: skip
    gone = an_invoice_nothing_is_allocated_to(store, tenant.id)
    assert before[("invoice", gone)]["currency"] == kept
    vanish(harness, "invoice", gone)

    result = run_sync(store, tenant.id, harness.ledger(), mapping, full=True, clock=_clock(harness))
    assert result.outcome == "partial", result.error
    with store.read() as conn:
        errors = synclog.errors(conn, tenant.id, result.run_id)
    assert {e.record_id for e in errors} == rejected
    assert deletes(store, tenant.id, result.run_id) == {("invoice", gone)}  # the sweep ran; rejects stood
    after = rows(store, tenant.id)
    assert {rid for rid in rejected if after[("invoice", rid)] != before[("invoice", rid)]} == set()


# ---- part-way: a firm whose invoices span several pages, so a failure can fall between two of them

PAGED = FirmSize(40, 3_100, 300)


@pytest.fixture(params=list(HARNESSES))
def paged(request: pytest.FixtureRequest, store: Store, tmp_path: Path) -> Iterator[Harness]:
    h: XeroHarness | QuickBooksHarness
    if request.param == "xero":
        h = XeroHarness()
        h.start(store, tmp_path, size=PAGED)
    else:
        h = QuickBooksHarness(size=PAGED)
        h.start(store, tmp_path)
    try:
        yield h
    finally:
        h.stop()


def faults_of(h: Harness) -> Faults:
    """The sandbox's fault injection (adapters/sandbox/faults.py)."""
    if isinstance(h, XeroHarness):
        return h.faults
    if isinstance(h, QuickBooksHarness):
        return h.sb.faults
    raise NotImplementedError(h.name)


def test_a_full_sync_that_fails_or_stops_part_way_marks_nothing(paged: Harness, store: Store) -> None:
    tenant = paged.connect()
    assert sync(paged, store, tenant.id, full=True).outcome == "ok"
    invoice = an_invoice_nothing_is_allocated_to(store, tenant.id)
    payment = a_payment_of_another_customer(store, tenant.id, invoice)
    vanish(paged, "invoice", invoice)
    vanish(paged, "payment", payment)
    before = rows(store, tenant.id)
    faults = faults_of(paged)
    pages: list[PageEvent] = []

    def break_the_ledger(event: PageEvent) -> None:
        pages.append(event)
        if event.stream == "invoices" and event.page == 1:
            faults.error_rate = 1.0  # every answer from now on is a 500 or a 503

    try:
        failed = sync(paged, store, tenant.id, full=True, on_page=break_the_ledger)
    finally:
        faults.clear()
    assert failed.outcome == "failed"
    read = [e for e in pages if e.stream == "invoices"]  # QBO fetches one page ahead: 1 or 2 pages got in
    assert read and read[-1].total_hint is not None and read[-1].read < read[-1].total_hint  # not the last
    assert deletes(store, tenant.id, failed.run_id) == set()
    assert marked(failed) == 0

    def stop_after_a_page(event: PageEvent) -> None:
        pages.append(event)

    pages.clear()
    stopped = run_sync(store, tenant.id, paged.ledger(), paged.mapping(), full=True, clock=_clock(paged),
                       on_page=stop_after_a_page, should_stop=lambda: bool(pages) and pages[-1].stream == "invoices")  # fmt: skip
    assert stopped.outcome == "interrupted"
    assert deletes(store, tenant.id, stopped.run_id) == set()
    now = rows(store, tenant.id)  # neither run marked anything
    assert (now[("invoice", invoice)], now[("payment", payment)]) == (
        before[("invoice", invoice)], before[("payment", payment)])  # fmt: skip
    assert {k for k, r in now.items() if r["status"] == "deleted"} == {
        k for k, r in before.items() if r["status"] == "deleted"}  # fmt: skip

    whole = sync(paged, store, tenant.id, full=True)  # the same books, read to the end: now both are marked
    assert whole.outcome == "ok", whole.error
    assert {("invoice", invoice), ("payment", payment)} <= deletes(store, tenant.id, whole.run_id)


# ---- helpers


def _clock(h: Harness) -> Callable[[], datetime]:
    def now() -> datetime:
        value = h.now()
        assert isinstance(value, datetime)
        return value

    return now


def _shipped(h: Harness) -> dict[str, Any]:
    loaded = yaml.safe_load(registry.get(h.name).mapping.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _with_override(h: Harness, tmp_path: Path, override: dict[str, Any]) -> CompiledMapping:
    path = tmp_path / "mapping.yaml"
    path.write_text(yaml.safe_dump(override), encoding="utf-8")
    spec = registry.get(h.name)
    return load_mapping(spec.mapping, path, schema=spec.schema)
