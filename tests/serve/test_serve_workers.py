"""ccm's background work on procrastinate: real `ccm worker` and `ccm serve --no-worker` processes on one
PostgreSQL database, against the ledgers' sandboxes, on a simulated clock.

- Three workers and two schedulers, 30 firms, two nights: each firm's night of a local date runs once
  (the nights table and the nightly sync runs say so), and never two jobs of one firm at once (no two sync
  runs of a firm overlap, whichever worker ran them).
- A worker SIGKILLed in the middle of a night: its job is retried by the other worker within a minute of
  real time (the worker's heartbeat stops; the sweep retries its stalled job; the dead holder's lease and
  `running` night are taken at once), and nothing is sent twice (outbox keys; mail on a real SMTP server).
- A webhook flood (2,000 signed deliveries for 20 firms) leaves at most one sync queued per firm at any
  time, and those syncs answer every request.
"""

from __future__ import annotations

import itertools
import json
import signal
import threading
import time
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
from sqlalchemy import select, text

from adapters.sandbox.generator import FirmSize
from adapters.xero import sandbox as xero_sandbox
from adapters.xero.webhooks import SIGNATURE_HEADER, signature
from connector.store import Store
from connector.store.schema import outbox, sync_requests, sync_runs
from tests.serve.harness import (
    XERO_KEY,
    SimClock,
    clean_env,
    connect,
    free_port,
    night_rows,
    night_syncs,
    serving,
    utc,
    wait_for,
    workers,
    xero_env,
)
from tests.smtp import Inbox

pytestmark = pytest.mark.slow
ZONES = ["Europe/London", "Europe/Paris", "Europe/Madrid", "Europe/Dublin", "Europe/Lisbon"]
TINY = FirmSize(5, 100, 40)


def _env(pg_url: str, tmp_path: Path, clock: SimClock, **extra: str) -> dict[str, str]:
    return clean_env() | {
        "CCM_HOME": str(tmp_path / "home"), "CCM_DATABASE_URL": pg_url, "CCM_SERVE__CLOCK": clock.spec,
        "CCM_SERVE__POLL_MINUTES": "0", "CCM_SERVE__DEBOUNCE_SECONDS": "0.2", "CCM_SERVE__WORKERS": "2",
        "CCM_SERVE__SHUTDOWN_SECONDS": "10",
    } | extra  # fmt: skip


def _never_overlap(store: Store) -> None:
    """No two sync runs of one firm at once, whichever worker ran them."""
    with store.read() as conn:
        runs = conn.execute(select(sync_runs).order_by(sync_runs.c.started_at)).all()
    by_tenant: dict[str, list[Any]] = defaultdict(list)
    for run in runs:
        by_tenant[run.tenant_id].append(run)
    for tenant, mine in by_tenant.items():
        for before, after in itertools.pairwise(mine):
            assert before.finished_at is not None and before.finished_at <= after.started_at, (tenant, before,
                                                                                                after)  # fmt: skip


def test_three_workers_two_schedulers_run_each_night_once(pg_url: str, tmp_path: Path):
    clock = SimClock.starting(utc(2026, 11, 17, 7), 1200)  # an access token lives 1.5 real seconds
    port_a, port_b = free_port(), free_port()
    firms = [clock.firm(100 + i, TINY, name=f"Firm {i} Ltd") for i in range(30)]
    xero = xero_sandbox.start(firms[0], clock=clock.sandbox(), extra_firms=firms[1:],
                              webhook_url=f"http://127.0.0.1:{port_a}/webhooks/xero")  # fmt: skip
    store = Store.open(pg_url)  # migrated once here (ccm's tables and procrastinate's)
    base = _env(pg_url, tmp_path, clock, CCM_SMTP__PORT="1")  # no mail server: reminders wait
    tenants = [f"f{i:02d}" for i in range(len(firms))]
    expected: dict[str, list[date]] = {}
    try:
        env_a, env_b = base | xero_env(xero, port_a), base | xero_env(xero, port_b)
        with serving(env_a, port_a, ("--no-worker",)) as a, serving(env_b, port_b, ("--no-worker",)) as b:
            for i, org in enumerate(xero.books):  # each firm's night 3 hours after it connects: however slow
                zone = ZoneInfo(ZONES[i % len(ZONES)])  # the machine, each has two nights in the test
                first = (clock.now() + timedelta(hours=3)).astimezone(zone).replace(second=0, microsecond=0)
                server = a if i % 2 == 0 else b
                page = connect(server, "xero", tenants[i], xero, choose=org, timezone=zone.key,
                               night_time=f"{first:%H:%M}")  # fmt: skip
                assert "is connected to" in page.text, page.text
                assert clock.now() < first, f"connecting {tenants[i]} took until {clock.now()}"
                expected[tenants[i]] = [first.date(), first.date() + timedelta(days=1)]
                last = first + timedelta(days=1)
            with workers(env_a, 3) as crew:  # the nights due before they start wait for them in the queue
                clock.wait_until(last + timedelta(hours=1), timeout=600)
                assert a.stop() == 0, a.output()[-3000:]  # no night comes due any more
                assert b.stop() == 0, b.output()[-3000:]
                try:
                    wait_for(lambda: _all_done(store, 60), 120, "every night that came to be done")
                except AssertionError:
                    left = [r for r in night_rows(store) if r.state != "done"]
                    raise AssertionError(f"{left}\n{crew[0].output()[-3000:]}") from None
                pids = {w.pid for w in crew}
                for w in crew:
                    w.process.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
                for w in crew:
                    assert w.process.wait(40) == 0, w.output()[-3000:]  # type: ignore[union-attr]
    finally:
        xero.stop()

    rows = night_rows(store)  # on a slow machine the first firms connected may have had a third night
    assert {(t, n) for t, mine in expected.items() for n in mine} <= {(r.tenant_id, r.night) for r in rows}
    assert all(r.state == "done" and r.attempts == 1 for r in rows), [r for r in rows if r.state != "done"]
    assert {int(r.holder.split(":")[1]) for r in rows} <= pids
    syncs = night_syncs(store)  # one nightly sync per firm and night, inside that night's run
    assert Counter(r.tenant_id for r in syncs) == Counter(r.tenant_id for r in rows)
    for row in rows:
        inside = [
            s
            for s in syncs
            if s.tenant_id == row.tenant_id and row.started_at <= s.started_at <= row.finished_at
        ]
        assert len(inside) == 1, (row, inside)
    _never_overlap(store)
    store.close()


