"""The cases only QuickBooks Online has; the shared contract (test_contract.py) runs QBO through conftest.

A full sync's cost (one query per page and one batch of counts), CDC and its fallbacks (a cursor past 30
days, QBO refusing the look-back, an answer at the 1,000-object cap), throttling with an XML body, a stale
SyncToken, the customer's own Notes kept through hold and release, both webhook formats, a company that
disconnected the app, a refresh token whose value rotates only after 24 hours, and an invoice without a
BillEmail.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from adapters.quickbooks.ledger import QuickBooksLedger
from adapters.quickbooks.sandbox.notify import Event, cloudevents_body, legacy_body
from adapters.sandbox.generator import FirmSize
from adapters.sandbox.webhooks import sign
from connector.ledger import Change, Cursor
from connector.model import ConnectionState
from connector.store import Store
from connector.store.tenants import get_connection
from tests.contract.quickbooks_harness import VERIFIER, QuickBooksHarness
from tests.contract.test_contract import changed_ids, sync, tokens_of
from tests.contract.test_lost_answers import NAMES, each_key_once_under_lost_answers


def _started(
    store: Store, tmp_path: Path, *, limits: bool, size: str | FirmSize = "demo"
) -> Iterator[QuickBooksHarness]:
    h = QuickBooksHarness(size=size)
    h.start(store, tmp_path, limits=limits)
    try:
        yield h
    finally:
        h.stop()


# These override conftest's fixtures of the same names (which start every ledger): QuickBooks only here.
@pytest.fixture
def harness(store: Store, tmp_path: Path) -> Iterator[QuickBooksHarness]:
    yield from _started(store, tmp_path, limits=False)


@pytest.fixture
def limited(store: Store, tmp_path: Path) -> Iterator[QuickBooksHarness]:
    yield from _started(store, tmp_path, limits=True)


@pytest.fixture
def bigger(store: Store, tmp_path: Path) -> Iterator[QuickBooksHarness]:
    """A firm with more records than one CDC answer may hold."""
    yield from _started(store, tmp_path, limits=False, size=FirmSize(60, 700, 500))


def answered(h: QuickBooksHarness) -> dict[str, int]:
    """Requests the sandbox answered so far, by kind ("query", "cdc", "batch", ...)."""
    return dict(h.sb.api.calls)


def answered_since(before: dict[str, int], h: QuickBooksHarness) -> dict[str, int]:
    """Requests answered since `before`, by kind."""
    return {kind: n - before.get(kind, 0) for kind, n in answered(h).items() if n != before.get(kind, 0)}


def test_a_full_sync_costs_one_query_per_page_plus_one_batch_of_counts(harness, store):
    tenant = harness.connect()
    result = sync(harness, store, tenant.id, full=True)
    pages = sum(-(-len(ids) // 1000) for ids in harness.expected_ids().values())
    assert result.api_calls == pages + 1
    assert answered(harness) == {"query": pages, "batch": 1}


def test_changes_come_from_one_cdc_request_and_past_30_days_from_queries(harness, store):
    tenant = harness.connect()
    sync(harness, store, tenant.id, full=True)
    before = answered(harness)
    recent = harness.pay_invoice()
    result = sync(harness, store, tenant.id)
    assert result.outcome == "ok", result.error
    assert recent in changed_ids(store, tenant.id, result.run_id)
    assert answered_since(before, harness) == {"cdc": 1}  # one CDC request serves every stream

    harness.advance(31 * 24 * 3600)
    before = answered(harness)
    paid = harness.pay_invoice()
    result = sync(harness, store, tenant.id)
    assert result.outcome == "ok", result.error
    assert paid in changed_ids(store, tenant.id, result.run_id)
    assert "cdc" not in answered_since(before, harness)  # judged too old before asking
    assert answered_since(before, harness)["query"] >= 4  # each stream queried instead


def test_when_qbo_refuses_the_look_back_the_adapter_queries_instead(harness, store):
    """Our clock says 29 days, QBO's says more: its fault, not ours, decides."""
    tenant = harness.connect()
    ledger = harness.ledger()
    assert isinstance(ledger, QuickBooksLedger)
    ledger.puller.now = lambda: harness.clock.now() - timedelta(days=5)
    since = harness.clock.now() - timedelta(days=31)
    pages = list(ledger.pull("invoices", Cursor(since=since)))
    assert ledger.api.calls == 3  # the refused CDC, then a count and one page of query
    assert sum(page.api_calls for page in pages) == 3  # all of them reported
    assert harness.sb.api.calls.get("cdc", 0) == 0
    assert harness.sb.api.calls["query"] == 2
    assert len(pages) == 1
    assert pages[-1].cursor.token is None
    assert tenant.id


