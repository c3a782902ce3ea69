"""SIGTERM in the middle of a night's sync: the page in hand is committed, the lease released, the night is
due again, and the next server start finishes it from where it stopped."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from adapters.sandbox.generator import FirmSize
from adapters.xero import sandbox as xero_sandbox
from connector.store import Store
from connector.store.schema import customers, invoices, run_leases, sync_cursors, sync_runs
from tests.serve.harness import (
    SimClock,
    clean_env,
    connect,
    free_port,
    night_rows,
    serving,
    utc,
    wait_for,
    xero_env,
)

pytestmark = pytest.mark.slow


def _night_runs(store: Store) -> list:
    with store.read() as conn:
        query = select(sync_runs).where(sync_runs.c.trigger == "night").order_by(sync_runs.c.run_id)
        return list(conn.execute(query).all())


def test_sigterm_mid_sync_checkpoints_releases_the_lease_and_the_night_resumes(tmp_path: Path):
    clock = SimClock.starting(utc(2026, 11, 25, 1, 59), 60)  # a minute a second
    port = free_port()
    firm = clock.firm(61, size=FirmSize(300, 3000, 2000))
    xero = xero_sandbox.start(firm, clock=clock.sandbox(), limits=False)
    home = tmp_path / "home"
    env = clean_env() | xero_env(xero, port) | {
        "CCM_HOME": str(home), "CCM_SERVE__CLOCK": clock.spec, "CCM_SERVE__POLL_MINUTES": "0",
        "CCM_SERVE__TICK_SECONDS": "0.1", "CCM_SERVE__SHUTDOWN_SECONDS": "20",
    }  # fmt: skip
    store = Store.open(f"sqlite:///{home / 'ccm.db'}")
    try:
        with serving(env, port) as server:
            soon = (clock.now() + timedelta(minutes=6)).replace(
                second=0, microsecond=0
            )  # connected well before
            assert "is connected to" in connect(server, "xero", "big", xero, timezone="UTC",
                                                night_time=f"{soon:%H:%M}").text  # fmt: skip
            xero.faults.latency_s = 0.4  # every page takes a while: the night is mid-sync for seconds
            run = wait_for(lambda: [r for r in _night_runs(store) if r.counts], 30, "a first committed page")[
                0
            ]
            assert server.stop() == 0, server.output()[
                -3000:
            ]  # it stops at the page in hand, not the whole sync
        with store.read() as conn:
            interrupted = conn.execute(select(sync_runs).where(sync_runs.c.run_id == run.run_id)).one()
            assert interrupted.outcome == "interrupted"  # a whole sync waited out would have ended "ok"
            assert "stopped for a shutdown" in interrupted.error_summary
            assert conn.execute(select(run_leases)).all() == []
            assert conn.execute(select(func.count()).select_from(sync_cursors)).scalar_one() >= 1
        [night] = night_rows(store)
        assert (night.state, night.attempts) == ("due", 1)

        xero.faults.clear()
        with serving(env, port) as again:
            wait_for(
                lambda: night_rows(store)[0].state == "done", 60, "the night to finish after the restart"
            )
            assert again.stop() == 0
    finally:
        xero.stop()
    [night] = night_rows(store)
    assert night.attempts == 2
    runs = _night_runs(store)
    assert [r.outcome for r in runs] == ["interrupted", "ok"]
    first, resumed = runs[0].counts, runs[1].counts
    for stream, done in first.items():  # what the first run committed is not read again (bar the overlap)
        if stream in resumed and stream != "contacts":  # contacts are read whole every sync (their Balances)
            total = {"contacts": 300, "invoices": 3000}[stream]
            assert resumed[stream]["read"] <= total - int(done["read"]) + 5, (stream, done, resumed[stream])
    with store.read() as conn:
        assert conn.execute(select(func.count()).select_from(customers)).scalar() == len(
            xero.book.contacts.by_id
        )
        sales = [i for i in xero.book.invoices.by_id.values() if i.kind == "sales"]
        assert conn.execute(select(func.count()).select_from(invoices)).scalar() == len(sales)
    store.close()
