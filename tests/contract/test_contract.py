"""The contract every ledger adapter passes, against its own sandbox, through run_sync and a real store.

One suite for all adapters (see harness.py for how a ledger plugs in): connect, full and incremental sync,
deletes and voids, tokens expiring mid-sync and rotating across restarts, a lost refresh answer, 429s and
503 bursts, webhooks, and write-backs done exactly once. Each ledger's own numbers (calls per sync, token
lifetimes) come from its harness.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from connector.ledger import Change, Rejected
from connector.model import ConnectionState
from connector.oauth import TokenVault
from connector.store import Store, records, synclog
from connector.store.tenants import get_connection
from connector.sync import PageEvent, SyncResult, run_sync
from tests.contract.conftest import CONTRACT_ONLY, HARNESSES, started
from tests.contract.harness import Harness

ENTITIES = ("customer", "invoice", "credit_note", "payment")
EVERY = [*HARNESSES, *CONTRACT_ONLY]  # the contract runs against every ledger, the test-only ones too


@pytest.fixture(params=EVERY)
def harness(request: pytest.FixtureRequest, store: Store, tmp_path: Path) -> Iterator[Harness]:
    """A ledger's sandbox with limits off, and its adapter (this module's: every ledger)."""
    yield from started(request.param, store, tmp_path, limits=False)


@pytest.fixture(params=EVERY)
def limited(request: pytest.FixtureRequest, store: Store, tmp_path: Path) -> Iterator[Harness]:
    """A ledger's sandbox enforcing its rate limits (on an accelerated clock)."""
    yield from started(request.param, store, tmp_path, limits=True)


def sync(
    h: Harness, store: Store, tenant_id: str, *, full: bool = False,
    on_page: Callable[[PageEvent], None] | None = None,
) -> SyncResult:  # fmt: skip
    def now() -> datetime:
        value = h.now()
        assert isinstance(value, datetime)
        return value

    return run_sync(store, tenant_id, h.ledger(), h.mapping(), full=full, clock=now, on_page=on_page)


def stored(store: Store, tenant_id: str, entity: str) -> dict[str, dict[str, object]]:
    with store.read() as conn:
        return {row["id"]: row for row in records.load(conn, tenant_id, entity)}


def changed_ids(store: Store, tenant_id: str, run_id: int) -> set[str]:
    with store.read() as conn:
        return {c.record_id for c in synclog.changes(conn, tenant_id, run_id)}


def tokens_of(h: Harness, store: Store, tenant_id: str) -> str:
    vault = h.services().vault
    assert isinstance(vault, TokenVault)
    tokens = vault.get(tenant_id)
    assert tokens is not None
    return tokens.refresh_token


# ---- connect and read


def test_connect_stores_the_connection_and_the_tokens(harness: Harness, store: Store) -> None:
    tenant = harness.connect()
    with store.read() as conn:
        link = get_connection(conn, tenant.id)
    assert link is not None
    assert (link.ledger, link.state) == (harness.name, ConnectionState.CONNECTED)
    assert link.external_id
    assert tokens_of(harness, store, tenant.id)


def test_full_sync_stores_every_record_the_books_hold(harness: Harness, store: Store) -> None:
    tenant = harness.connect()
    result = sync(harness, store, tenant.id, full=True)
    assert result.outcome == "ok", result.error
    for entity, ids in harness.expected_ids().items():
        assert set(stored(store, tenant.id, entity)) == ids, entity


def test_an_unchanged_ledger_costs_the_fewest_calls(harness: Harness, store: Store) -> None:
    tenant = harness.connect()
    sync(harness, store, tenant.id, full=True)
    served = harness.stats().calls
    result = sync(harness, store, tenant.id)
    assert result.outcome == "ok", result.error
    assert result.api_calls == harness.unchanged_sync_calls  # Xero: one per stream; QBO: one CDC in all
    assert harness.stats().calls - served == result.api_calls  # every request made is reported
    assert changed_ids(store, tenant.id, result.run_id) == set()


def test_incremental_sync_reads_only_what_changed(harness: Harness, store: Store) -> None:
    tenant = harness.connect()
    full = sync(harness, store, tenant.id, full=True)
    paid = harness.pay_invoice()
    result = sync(harness, store, tenant.id)
    assert result.outcome == "ok", result.error
    assert paid in changed_ids(store, tenant.id, result.run_id)
    read = sum(c["read"] for c in result.counts.values())
    assert read < sum(c["read"] for c in full.counts.values()) / 4  # only the changed records, not the books
    assert result.api_calls <= harness.unchanged_sync_calls  # a few changes cost no more than none


def test_voids_and_deletes_arrive_as_status_changes(harness: Harness, store: Store) -> None:
    tenant = harness.connect()
    sync(harness, store, tenant.id, full=True)
    voided = harness.void_invoice()
    deleted = harness.delete_payment()
    result = sync(harness, store, tenant.id)
    assert result.outcome == "ok", result.error
    assert stored(store, tenant.id, "invoice")[voided]["status"] == "voided"
    assert stored(store, tenant.id, "payment")[deleted]["status"] == "deleted"


# ---- tokens


def rotating_age(h: Harness) -> int:
    """Seconds after which the access token is dead and a refresh hands back a new refresh token."""
    return max(h.access_token_life_s, h.refresh_rotation_s) + 60