def _all_done(store: Store, at_least: int) -> bool:
    rows = night_rows(store)
    return len(rows) >= at_least and all(r.state == "done" for r in rows)


def _holder_pid(holder: str | None) -> int | None:
    return int(holder.split(":")[1]) if holder else None


def test_a_worker_killed_mid_night_is_retried_by_another_and_nothing_is_sent_twice(
    pg_url: str, tmp_path: Path, inbox: Inbox
):
    clock = SimClock.starting(utc(2026, 11, 17, 8), 600)  # a Tuesday: the night falls in the send window
    port = free_port()
    big = FirmSize(60, 1500, 700)  # a night long enough to be caught in the middle
    firms = [clock.firm(200 + i, big, name=f"Big {i} Ltd") for i in range(2)]
    xero = xero_sandbox.start(firms[0], clock=clock.sandbox(), extra_firms=firms[1:],
                              webhook_url=f"http://127.0.0.1:{port}/webhooks/xero")  # fmt: skip
    store = Store.open(pg_url)
    env = _env(pg_url, tmp_path, clock, CCM_SERVE__WORKERS="1", CCM_SMTP__HOST=inbox.host,
               CCM_SMTP__PORT=str(inbox.port), CCM_SMTP__FROM_ADDRESS="accounts@firm.example") | xero_env(
        xero, port)  # fmt: skip
    killed_at = 0.0
    try:
        with serving(env, port, ("--no-worker",)) as server:
            night = (clock.now() + timedelta(hours=3)).replace(second=0, microsecond=0)  # 18 real seconds on
            for i, org in enumerate(xero.books):
                page = connect(server, "xero", f"b{i}", xero, choose=org, timezone="UTC",
                               night_time=f"{night:%H:%M}", contact_email=f"owner@b{i}.example")  # fmt: skip
                assert "is connected to" in page.text, page.text
            assert clock.now() < night, f"connecting took until {clock.now()}"
            crew_cm = workers(env, 2)
            crew = crew_cm.__enter__()
            pids = {w.pid: w for w in crew}

            def running() -> Any:
                return next((r for r in night_rows(store) if r.state == "running"
                             and _holder_pid(r.holder) in pids), None)  # fmt: skip

            victim_row = wait_for(running, 60, "a night running on a worker", every=0.01)
            victim = pids[_holder_pid(victim_row.holder)]  # type: ignore[index]
            victim.stop(signal.SIGKILL)
            killed_at = time.time()
            survivor = next(w for w in crew if w is not victim)

            def finished() -> Any:
                return next((r for r in night_rows(store) if (r.tenant_id, r.night) ==
                             (victim_row.tenant_id, victim_row.night) and r.state == "done"), None)  # fmt: skip

            done = wait_for(finished, 90, "the killed worker's night to be run by the other")
            retried_after = (
                clock.clock.to_real(done.started_at.replace(tzinfo=clock.now().tzinfo)) - killed_at
            )
            wait_for(lambda: _planned_due(store, clock) == 0, 60, "due sends sent")
            assert survivor.stop() == 0, survivor.output()[-3000:]
            crew_cm.__exit__(None, None, None)
            assert server.stop() == 0, server.output()[-3000:]
    finally:
        xero.stop()

    assert done.attempts == 2 and _holder_pid(done.holder) == survivor.pid, done
    assert retried_after <= 60, f"retried {retried_after:.0f} real seconds after the kill"
    rows = night_rows(store)
    assert sorted((r.tenant_id, r.state) for r in rows) == [("b0", "done"), ("b1", "done")], rows
    with store.read() as conn:
        keys = Counter(conn.execute(select(outbox.c.key)).scalars())
        sent = conn.execute(select(outbox.c.key).where(outbox.c.state == "sent")).scalars().all()
    assert all(n == 1 for n in keys.values()), keys
    mailed = Counter(str(m["X-CCM-Action"]) for m in inbox.messages)
    assert mailed and all(n == 1 for n in mailed.values()), mailed  # something went out, nothing twice
    assert set(mailed) <= set(sent)
    _never_overlap(store)
    store.close()


