"""A business validation error (QBO code 6000) on one ledger write fails that action with its reason (code,
detail and intuit_tid) and the run goes on: the other actions are done, nothing stops the firm.

Sources: DESIGN.md "Per-action outcomes" (a permanent failure fails that action with its reason); the 6000
answer as QBO gives it (mcohen01/node-quickbooks#48, ruckus/quickbooks-ruby#344; issue 18 item 7), which the
sandbox answers (tests/quickbooks_sandbox/test_business_validation.py); connector/run/execute.py treats a
ledger's Fatal as permanent, and adapters/quickbooks/client.py raises QboRefused (a Fatal) for a 6000.
"""

from __future__ import annotations

import re

import pytest

from adapters.quickbooks.client import QboRefused
from adapters.quickbooks.ledger import QuickBooksLedger
from connector import outbox
from connector.outbox import Mode, NewAction
from connector.payloads import HoldPayload, Kind, NotePayload
from connector.run.execute import Executor
from connector.run.plan import Context


def test_a_6000_fails_that_action_and_the_others_are_done(harness, store):
    tenant = harness.connect()
    bad, good = sorted((str(r.id) for r in harness.sb.company.tables["Customer"].by_id.values()), key=int)[:2]
    harness.sb.company.edit("Customer", bad, {"DisplayName": ""})  # QBO now refuses any update of it
    invoice = harness.an_invoice()
    now = harness.clock.now()
    actions = [
        NewAction("hold:bad", Kind.HOLD, "ledger", bad, HoldPayload("", "over its credit limit"), now),
        NewAction("hold:good", Kind.HOLD, "ledger", good, HoldPayload("", "over its credit limit"), now),
        NewAction("note:inv", Kind.NOTE, "ledger", "", NotePayload(invoice, "Reminder 1 sent"), now),
    ]
    with store.begin() as conn:
        outbox.plan(conn, tenant.id, actions, Mode.AUTO, now)

    ledger = harness.ledger()
    outcome = Executor(store, harness.settings, Context.load(harness.settings, tenant), ledger, "test").run(
        now
    )

    assert outcome.stopped is None
    failed = dict(outcome.failed)
    assert set(failed) == {"hold:bad"}
    assert "QuickBooks fault 6000" in failed["hold:bad"] and "Business Validation Error" in failed["hold:bad"]
    assert re.search(r"\(intuit_tid 1-[0-9a-f]{8}-[0-9a-f]{24}\)", failed["hold:bad"])
    assert outcome.holds == [good] and outcome.notes == 1
    with store.read() as conn:
        states = {a.key: a.state for a in outbox.actions(conn, tenant.id)}
    assert states["hold:bad"] == "failed" and states["hold:good"] == states["note:inv"] == "sent"


def test_the_adapter_raises_refused_for_a_send_with_no_address(harness):
    harness.connect()
    ledger = harness.ledger()
    assert isinstance(ledger, QuickBooksLedger)
    company = harness.sb.company
    invoice = next(r for r in company.tables["Invoice"].by_id.values()
                   if not (company.doc("Invoice", r).get("BillEmail") or {}).get("Address"))  # fmt: skip
    with pytest.raises(QboRefused) as caught:
        ledger.api.send_invoice(str(invoice.id))
    assert caught.value.code == 6000
