"""Safe first nights end to end on both sandboxes (issue 12, item 7).

A firm connected through the ledger's real OAuth flow runs its first night in approve mode: the SMTP server
receives nothing and the ledger's own book records no write (no note, no hold). A person approves part of the
plan; the next run sends exactly that: the approved reminders reach the SMTP server, the approved hold reaches
the ledger's book, and nothing else does.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from connector import creditcontrol as credit
from connector import outbox
from connector.config import Settings
from connector.model import Tenant
from connector.outbox import Mode, State
from connector.payloads import encode
from connector.run.night import run_night
from connector.store import Store
from tests.e2e.sandboxes import Side, connected, start
from tests.e2e.test_credit_on_sandboxes import days


@pytest.fixture(params=["xero", "quickbooks"])
def side(request: pytest.FixtureRequest) -> Iterator[Side]:
    running = start(request.param)
    yield running
    running.handle.stop()


@pytest.fixture
def tenant(side: Side, settings: Settings, store: Store) -> Tenant:
    return connected(side, settings, store)


def waiting(store: Store, tenant_id: str) -> list[outbox.Action]:
    with store.read() as conn:
        return outbox.actions(conn, tenant_id, [State.AWAITING_APPROVAL])


@pytest.mark.slow
def test_the_first_night_sends_and_writes_nothing_and_the_next_run_sends_exactly_what_was_approved(
    side, settings, store, tenant, inbox
):
    d = days()
    writes = side.writes()
    first = run_night(store, settings, tenant.id, now=d.morning, mode=None)  # the firm's own mode
    assert (first.mode, first.safe_night) == (Mode.APPROVE, 1), first.why_mode
    assert first.stopped is None
    planned = waiting(store, tenant.id)
    reminders = [a for a in planned if a.kind == "reminder" and a.channel == "email"]
    holds = [a for a in planned if a.kind == "hold"]
    assert len(reminders) >= 2 and holds, "the demo firm has reminders and holds to plan"
    assert inbox.messages == []  # the SMTP server received nothing
    assert side.writes() == writes  # the ledger's book: no note, no hold, nothing touched
    assert not any(side.on_hold(h.customer_id) for h in holds)
    with store.read() as conn:
        assert credit.holds(conn, tenant.id) == {}

    held = {h.customer_id for h in holds}
    chosen = [r for r in reminders if r.customer_id not in held][: len(reminders) // 2] or reminders[:1]
    hold = holds[0]
    with store.begin() as conn:
        assert (
            outbox.approve(conn, tenant.id, [a.key for a in chosen] + [hold.key], d.morning)
            == len(chosen) + 1
        )

    second = run_night(store, settings, tenant.id, now=d.morning + timedelta(minutes=10), mode=None)
    assert (second.mode, second.safe_night) == (Mode.APPROVE, 1)  # the same night, run again
    assert sorted(str(m["X-CCM-Action"]) for m in inbox.messages) == sorted(a.key for a in chosen)
    assert sorted(str(m["To"]) for m in inbox.messages) == sorted(
        str(encode(a.payload)["email"]) for a in chosen
    )
    assert side.on_hold(hold.customer_id)
    assert [h.customer_id for h in holds if side.on_hold(h.customer_id)] == [hold.customer_id]
    with store.read() as conn:
        done = [a for a in outbox.actions(conn, tenant.id, [State.SENT]) if a.kind != "note"]
        notes = [a for a in outbox.actions(conn, tenant.id) if a.kind == "note"]
    assert sorted(a.key for a in done) == sorted([a.key for a in chosen] + [hold.key])
    # The only other writes: the ledger notes saying which approved reminder went out.
    assert notes and all(any(r.key in str(encode(n.payload)["text"]) for r in chosen) for n in notes)
    left = {a.key for a in waiting(store, tenant.id)}
    assert {a.key for a in reminders if a not in chosen} <= left  # what was not approved still waits
