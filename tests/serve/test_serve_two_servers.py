"""Two `ccm serve` processes on one PostgreSQL database never run one tenant twice.

Both see every tenant's nightly job in the shared APScheduler job store and both mark the nights due; the
nights table and the tenants' run leases let exactly one run each night. Six tenants and two workers per
server keep both servers busy at once; webhooks from the sandboxes add syncs into the same queue.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from adapters.quickbooks import sandbox as qbo_sandbox
from adapters.xero import sandbox as xero_sandbox
from connector.store import Store
from connector.store.schema import sync_runs
from tests.serve.harness import (
    SimClock,
    clean_env,
    connect,
    free_port,
    night_rows,
    night_syncs,
    qbo_env,
    serving,
    utc,
    wait_for,
    xero_env,
)

pytestmark = pytest.mark.slow
NIGHTS = [date(2026, 11, 18), date(2026, 11, 19)]
ZONES = ["Europe/London", "Europe/Paris", "Europe/Madrid", "Europe/Dublin", "Europe/Lisbon"]


def test_two_servers_on_one_postgresql_never_run_a_tenant_twice(pg_url: str, tmp_path: Path):
    # an hour a real second: eighteen real seconds to connect six firms before their first night at 01:00
    # (the two servers each run an embedded job worker, so a busy machine connects slowly)
    clock = SimClock.starting(utc(2026, 11, 17, 6), 3600)
    port_a, port_b = free_port(), free_port()
    firms = [clock.firm(30 + i, name=f"Firm {i} Ltd") for i in range(5)]
    xero = xero_sandbox.start(firms[0], clock=clock.sandbox(), extra_firms=firms[1:],
                              webhook_url=f"http://127.0.0.1:{port_a}/webhooks/xero")  # fmt: skip
    qbo = qbo_sandbox.start(clock.firm(40), clock=clock.sandbox(),
                            webhook_url=f"http://127.0.0.1:{port_b}/webhooks/quickbooks")  # fmt: skip
    store = Store.open(pg_url)  # migrated once here, before two servers start on it
    base = clean_env() | {
        "CCM_HOME": str(tmp_path / "home"), "CCM_DATABASE_URL": pg_url, "CCM_SERVE__CLOCK": clock.spec,
        "CCM_SERVE__POLL_MINUTES": "0", "CCM_SERVE__TICK_SECONDS": "0.1", "CCM_SERVE__WORKERS": "2",
        "CCM_SERVE__DEBOUNCE_SECONDS": "0.2", "CCM_SMTP__PORT": "1",  # no mail server: reminders wait
    }  # fmt: skip
    try:
        with serving(base | xero_env(xero, port_a) | qbo_env(qbo, port_a), port_a) as a, \
                serving(base | xero_env(xero, port_b) | qbo_env(qbo, port_b), port_b) as b:  # fmt: skip
            for i, org in enumerate(xero.books):
                page = connect(a, "xero", f"x{i}", xero, choose=org, timezone=ZONES[i], night_time="01:00")
                assert "is connected to" in page.text, page.text
            page = connect(b, "quickbooks", "q0", qbo, timezone="Europe/London", night_time="01:00")
            assert "is connected to" in page.text, page.text
            assert clock.now() < utc(2026, 11, 18), (
                f"connecting took until {clock.now()}, past the first night"
            )
            clock.wait_until(utc(2026, 11, 19, 6))
            every = {(t, n) for t in [f"x{i}" for i in range(len(firms))] + ["q0"] for n in NIGHTS}
            done = lambda: {(r.tenant_id, r.night) for r in night_rows(store) if r.state == "done"}  # noqa: E731
            wait_for(lambda: every <= done(), 60, "every night done")  # a busy machine may finish them late
            assert a.stop() == 0, a.output()[-3000:]
            assert b.stop() == 0, b.output()[-3000:]
            pids = {a.process.pid, b.process.pid}  # type: ignore[union-attr]
    finally:
        xero.stop()
        qbo.stop()

    tenants = [f"x{i}" for i in range(len(firms))] + ["q0"]
    rows = night_rows(store)
    assert sorted((r.tenant_id, r.night) for r in rows) == sorted((t, n) for t in tenants for n in NIGHTS)
    assert all(r.state == "done" and r.attempts == 1 for r in rows), rows
    assert Counter((r.tenant_id, r.started_at.date()) for r in night_syncs(store)) == {
        (t, n): 1 for t in tenants for n in NIGHTS
    }  # one nightly sync per tenant and night, not one per server
    holders = {int(r.holder.split(":")[1]) for r in rows}
    assert holders <= pids
    with store.read() as conn:
        runs = conn.execute(select(sync_runs).order_by(sync_runs.c.started_at)).all()
    by_tenant = defaultdict(list)
    for run in runs:
        by_tenant[run.tenant_id].append(run)
    for tenant, mine in by_tenant.items():  # never two runs of one tenant at once, whichever server
        for before, after in itertools.pairwise(mine):
            assert before.finished_at is not None and before.finished_at <= after.started_at, (
                tenant,
                before,
                after,
            )
    store.close()
