"""An outage of 5xx answers is reported as the ledger's answers, never as a connection failure."""

from __future__ import annotations

import re
from datetime import datetime

from connector.ledger import LedgerError, Retriable, ServerError, after_retries
from connector.store import Store, synclog
from connector.sync import run_sync
from tests.contract.harness import Harness


def test_a_sync_through_an_outage_of_5xx_answers_says_what_the_ledger_answered(
    harness: Harness, store: Store
) -> None:
    tenant = harness.connect()
    faults = harness.sandbox_faults()
    faults.error_rate = 1.0  # every answer is a 500 or a 503

    def now() -> datetime:
        value = harness.now()
        assert isinstance(value, datetime)
        return value

    try:
        result = run_sync(store, tenant.id, harness.ledger(), harness.mapping(), clock=now)
    finally:
        faults.clear()
    assert result.outcome == synclog.SyncOutcome.FAILED
    with store.read() as conn:
        run = synclog.get_run(conn, result.run_id, tenant.id)
    assert run is not None and run.error_summary is not None
    summary = run.error_summary
    answers = r"50[03] (Internal Server Error|Service Unavailable) (once|\d+ times)"
    assert re.search(rf"(Xero|QuickBooks) answered {answers}( and {answers})?$", summary), summary
    assert "connection failed" not in summary and "unreachable" not in summary


def test_a_connection_closed_after_the_5xx_answers_does_not_hide_them() -> None:
    seen: list[LedgerError] = [ServerError("Invoices page 2: Xero answered HTTP 503", 503) for _ in range(4)]
    seen.append(Retriable("Invoices page 2: connection failed (ProtocolError)"))
    said = after_retries("Xero", seen[-1], seen, "Invoices page 2")
    assert isinstance(said, Retriable)
    assert str(said) == (
        "Invoices page 2: Xero answered 503 Service Unavailable 4 times; 1 other failure(s), the last: "
        "Invoices page 2: connection failed (ProtocolError)"
    )
    alone = Retriable("QuickBooks unreachable: ConnectionError")  # no answer at all: said as it was
    assert after_retries("QuickBooks", alone, [alone]) is alone