def test_an_access_token_expiring_mid_sync_is_renewed(harness: Harness, store: Store) -> None:
    tenant = harness.connect()
    before = tokens_of(harness, store, tenant.id)
    pages = []

    def age_tokens(event: PageEvent) -> None:
        pages.append(event)
        if len(pages) == 1:  # between two pages: the access token dies, the refresh token is due to rotate
            harness.advance(rotating_age(harness))

    result = sync(harness, store, tenant.id, full=True, on_page=age_tokens)
    assert result.outcome == "ok", result.error
    assert tokens_of(harness, store, tenant.id) != before  # the rotated refresh token was stored
    for entity, ids in harness.expected_ids().items():
        assert set(stored(store, tenant.id, entity)) == ids, entity


def test_a_rotated_refresh_token_survives_a_restart(harness: Harness, store: Store) -> None:
    tenant = harness.connect()
    harness.advance(rotating_age(harness))
    assert sync(harness, store, tenant.id).outcome == "ok"  # refreshes: the old refresh token is replaced
    harness.advance(2 * harness.access_token_life_s)  # refresh due again; the old token is past any grace
    again = sync(harness, store, tenant.id)  # harness.ledger() builds a new adapter: nothing in memory
    assert again.outcome == "ok", again.error


def test_a_lost_refresh_answer_is_recovered_within_the_grace_window(harness: Harness, store: Store) -> None:
    tenant = harness.connect()
    before = tokens_of(harness, store, tenant.id)
    harness.advance(rotating_age(harness))
    harness.lose_refresh_answer()  # the ledger rotated the token but ccm never heard the answer
    result = sync(harness, store, tenant.id)
    assert result.outcome == "ok", result.error
    assert tokens_of(harness, store, tenant.id) != before  # the rotated token, learnt from the retry, is kept


def test_a_dead_refresh_token_fails_the_run_and_marks_the_connection(harness: Harness, store: Store) -> None:
    tenant = harness.connect()
    harness.advance(harness.refresh_idle_life_s + 24 * 3600)  # an unused refresh token dies
    result = sync(harness, store, tenant.id)
    assert result.outcome == "failed"
    assert result.reconnect_needed
    with store.read() as conn:
        link = get_connection(conn, tenant.id)
    assert link is not None
    assert link.state is ConnectionState.RECONNECT_NEEDED
    assert "reconnect" in link.message


# ---- limits and faults


def test_a_429_is_honoured_and_the_sync_completes(limited: Harness, store: Store) -> None:
    tenant = limited.connect()
    limited.spend_rate_window()
    before = limited.stats()
    result = sync(limited, store, tenant.id, full=True)
    assert result.outcome == "ok", result.error
    assert limited.stats().throttled - before.throttled >= 1  # one 429 from the spent window, then waited
    for entity, ids in limited.expected_ids().items():
        assert set(stored(store, tenant.id, entity)) == ids, entity


def test_a_503_burst_is_retried(harness: Harness, store: Store) -> None:
    tenant = harness.connect()
    harness.fail_next(3)
    result = sync(harness, store, tenant.id, full=True)
    assert result.outcome == "ok", result.error
    for entity, ids in harness.expected_ids().items():
        assert set(stored(store, tenant.id, entity)) == ids, entity


# ---- webhooks


def test_webhooks_are_verified_on_the_raw_body(harness: Harness, store: Store) -> None:
    harness.connect()
    ledger = harness.ledger()
    intent = harness.delivery(events=False, good_signature=True)
    assert ledger.parse_webhook(intent.headers, intent.body) == []
    forged = harness.delivery(events=False, good_signature=False)
    rejected = ledger.parse_webhook(forged.headers, forged.body)
    assert isinstance(rejected, Rejected)
    assert rejected.status == 401
    good = harness.delivery(events=True, good_signature=True)
    changes = ledger.parse_webhook(good.headers, good.body)
    assert isinstance(changes, list)
    assert changes
    assert all(isinstance(c, Change) for c in changes)
    assert {c.stream for c in changes} <= set(harness.mapping().streams)
    bad = harness.delivery(events=True, good_signature=False)
    assert isinstance(ledger.parse_webhook(bad.headers, bad.body), Rejected)


# ---- write-backs, exactly once


def test_a_note_is_written_once_per_key(harness: Harness, store: Store) -> None:
    harness.connect()
    invoice = harness.an_invoice()
    first = harness.ledger().add_note(f"invoice:{invoice}", "Reminder 1 sent", "acme/inv/r1")
    second = harness.ledger().add_note(f"invoice:{invoice}", "Reminder 1 sent", "acme/inv/r1")  # a retry
    assert (first.applied, second.applied) == (True, False)
    assert sum("Reminder 1 sent" in n for n in harness.notes("invoice", invoice)) == 1


def test_a_hold_is_set_once_and_released(harness: Harness, store: Store) -> None:
    harness.connect()
    customer = harness.a_customer()
    first = harness.ledger().set_hold(f"customer:{customer}", True, "over limit", "acme/c/hold/1")
    again = harness.ledger().set_hold(f"customer:{customer}", True, "over limit", "acme/c/hold/1")
    assert (first.applied, again.applied) == (True, False)
    assert harness.on_hold(customer)
    assert sum("over limit" in n for n in harness.notes("customer", customer)) == 1
    released = harness.ledger().set_hold(f"customer:{customer}", False, "paid up", "acme/c/release/1")
    assert released.applied
    assert not harness.on_hold(customer)


def test_the_ledger_sends_an_invoice_once_per_key(harness: Harness, store: Store) -> None:
    harness.connect()
    invoice = harness.an_invoice()
    first = harness.ledger().send_via_ledger(f"invoice:{invoice}", "acme/inv/send/1")
    again = harness.ledger().send_via_ledger(f"invoice:{invoice}", "acme/inv/send/1")
    assert (first.applied, again.applied) == (True, False)
    assert harness.emails_sent(invoice) == 1
