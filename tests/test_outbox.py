"""The outbox: planning twice yields one action; executing is at most once; unknown outcomes are shown."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

from connector import outbox
from connector.outbox import Mode, NewAction, State
from connector.payloads import Kind, decode
from connector.store import Store

NOW = datetime(2026, 11, 23, 22, 0, tzinfo=UTC)


def reminder(key: str = "dun-1", replay_safe: bool = False) -> NewAction:
    payload = decode(Kind.REMINDER, {"lines": [{"invoice_id": "INV-1", "level": 2}]})
    return NewAction(key, Kind.REMINDER, "email", "C-ANN", payload, NOW + timedelta(hours=11), replay_safe)


def states(store: Store) -> dict[str, State]:
    with store.read() as conn:
        return {a.key: a.state for a in outbox.actions(conn, "acme")}


def test_planning_the_same_action_twice_yields_one_row(store: Store):
    with store.begin() as conn:
        first = outbox.plan(conn, "acme", [reminder()], Mode.AUTO, NOW)
    with store.begin() as conn:
        second = outbox.plan(conn, "acme", [reminder(), reminder("dun-2")], Mode.AUTO, NOW)
    assert (first.created, first.existing) == (["dun-1"], [])
    assert (second.created, second.existing) == (["dun-2"], ["dun-1"])
    assert states(store) == {"dun-1": State.PLANNED, "dun-2": State.PLANNED}


def test_a_dry_run_stores_nothing(store: Store):
    with store.begin() as conn:
        outbox.plan(conn, "acme", [reminder()], Mode.DRY_RUN, NOW)
    assert states(store) == {}


def test_approve_mode_waits_for_the_bookkeeper(store: Store):
    with store.begin() as conn:
        outbox.plan(conn, "acme", [reminder(), reminder("dun-2")], Mode.APPROVE, NOW)
        assert outbox.due(conn, "acme", NOW + timedelta(days=1)) == []
        assert outbox.approve(conn, "acme", ["dun-2"], NOW) == 1
        assert [a.key for a in outbox.due(conn, "acme", NOW + timedelta(days=1))] == ["dun-2"]


def test_nothing_is_due_before_its_send_time(store: Store):
    with store.begin() as conn:
        outbox.plan(conn, "acme", [reminder()], Mode.AUTO, NOW)
        assert outbox.due(conn, "acme", NOW) == []
        assert [a.key for a in outbox.due(conn, "acme", NOW + timedelta(hours=11))] == ["dun-1"]


def test_only_one_executor_can_claim_an_action(store: Store):
    with store.begin() as conn:
        outbox.plan(conn, "acme", [reminder()], Mode.AUTO, NOW)
    wins: list[bool] = []

    def take(owner: str) -> None:
        with store.begin() as conn:
            wins.append(outbox.claim(conn, "acme", "dun-1", owner, NOW))

    threads = [threading.Thread(target=take, args=(f"worker-{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 5 + [True]


def test_completing_records_which_level_each_invoice_had(store: Store):
    with store.begin() as conn:
        outbox.plan(conn, "acme", [reminder()], Mode.AUTO, NOW)
        outbox.claim(conn, "acme", "dun-1", "w", NOW)
        assert outbox.complete(conn, "acme", "dun-1", "<dun-1@ccm>", NOW, [("INV-1", 2)], date(2026, 11, 24))
        assert not outbox.complete(conn, "acme", "dun-1", "<dun-1@ccm>", NOW, [("INV-1", 2)])  # twice: no-op
        assert outbox.last_levels(conn, "acme") == {"INV-1": (2, date(2026, 11, 24))}
        assert outbox.last_contacts(conn, "acme") == {"C-ANN": date(2026, 11, 24)}
    assert states(store) == {"dun-1": State.SENT}


def test_a_death_mid_send_becomes_unknown_never_retried_blindly(store: Store):
    with store.begin() as conn:
        outbox.plan(conn, "acme", [reminder(), reminder("note-1", replay_safe=True)], Mode.AUTO, NOW)
        outbox.claim(conn, "acme", "dun-1", "w", NOW)
        outbox.claim(conn, "acme", "note-1", "w", NOW)
    # ... the process dies here; later, the next run recovers:
    with store.begin() as conn:
        assert outbox.recover(conn, "acme", NOW + timedelta(minutes=1)) == ["dun-1"]
    assert states(store) == {"dun-1": State.UNKNOWN, "note-1": State.PLANNED}
    with store.read() as conn:
        [unknown] = outbox.actions(conn, "acme", [State.UNKNOWN])
    assert "may or may not have gone out" in (unknown.reason or "")
    with store.begin() as conn:
        assert outbox.resolve(conn, "acme", "dun-1", went_out=True, now=NOW)
    assert states(store)["dun-1"] is State.SENT


def test_recover_leaves_fresh_claims_alone(store: Store):
    with store.begin() as conn:
        outbox.plan(conn, "acme", [reminder()], Mode.AUTO, NOW)
        outbox.claim(conn, "acme", "dun-1", "w", NOW)
        assert (
            outbox.recover(conn, "acme", NOW + timedelta(minutes=1), older_than=timedelta(minutes=10)) == []
        )
    assert states(store) == {"dun-1": State.SENDING}


def test_cancel_only_touches_actions_not_started(store: Store):
    with store.begin() as conn:
        outbox.plan(conn, "acme", [reminder(), reminder("dun-2")], Mode.AUTO, NOW)
        outbox.claim(conn, "acme", "dun-2", "w", NOW)
        assert outbox.cancel(conn, "acme", "dun-1", "INV-1 was paid since planning", NOW)
        assert not outbox.cancel(conn, "acme", "dun-2", "too late", NOW)
        [cancelled] = outbox.actions(conn, "acme", [State.CANCELLED])
    assert cancelled.reason == "INV-1 was paid since planning"


def test_a_transient_failure_gives_the_action_back(store: Store):
    with store.begin() as conn:
        outbox.plan(conn, "acme", [reminder()], Mode.AUTO, NOW)
        outbox.claim(conn, "acme", "dun-1", "w", NOW)
        assert outbox.release(conn, "acme", "dun-1", "SMTP server unreachable", NOW)
        [again] = outbox.due(conn, "acme", NOW + timedelta(days=1))
    assert (again.state, again.attempts, again.reason) == (State.PLANNED, 1, "SMTP server unreachable")


def test_the_outbox_is_scoped_by_tenant(store: Store):
    with store.begin() as conn:
        outbox.plan(conn, "acme", [reminder()], Mode.AUTO, NOW)
        outbox.plan(conn, "zeta", [reminder()], Mode.AUTO, NOW)
        assert outbox.claim(conn, "zeta", "dun-1", "w", NOW)
        assert [a.state for a in outbox.actions(conn, "acme")] == [State.PLANNED]