def test_an_answer_at_the_cdc_cap_falls_back_to_queries(bigger, store):
    harness = bigger
    tenant = harness.connect()
    sync(harness, store, tenant.id, full=True)
    company = harness.sb.company
    ids = harness.expected_ids()
    touched = {"Invoice": ids["invoice"], "Payment": ids["payment"], "Customer": ids["customer"]}
    assert sum(len(v) for v in touched.values()) > 1000  # more changes than one CDC answer holds
    for entity, record_ids in touched.items():
        for rid in record_ids:
            token = str(company.get(entity, rid).sync_token)
            company.update(entity, {"Id": rid, "SyncToken": token, "sparse": True, "PrivateNote": "touched"})
    served = sum(harness.sb.api.calls.values())
    result = sync(harness, store, tenant.id)
    assert result.outcome == "ok", result.error
    assert harness.sb.api.calls.get("cdc") == 1  # asked once, found capped, not asked again
    assert result.api_calls == sum(harness.sb.api.calls.values()) - served  # every request reported
    for stream, kind in (("invoices", "invoice"), ("payments", "payment"), ("customers", "customer")):
        assert result.counts[stream]["read"] == len(ids[kind]), stream  # every change, via queries


def test_a_write_throttled_with_an_xml_body_is_waited_out_and_done_once(limited, store):
    limited.connect()
    customer = limited.a_customer()
    limited.spend_rate_window()
    result = limited.ledger().set_hold(f"customer:{customer}", True, "over limit", "k/hold/throttled")
    assert result.applied
    assert limited.throttled >= 1  # QBO's 429 says ThrottleExceeded in XML, whatever the request was
    assert limited.on_hold(customer)
    assert sum("over limit" in n for n in limited.notes("customer", customer)) == 1


def test_a_stale_sync_token_is_reread_and_the_hold_still_applied(harness, store):
    harness.connect()
    customer = harness.a_customer()
    company = harness.sb.company
    ledger = harness.ledger()
    real_update = ledger.api.update
    raced: list[bool] = []

    def update_after_someone_else(entity, body, request_id=None):
        if not raced:  # a person edits the customer between our read and our write
            raced.append(True)
            row = company.get("Customer", customer)
            company.update(
                "Customer",
                {
                    "Id": customer,
                    "SyncToken": str(row.sync_token),
                    "sparse": True,
                    "Notes": "Changed by a person",
                },
            )
        return real_update(entity, body, request_id)

    ledger.api.update = update_after_someone_else
    result = ledger.set_hold(f"customer:{customer}", True, "over limit", "k/hold/1")
    assert result.applied
    notes = harness.doc("Customer", customer)["Notes"]
    assert notes.startswith("Changed by a person\n[ccm credit hold]")


def test_a_customers_own_notes_survive_hold_and_release(harness, store):
    harness.connect()
    customer = harness.a_customer()
    company = harness.sb.company
    own = "Pays by BACS on Fridays\nAsk for Sam"
    company.update(
        "Customer",
        {
            "Id": customer,
            "SyncToken": str(company.get("Customer", customer).sync_token),
            "sparse": True,
            "Notes": own,
        },
    )
    harness.ledger().set_hold(f"customer:{customer}", True, "over limit", "k/hold/2")
    assert harness.on_hold(customer)
    assert harness.doc("Customer", customer)["Notes"].startswith(own + "\n")
    harness.ledger().set_hold(f"customer:{customer}", False, "paid up", "k/release/2")
    assert harness.doc("Customer", customer)["Notes"] == own
    assert any("released" in n for n in harness.notes("customer", customer))


def test_writes_are_done_once_even_when_qbo_ignores_requestid(harness, store):
    """Users report repeated requestids applied again: the adapter's re-checks do not rely on it."""
    harness.sb.api.honour_requestid = False
    harness.connect()
    for name in NAMES:
        each_key_once_under_lost_answers(harness, name)
    assert harness.sb.api.replayed == 0


