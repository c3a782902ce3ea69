"""Run leases: one holder per tenant across processes; a dead holder's lease expires."""

from __future__ import annotations

import multiprocessing
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection

from connector import lease
from connector.store import Store

NOW = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


def test_one_holder_at_a_time_and_expiry_frees_it(store: Store):
    first = lease.acquire(store, "acme", "a", NOW)
    with pytest.raises(lease.Busy, match=r"tenant 'acme' is being run by a \(lease until 02:05:00 UTC\)"):
        lease.acquire(store, "acme", "b", NOW + timedelta(minutes=1))
    assert lease.acquire(store, "zeta", "b", NOW).holder == "b"  # other tenants go on
    assert lease.acquire(store, "acme", "a", NOW + timedelta(minutes=1)).holder == "a"  # re-entrant
    taken = lease.acquire(store, "acme", "b", NOW + timedelta(minutes=7))  # a died: its lease ran out
    assert taken.holder == "b"
    with pytest.raises(lease.Busy, match="was lost"):
        lease.renew(store, first, NOW + timedelta(minutes=8))


def test_release_lets_the_next_holder_in(store: Store):
    with lease.held(store, "acme", "a", NOW), pytest.raises(lease.Busy):
        lease.acquire(store, "acme", "b", NOW)
    assert lease.acquire(store, "acme", "b", NOW).holder == "b"


def test_a_holder_that_releases_while_we_look_leaves_the_lease_free(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL another process's release can land between our failed attempt and our look at the
    holder (read committed): the lease is free then, so acquire tries again instead of failing to name one."""
    lease.acquire(store, "acme", "a", NOW)
    real_try = lease._try
    released: list[str] = []

    def release_after_the_attempt(
        conn: Connection, tenant_id: str, holder: str, now: datetime, ttl: timedelta
    ) -> bool:
        taken = real_try(conn, tenant_id, holder, now, ttl)
        if not taken and not released:
            conn.execute(lease.delete(lease.run_leases).where(lease.run_leases.c.holder == "a"))
            released.append("a")
        return taken

    monkeypatch.setattr(lease, "_try", release_after_the_attempt)
    assert lease.acquire(store, "acme", "b", NOW).holder == "b"
    assert released == ["a"]


def _grab(url: str, holder: str) -> bool:
    store = Store.open(url)
    try:
        lease.acquire(store, "acme", holder, NOW)
        return True
    except lease.Busy:
        return False
    finally:
        store.close()


def test_only_one_of_many_processes_gets_the_lease(db_url: str, store: Store):
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        results = pool.starmap(_grab, [(db_url, f"p{i}") for i in range(4)])
    assert sorted(results) == [False, False, False, True]


def test_a_lease_held_by_a_dead_process_on_this_host_is_taken_over_at_once(store: Store):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    corpse = f"{socket.gethostname()}:{dead.pid}:abcd1234"
    lease.acquire(store, "acme", corpse, NOW)
    assert lease.holder_is_dead(corpse)
    assert lease.acquire(store, "acme", "next", NOW + timedelta(seconds=1)).holder == "next"
    alive = f"{socket.gethostname()}:{os.getpid()}:abcd1234"
    assert not lease.holder_is_dead(alive)
    assert not lease.holder_is_dead(f"another-host:{dead.pid}:x")


def test_a_kept_lease_outlives_its_ttl_and_notices_when_it_is_lost(store: Store):
    import time

    from connector.store.schema import run_leases

    def expires() -> datetime:
        with store.read() as conn:
            return conn.execute(run_leases.select()).one().expires_at.astimezone(UTC)

    with lease.kept(store, "acme", "a", timedelta(seconds=3)) as keeper:
        first = expires()
        deadline = time.monotonic() + 60
        while datetime.now(UTC) <= first or expires() <= first:  # the first TTL is over: only a renewal
            assert time.monotonic() < deadline, f"the lease was not renewed past {first}"  # keeps it now
            time.sleep(0.05)
        with pytest.raises(lease.Busy):
            lease.acquire(store, "acme", "b", datetime.now(UTC))
        with store.begin() as conn:  # someone else has it now (it ran out while this process was frozen)
            conn.execute(run_leases.update().values(holder="b"))
        assert keeper.lost.wait(
            60
        )  # the keeper's next renewal finds it gone: work stops at its next safe point
    with store.read() as conn:
        assert conn.execute(run_leases.select()).one().holder == "b"  # not released from under its holder


def test_a_holder_frozen_past_its_lease_finds_it_lost_at_its_next_safe_point(store: Store):
    """The keeper thread may not have woken yet when the holder resumes: asking is enough to find out."""
    from connector.store.schema import run_leases

    with lease.kept(store, "acme", "a", timedelta(minutes=5)) as keeper:
        assert not keeper.is_lost()  # minutes left: nobody else can have it, and the database is not asked
        past = datetime.now(UTC) - timedelta(seconds=1)
        keeper.lease = lease.Lease("acme", "a", past)  # it slept through its renewals and ran out
        with store.begin() as conn:
            conn.execute(run_leases.update().values(expires_at=past))
        assert not keeper.is_lost()  # ran out, but nobody took it: renewed on the spot
        with store.read() as conn:
            assert conn.execute(run_leases.select()).one().expires_at > datetime.now(UTC) + timedelta(
                minutes=4
            )
        keeper.lease = lease.Lease("acme", "a", past)
        with store.begin() as conn:  # this time another holder took it while it slept
            conn.execute(
                run_leases.update().values(holder="b", expires_at=datetime.now(UTC) + timedelta(minutes=5))
            )
        assert keeper.is_lost()
        assert keeper.lost.is_set()
    with store.read() as conn:
        assert conn.execute(run_leases.select()).one().holder == "b"
