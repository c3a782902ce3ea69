"""The nights table: marked due once by anyone, claimed once under the lease, finished by its holder."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from connector import lease
from connector.serve import nights
from connector.store import Store

NOW = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
D1, D2, D3 = date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)


def _claimable(store: Store, now: datetime = NOW) -> list[tuple[str, date, str]]:
    with store.read() as conn:
        return [(c.tenant_id, c.night, c.state) for c in nights.claimable(conn, now, datetime.now(UTC))]


def test_marking_due_twice_is_one_night(store: Store):
    with store.begin() as conn:
        assert nights.mark_due(conn, "acme", D2, NOW)
        assert not nights.mark_due(conn, "acme", D2, NOW)  # the other server, or the same one restarted
    assert _claimable(store) == [("acme", D2, "due")]


def test_a_night_is_claimed_once_and_finished_by_its_holder(store: Store):
    with store.begin() as conn:
        nights.mark_due(conn, "acme", D2, NOW)
        assert nights.claim(conn, "acme", D2, "server-a", NOW) == 1
        assert nights.claim(conn, "acme", D2, "server-b", NOW) is not None  # only under the lease...
    with store.begin() as conn:
        assert not nights.finish(
            conn, "acme", D2, "server-a", nights.NightState.DONE, "x", NOW
        )  # ...so the lease matters
        assert nights.finish(
            conn, "acme", D2, "server-b", nights.NightState.DONE, "ok", NOW + timedelta(minutes=3)
        )
        assert nights.claim(conn, "acme", D2, "server-a", NOW) is None  # done is done
    [night] = nights_of(store)
    assert (night.state, night.attempts, night.summary) == ("done", 2, "ok")


def test_catching_up_runs_only_the_latest_night(store: Store):
    with store.begin() as conn:
        nights.mark_due(conn, "acme", D1, NOW - timedelta(days=1))
        nights.mark_due(conn, "acme", D2, NOW)
    assert _claimable(store) == [("acme", D2, "due")]  # the latest only
    with store.begin() as conn:
        nights.claim(conn, "acme", D2, "me", NOW)
    states = {n.night: n.state for n in nights_of(store)}
    assert states == {D1: "superseded", D2: "running"}


def test_a_retry_waits_for_its_time_and_a_shutdown_makes_it_due_again(store: Store):
    with store.begin() as conn:
        nights.mark_due(conn, "acme", D3, NOW)
        nights.claim(conn, "acme", D3, "me", NOW)
        nights.finish(
            conn, "acme", D3, "me", nights.NightState.RETRY, "503s", NOW, NOW + timedelta(minutes=30)
        )
    assert _claimable(store, NOW + timedelta(minutes=29)) == []
    assert _claimable(store, NOW + timedelta(minutes=30)) == [("acme", D3, "retry")]
    with store.begin() as conn:
        assert nights.claim(conn, "acme", D3, "me", NOW + timedelta(minutes=30)) == 2
        nights.finish(conn, "acme", D3, "me", nights.NightState.DUE, "stopped by a shutdown", NOW)
    assert _claimable(store) == [("acme", D3, "due")]


def test_a_night_whose_tenant_is_leased_by_a_live_holder_is_left_alone(store: Store):
    with store.begin() as conn:
        nights.mark_due(conn, "acme", D2, NOW)
        nights.mark_due(conn, "zeta", D2, NOW)
    held = lease.acquire(store, "acme", lease.new_holder(), datetime.now(UTC))  # this process: alive
    assert _claimable(store) == [("zeta", D2, "due")]
    lease.release(store, held)
    dead = "vm-that-is-gone:1:x"  # another host's holder whose lease ran out
    lease.acquire(store, "acme", dead, datetime.now(UTC) - timedelta(hours=1))
    assert sorted(_claimable(store)) == [("acme", D2, "due"), ("zeta", D2, "due")]


def nights_of(store: Store) -> list[nights.Night]:
    with store.read() as conn:
        return nights.recent(conn, "acme")
