"""The procrastinate executor without worker processes: its schema comes with ccm's migrations, asking
for work is idempotent (queueing locks), every job carries its firm's lock, times on the simulated clock
become real ones; and `ccm worker` refuses SQLite in one line.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from connector.clock import Clock
from connector.config import load_settings
from connector.jobs import engine, schema
from connector.serve.runtime import Runtime
from connector.store import Store
from connector.store import engine as store_engine
from tests.serve.harness import CCM, clean_env, wait_for


@pytest.fixture
def executor(pg_url: str, tmp_path: Path) -> Iterator[tuple[engine.Procrastinate, Store]]:
    store = Store.open(pg_url)
    clock = Clock(datetime(2026, 11, 17, 1, tzinfo=UTC), time.time(), 60)
    settings = load_settings(None, {"CCM_HOME": str(tmp_path), "CCM_DATABASE_URL": pg_url})
    ex = engine.Procrastinate(Runtime(settings, store, clock, "test"), pg_url)
    try:
        yield ex, store
    finally:
        ex.close()
        store.close()


def _jobs(store: Store) -> list[tuple[str, str | None, str | None, str, datetime | None]]:
    with store.read() as conn:
        rows = conn.execute(text(
            "SELECT task_name, lock, queueing_lock, status::text, scheduled_at FROM procrastinate_jobs ORDER BY id"
        )).all()  # fmt: skip
    return [tuple(r) for r in rows]


def test_the_schema_comes_with_ccms_migrations_in_the_urls_schema_and_again_changes_nothing(pg_url: str):
    store = Store.open(pg_url)
    try:
        with store.read() as conn:
            mine = pg_url.rsplit("search_path%3D", 1)[-1].split("&", maxsplit=1)[0]
            found = conn.execute(text(
                "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE c.relname = 'procrastinate_jobs' AND n.nspname = :schema"
            ), {"schema": mine}).scalar_one()  # fmt: skip
            assert found == 1
            assert schema.apply(conn) is False  # present: left as it is
        heads = store_engine.head_revisions()
        assert store_engine.upgrade(store.engine) == (heads, heads)
    finally:
        store.close()


def test_a_night_asked_for_twice_waits_once_under_its_firms_lock(
    executor: tuple[engine.Procrastinate, Store],
):
    ex, store = executor
    assert ex.defer_night("acme", date(2026, 11, 18)) is True
    assert ex.defer_night("acme", date(2026, 11, 18)) is False  # a second scheduler, or the sweep
    assert ex.defer_night("acme", date(2026, 11, 19)) is True
    assert [(t, lock, q, s) for t, lock, q, s, _ in _jobs(store)] == [
        ("ccm.night", "firm:acme", "night:acme:2026-11-18", "todo"),
        ("ccm.night", "firm:acme", "night:acme:2026-11-19", "todo"),
    ]


def test_requested_syncs_wait_once_per_firm_after_the_debounce(executor: tuple[engine.Procrastinate, Store]):
    ex, store = executor
    before = datetime.now(UTC)
    for _ in range(50):
        ex.request_sync(["a", "b", "a"])
    jobs = _jobs(store)
    assert [(t, lock, q) for t, lock, q, _, _ in jobs] == [
        ("ccm.sync", "firm:a", "sync:a"),
        ("ccm.sync", "firm:b", "sync:b"),
    ]
    debounce = timedelta(seconds=ex.rt.settings.serve.debounce_seconds)
    assert all(at is not None and before + debounce <= at for *_, at in jobs)
    assert ex.depths()["jobs_syncs"] == 2


def test_a_retry_time_on_the_simulated_clock_is_scheduled_at_its_real_moment(
    executor: tuple[engine.Procrastinate, Store],
):
    ex, store = executor
    at = ex.rt.clock.now() + timedelta(hours=1)  # an hour on a 60x clock: a real minute
    ex.defer_night("acme", date(2026, 11, 18), at=at)
    [(*_, scheduled)] = _jobs(store)
    assert scheduled is not None
    assert abs(scheduled.timestamp() - ex.rt.clock.to_real(at)) < 1e-3


def test_ccm_worker_on_sqlite_exits_2_saying_why_and_what_to_do(tmp_path: Path):
    done = subprocess.run([CCM, "worker"], env=clean_env() | {"CCM_HOME": str(tmp_path)}, capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines == [
        "ccm: error: ccm worker needs PostgreSQL (database_url); on SQLite `ccm serve` runs the work itself"
    ]


def test_ccm_worker_names_an_unknown_queue(tmp_path: Path):
    done = subprocess.run([CCM, "worker", "--queues", "nights,bogus"], env=clean_env() | {"CCM_HOME": str(tmp_path)},
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 2
    assert "--queues: no queue 'bogus'" in done.stderr


def test_a_scheduler_starting_after_a_night_came_marks_it_due_and_queues_it_once(
    executor: tuple[engine.Procrastinate, Store],
):
    from connector.model import Connection
    from connector.serve import nights
    from connector.serve.scheduler import Scheduler
    from connector.store.tenants import save_connection, save_tenant
    from connector.tenantspec import build

    ex, store = executor  # the clock shows 2026-11-17 01:00 UTC
    with store.begin() as conn:
        for tenant_id, at in (("late", "00:30"), ("early", "23:00"), ("ahead", "02:00")):
            save_tenant(conn, build(tenant_id, tenant_id, "xero", timezone="UTC", night_time=at))
            save_connection(conn, Connection(tenant_id, "xero", f"org-{tenant_id}"))
    first = Scheduler(ex.rt, wake=lambda: None, executor=ex)
    second = Scheduler(ex.rt, wake=lambda: None, executor=ex)  # another `ccm serve` on the same database
    try:
        assert first.start() == 3 and second.start() == 3
    finally:
        first.shutdown()
        second.shutdown()
    with store.read() as conn:
        due = [(n.tenant_id, n.night, n.state) for n in nights.recent(conn)]
    # 00:30 passed half an hour ago; 23:00 yesterday passed two hours ago (within the 20 hours' grace);
    # 02:00 has not come: its job fires it
    assert sorted(due) == [("early", date(2026, 11, 16), "due"), ("late", date(2026, 11, 17), "due")]
    assert sorted(str(q) for t, _, q, _, _ in _jobs(store) if t == engine.NIGHT) == [
        "night:early:2026-11-16",
        "night:late:2026-11-17",
    ]


def _periodic(store: Store) -> list[tuple[str, int]]:
    with store.read() as conn:
        rows = conn.execute(text(
            "SELECT task_name, defer_timestamp FROM procrastinate_periodic_defers ORDER BY defer_timestamp"
        )).all()  # fmt: skip
    return [(str(t), int(k)) for t, k in rows]


def _runtime(pg_url: str, tmp_path: Path, store: Store, name: str, **env: str) -> Runtime:
    settings = load_settings(None, {"CCM_HOME": str(tmp_path), "CCM_DATABASE_URL": pg_url} | env)
    clock = Clock(datetime(2026, 11, 17, 1, 3, tzinfo=UTC), time.time(), 900)  # 15 minutes a real second
    return Runtime(settings, store, clock, name)


def test_two_schedulers_defer_one_poll_per_period_and_a_worker_runs_each(pg_url: str, tmp_path: Path):
    from connector.jobs.worker import Worker
    from connector.model import Connection
    from connector.serve import syncqueue
    from connector.serve.scheduler import Scheduler
    from connector.store.tenants import save_connection, save_tenant
    from connector.tenantspec import build

    store = Store.open(pg_url)
    rt = _runtime(pg_url, tmp_path, store, "s1", CCM_SERVE__POLL_MINUTES="15")
    with store.begin() as conn:
        save_tenant(conn, build("acme", "Acme", "xero", timezone="UTC", night_time="23:00"))
        save_connection(conn, Connection("acme", "xero", "org-acme"))
    executors = [engine.Procrastinate(rt, pg_url) for _ in range(2)]
    schedulers = [Scheduler(rt, wake=lambda: None, executor=ex) for ex in executors]  # two `ccm serve`s
    try:
        for scheduler in schedulers:
            scheduler.start()
        wait_for(lambda: len([j for j in _jobs(store) if j[0] == engine.POLL]) >= 4, 30, "four poll periods")
    finally:
        for scheduler in schedulers:
            scheduler.shutdown()
    # each scheduler's job calls its own executor; procrastinate keeps only the newest key per task (older
    # ones go as newer come): the jobs' timestamps tell the periods deferred
    polls = [(t, q, s) for t, _, q, s, _ in _jobs(store) if t == engine.POLL]
    assert len(polls) >= 4 and all(s == "todo" and q is None for _, q, s in polls)
    with store.read() as conn:
        keys = sorted(int(k) for k in conn.execute(text(
            "SELECT (args->>'timestamp')::bigint FROM procrastinate_jobs WHERE task_name = :t"
        ), {"t": engine.POLL}).scalars())  # fmt: skip
    assert len(set(keys)) == len(keys), f"a period polled twice: {keys}"
    assert all(k % 900 == 0 for k in keys)  # on the boundaries of the server's clock, 15 minutes apart

    worker = Worker(rt, pg_url, 2, ["housekeeping"])  # not the syncs the polls ask for: they stay asked
    worker.start()
    try:
        wait_for(
            lambda: not [j for j in _jobs(store) if j[0] == engine.POLL], 60, "the worker to run the polls"
        )
    finally:
        worker.stop()
        worker.join(30)
        for ex in executors:
            ex.close()
    with store.read() as conn:
        asked = conn.execute(text(
            "SELECT count(DISTINCT requested_at) FROM sync_requests WHERE tenant_id = 'acme' AND reason = :r"
        ), {"r": syncqueue.POLL}).scalar_one()  # fmt: skip
        failed = conn.execute(
            text("SELECT count(*) FROM procrastinate_jobs WHERE status = 'failed'")
        ).scalar()
    store.close()
    assert failed == 0
    assert asked == len(keys)  # each period's poll ran once, by the worker


def test_two_schedulers_defer_one_rates_refresh_and_health_round_a_day_and_a_restart_that_day_none(
    pg_url: str, tmp_path: Path
):
    from apscheduler.events import EVENT_JOB_EXECUTED

    from connector.serve.scheduler import HEALTH, RATES, Scheduler

    store = Store.open(pg_url)
    rt = _runtime(pg_url, tmp_path, store, "s1", CCM_CREDIT__STATUTORY_INTEREST="uk",
                  CCM_SERVE__POLL_MINUTES="0")  # fmt: skip
    executors = [engine.Procrastinate(rt, pg_url) for _ in range(3)]
    # what each scheduler's rates and health jobs returned: whether they deferred a job
    deferred: dict[str, list[bool]] = {RATES: [], HEALTH: []}
    try:
        for ex in executors:  # two servers, then one of them started again the same day
            scheduler = Scheduler(rt, wake=lambda: None, executor=ex)
            scheduler.scheduler.add_listener(
                lambda e: deferred[e.job_id].append(e.retval), EVENT_JOB_EXECUTED
            )
            before = sum(map(len, deferred.values()))
            scheduler.start()
            wait_for(lambda: sum(map(len, deferred.values())) >= before + 2, 10,  # noqa: B023
                     "the scheduler's rates and health jobs to run")  # fmt: skip
            scheduler.shutdown()
        assert deferred == {RATES: [True, False, False], HEALTH: [True, False, False]}
        today = rt.clock.now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        assert sorted((t, q) for t, _, q, _, _ in _jobs(store)) == [
            (engine.HEALTH, None),
            (engine.RATES, None),
        ]
        key = int(today.timestamp())
        assert sorted(_periodic(store)) == [(engine.HEALTH, key), (engine.RATES, key)]
    finally:
        for ex in executors:
            ex.close()
        store.close()


def test_a_worker_defers_through_its_own_pool_and_names_its_few_connections(pg_url: str, tmp_path: Path):
    import os

    from connector.jobs.worker import Worker
    from connector.model import Connection
    from connector.serve.scheduler import rates_key
    from connector.store.tenants import save_connection, save_tenant
    from connector.tenantspec import build

    store = Store.open(pg_url)
    rt = _runtime(pg_url, tmp_path, store, "w1", CCM_SERVE__POLL_MINUTES="0")
    lines: list[str] = []
    rt.report = lines.append
    with store.begin() as conn:
        save_tenant(conn, build("acme", "Acme", "xero", timezone="UTC", night_time="23:00"))
        save_connection(conn, Connection("acme", "xero", "org-acme"))
    asker = engine.Procrastinate(rt, pg_url)  # a scheduler's: the day's health round
    worker = Worker(rt, pg_url, 8)  # eight jobs at once
    try:
        assert asker.defer_periodic("health", rates_key(rt)) is True
        worker.start()
        # the round's job defers the firm's check from a job's thread, through the worker's own pool
        wait_for(lambda: any(" acme health: " in line for line in lines), 30, "the firm's health check")
        with store.read() as conn:
            rows = conn.execute(text(
                "SELECT application_name, count(*) FROM pg_stat_activity WHERE application_name LIKE :me"
                " GROUP BY 1"
            ), {"me": f"ccm % {os.getpid()}"}).all()  # fmt: skip
            named = {str(name): int(count) for name, count in rows}
            failed = conn.execute(
                text("SELECT count(*) FROM procrastinate_jobs WHERE status = 'failed'")
            ).scalar()
    finally:
        worker.stop()
        worker.join(30)
        asker.close()
        store.close()
    assert failed == 0
    pid = os.getpid()
    assert set(named) <= {f"ccm jobs {pid}", f"ccm defer {pid}"}, named
    assert 1 <= named[f"ccm jobs {pid}"] <= engine.JOBS_POOL + 1  # its listener, and the pool: not 8 + 2
    assert named.get(f"ccm defer {pid}", 0) <= 2  # the scheduler's deferring pool, none for the worker
