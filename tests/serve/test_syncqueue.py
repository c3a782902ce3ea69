"""Sync requests: stored, debounced per tenant, answered up to the newest one a sync covered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connector.serve import syncqueue
from connector.store import Store

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def test_requests_wait_for_quiet_or_for_the_longest_delay(store: Store):
    with store.begin() as conn:
        syncqueue.add(conn, "acme", ["invoices"], syncqueue.WEBHOOK, T0)
        syncqueue.add(conn, "acme", ["contacts", "contacts"], syncqueue.WEBHOOK, T0 + timedelta(seconds=4))
        syncqueue.add(conn, "zeta", [None], syncqueue.NOW, T0)
    with store.read() as conn:
        waiting = {p.tenant_id: p for p in syncqueue.pending(conn)}
    acme = waiting["acme"]
    assert (acme.count, acme.first_at, acme.last_at) == (2, T0, T0 + timedelta(seconds=4))  # one row a stream
    assert not acme.ready(T0 + timedelta(seconds=6), debounce=5, max_delay=60)  # still a burst
    assert acme.ready(T0 + timedelta(seconds=9), debounce=5, max_delay=60)  # quiet for 5 s
    assert acme.ready(T0 + timedelta(seconds=60), debounce=3600, max_delay=60)  # waited long enough
    with store.read() as conn:
        assert syncqueue.streams(conn, "acme", acme.up_to) == (["contacts", "invoices"], ["webhook"])
        assert syncqueue.streams(conn, "zeta", waiting["zeta"].up_to) == (None, ["now"])  # None: all streams


def test_a_finished_sync_forgets_only_what_it_covered(store: Store):
    with store.begin() as conn:
        syncqueue.add(conn, "acme", ["invoices"], syncqueue.WEBHOOK, T0)
    with store.read() as conn:
        [first] = syncqueue.pending(conn)
    with store.begin() as conn:  # arrives while the sync runs
        syncqueue.add(conn, "acme", ["payments"], syncqueue.POLL, T0 + timedelta(seconds=1))
        assert syncqueue.done(conn, "acme", first.up_to) == 1
    with store.read() as conn:
        [left] = syncqueue.pending(conn)
        assert syncqueue.streams(conn, "acme", left.up_to) == (["payments"], ["poll"])
    with store.begin() as conn:  # a whole-tenant sync that started after it answers it too
        assert syncqueue.covered_by(conn, "acme", T0 + timedelta(seconds=2)) == 1
        assert syncqueue.depth(conn) == 0