def test_every_write_carries_a_requestid_that_only_a_resend_repeats(harness, store):
    harness.connect()
    seen: list[tuple[str, str | None]] = []
    handle = harness.sb.api.handle

    def recording(method, realm, path, params, headers, body):
        if method == "POST" and path != "query":
            seen.append((path, params.get("requestid")))
        return handle(method, realm, path, params, headers, body)

    harness.sb.api.handle = recording
    customer, invoice = harness.a_customer(), harness.an_invoice()
    ledger = harness.ledger()
    ledger.add_note(f"invoice:{invoice}", "Reminder 1", "k/rid/note")
    ledger.set_hold(f"customer:{customer}", True, "over limit", "k/rid/hold")
    ledger.send_via_ledger(f"invoice:{invoice}", "k/rid/send")
    assert [path for path, _ in seen] == ["attachable", "customer", "attachable", "attachable",
                                          f"invoice/{invoice}/send"]  # fmt: skip
    ids = [rid for _, rid in seen]
    assert all(ids) and len(set(ids)) == len(ids)


@pytest.mark.parametrize("kind", ["legacy", "cloudevents"])
def test_both_webhook_formats_become_changes(harness, store, kind):
    harness.connect()
    invoice = harness.an_invoice()
    events = (Event("Invoice", invoice, "Update", harness.clock.now()),
              Event("Payment", "77", "Delete", harness.clock.now()))  # fmt: skip
    body = (
        legacy_body(harness.sb.realm, events)
        if kind == "legacy"
        else cloudevents_body(harness.sb.realm, events, __import__("random").Random(1))
    )
    changes = harness.ledger().parse_webhook({"intuit-signature": sign(body, VERIFIER)}, body)
    assert isinstance(changes, list)
    assert [(c.tenant_external_id, c.stream, c.record_id, c.operation) for c in changes] == [
        (harness.sb.realm, "invoices", invoice, "update"),
        (harness.sb.realm, "payments", "77", "delete"),
    ]
    assert all(isinstance(c, Change) for c in changes)


def test_a_company_that_disconnected_the_app_needs_reconnecting(harness, store):
    tenant = harness.connect()
    harness.sb.disconnect()  # the user removed the app in QuickBooks: every token stops working
    result = sync(harness, store, tenant.id)
    assert result.outcome == "failed"
    assert result.reconnect_needed
    with store.read() as conn:
        link = get_connection(conn, tenant.id)
    assert link is not None
    assert link.state is ConnectionState.RECONNECT_NEEDED
    assert harness.sb.api.calls == {}  # nothing was read with a dead token


def test_a_refresh_token_value_lasts_a_day_then_only_the_stored_new_one_works(harness, store):
    tenant = harness.connect()
    first = tokens_of(harness, store, tenant.id)
    harness.advance(2 * 3600)  # the access token is dead; the refresh token is younger than a day
    assert sync(harness, store, tenant.id).outcome == "ok"
    assert tokens_of(harness, store, tenant.id) == first  # QBO handed back the same value
    harness.advance(23 * 3600)  # now older than a day: the refresh hands out a new value
    assert sync(harness, store, tenant.id).outcome == "ok"
    assert tokens_of(harness, store, tenant.id) != first
    harness.advance(2 * 3600)  # the access token is dead again; the new refresh token is used
    again = sync(harness, store, tenant.id)  # a new adapter instance: only the vault remembers
    assert again.outcome == "ok", again.error
    answer = requests.post(
        harness.sb.token_url, data={"grant_type": "refresh_token", "refresh_token": first},
        auth=(harness.sb.client_id, harness.sb.client_secret), verify=str(harness.sb.ca_path), timeout=10,
    )  # fmt: skip
    assert answer.status_code == 400  # the first value is dead: only the stored one could have worked


def test_an_invoice_without_bill_email_is_sent_to_its_customers_address(harness, store):
    harness.connect()
    company = harness.sb.company
    invoice = harness.an_invoice()
    doc = harness.doc("Invoice", invoice)
    customer = doc["CustomerRef"]["value"]
    company.update("Invoice", {"Id": invoice, "SyncToken": doc["SyncToken"], "sparse": True, "BillEmail": {}})
    assert not harness.doc("Invoice", invoice).get("BillEmail", {}).get("Address")
    result = harness.ledger().send_via_ledger(f"invoice:{invoice}", "k/send/no-bill-email")
    assert result.applied
    assert harness.emails_sent(invoice) == 1
    assert harness.doc("Invoice", invoice)["BillEmail"]["Address"] == harness.doc("Customer", customer)[
        "PrimaryEmailAddr"]["Address"]  # fmt: skip