def _planned_due(store: Store, clock: SimClock) -> int:
    from connector import outbox as outbox_module

    with store.read() as conn:
        return outbox_module.due_count(conn, clock.now())


def _delivery(org: str, n: int) -> bytes:
    event = {
        "resourceUrl": f"https://api.xero.com/api.xro/2.0/Invoices/{uuid.uuid4()}", "resourceId": str(uuid.uuid4()),
        "eventDateUtc": "2026-11-17T08:00:00.000", "eventType": "UPDATE", "eventCategory": "INVOICE",
        "tenantId": org, "tenantType": "ORGANISATION",
    }  # fmt: skip
    return json.dumps({"events": [event], "firstEventSequence": n, "lastEventSequence": n,
                       "entropy": uuid.uuid4().hex}).encode()  # fmt: skip


def _queued_syncs(store: Store) -> dict[str, int]:
    with store.read() as conn:
        rows = conn.execute(text(
            "SELECT queueing_lock, count(*) FROM procrastinate_jobs"
            " WHERE status = 'todo' AND task_name = 'ccm.sync' GROUP BY queueing_lock"
        )).all()  # fmt: skip
    return {str(lock): int(n) for lock, n in rows}


def test_a_webhook_flood_queues_at_most_one_sync_per_firm(pg_url: str, tmp_path: Path):
    clock = SimClock.starting(utc(2026, 11, 17, 8), 60)  # no night comes during the test
    port = free_port()
    firms = [clock.firm(300 + i, TINY, name=f"Shop {i} Ltd") for i in range(20)]
    xero = xero_sandbox.start(firms[0], clock=clock.sandbox(), extra_firms=firms[1:],
                              webhook_url=f"http://127.0.0.1:{port}/webhooks/xero")  # fmt: skip
    store = Store.open(pg_url)
    env = _env(pg_url, tmp_path, clock) | xero_env(xero, port)
    seen: list[dict[str, int]] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.02):
            seen.append(_queued_syncs(store))

    try:
        with serving(env, port, ("--no-worker",)) as server:
            orgs = list(xero.books)
            for i, org in enumerate(orgs):
                page = connect(server, "xero", f"s{i:02d}", xero, choose=org, timezone="UTC")
                assert "is connected to" in page.text, page.text
            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            http = requests.Session()

            def deliver(n: int) -> int:
                body = _delivery(orgs[n % len(orgs)], n)
                headers = {SIGNATURE_HEADER: signature(XERO_KEY, body), "content-type": "application/json"}
                return http.post(
                    f"{server.url}/webhooks/xero", data=body, headers=headers, timeout=30
                ).status_code

            with ThreadPoolExecutor(4) as pool:
                codes = Counter(pool.map(deliver, range(2000)))
            assert codes == {200: 2000}, codes
            queued = _queued_syncs(store)
            with workers(env, 1) as crew:
                wait_for(lambda: not _queued_syncs(store) and _pending(store) == 0, 90, "the syncs to run")
                assert crew[0].stop() == 0, crew[0].output()[-3000:]
            stop.set()
            watcher.join(5)
            assert server.stop() == 0, server.output()[-3000:]
    finally:
        stop.set()
        xero.stop()

    assert queued == {f"sync:s{i:02d}": 1 for i in range(20)}, queued  # one waits per firm, whatever came
    assert seen and all(n <= 1 for sample in seen for n in sample.values())
    with store.read() as conn:
        webhook_runs = Counter(
            conn.execute(select(sync_runs.c.tenant_id).where(sync_runs.c.trigger == "webhook")).scalars()
        )
    assert webhook_runs == {f"s{i:02d}": 1 for i in range(20)}, webhook_runs  # one sync answered them all
    _never_overlap(store)
    store.close()


def _pending(store: Store) -> int:
    with store.read() as conn:
        return len(conn.execute(select(sync_requests.c.request_id)).all())
