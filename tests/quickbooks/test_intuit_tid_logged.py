"""ccm names the `intuit_tid` of QuickBooks' answer in the reason it records for a failure: the sync log's
failed run, and (tests/quickbooks/test_validation_failures.py) a failed outbox action.

Source: LEDGER-API-FACTS.md, "every answer carries an `intuit_tid` header: log it with errors (Intuit support
asks for it)"; issue 18 item 5.
"""

from __future__ import annotations

import re

from connector.store import synclog
from connector.sync import run_sync

TID = re.compile(r"\(intuit_tid 1-[0-9a-f]{8}-[0-9a-f]{24}\)")


def test_a_sync_failed_by_server_errors_logs_the_last_answers_intuit_tid(harness, store):
    tenant = harness.connect().id
    harness.fail_next(20, 503)  # every attempt of the first request: the run fails
    result = run_sync(store, tenant, harness.ledger(), harness.mapping(), clock=harness.clock.now)
    assert result.outcome == "failed"
    with store.read() as conn:
        run = synclog.get_run(conn, result.run_id, tenant)
    assert run is not None and run.error_summary is not None
    assert "503" in run.error_summary and TID.search(run.error_summary), run.error_summary
