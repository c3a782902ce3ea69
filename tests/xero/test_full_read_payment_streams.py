"""Xero's payments come from three streams (payments, overpayments, prepayments), all of them payments in ccm.

A payment missing from one stream may be in another, so a full sync marks missing payments deleted only after
reading all three to the end, and counts them under the first.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.store import Store, records, synclog
from connector.sync import SyncResult, run_sync
from tests.contract.vanish import vanish
from tests.contract.xero_harness import XeroHarness


@pytest.fixture
def xero(store: Store, tmp_path: Path) -> Iterator[XeroHarness]:
    h = XeroHarness()
    h.start(store, tmp_path)
    try:
        yield h
    finally:
        h.stop()


def full(h: XeroHarness, streams: list[str] | None = None) -> SyncResult:
    result = run_sync(h.store, h.tenant.id, h.ledger(), h.mapping(), full=True, streams=streams, clock=h.now)
    assert result.outcome == "ok", result.error
    return result


def deleted(h: XeroHarness, run_id: int) -> set[tuple[str, str]]:
    with h.store.read() as conn:
        return {
            (c.stream, c.record_id) for c in synclog.changes(conn, h.tenant.id, run_id) if c.op == "delete"
        }


def test_payments_are_marked_only_after_all_three_payment_streams_were_read(xero: XeroHarness) -> None:
    xero.connect()
    full(xero)
    with xero.store.read() as conn:
        live = [p for p in records.load(conn, xero.tenant.id, "payment") if p["status"] == "live"]
    plain = next(p["id"] for p in live if p["kind"] == "payment")
    over = next(p["id"] for p in live if p["kind"] == "overpayment")
    vanish(xero, "payment", plain)
    vanish(xero, "payment", over)

    only_payments = full(xero, ["payments"])  # the overpayments were not read: no payment can be judged
    assert deleted(xero, only_payments.run_id) == set()

    all_three = full(xero, ["payments", "overpayments", "prepayments"])
    assert deleted(xero, all_three.run_id) == {("payments", plain), ("payments", over)}
    assert all_three.counts["payments"]["deleted"] == 2
    assert all_three.counts["overpayments"]["deleted"] == 0
