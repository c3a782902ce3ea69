"""The connection-health check as a job of its own, once a day of the server's clock, whether nights run or not.

- SQLite: `ccm serve`'s scheduler runs the day's round in-process, firm by firm (the same task body a worker
  runs): what the store knows is recorded (a refresh token left idle, a connection needing a person), the
  firm is told once, a disconnected firm is left alone, and a firm whose run lease is held waits for its
  night (which checks health itself).
- PostgreSQL: two `ccm serve --no-worker` schedulers and two `ccm worker` processes: each firm's check runs
  once per day however many schedulers ask, under the firm's lock (after its night's job), and the notice is
  planned once.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from connector import health, lease
from connector.clock import Clock
from connector.config import Settings, load_settings
from connector.model import Connection, ConnectionState
from connector.oauth import TokenSet, TokenVault, load_key
from connector.serve.runtime import Runtime
from connector.store import Store
from connector.store.schema import outbox
from connector.store.tenants import save_connection, save_tenant
from connector.tenantspec import build
from tests.serve.harness import SimClock, clean_env, free_port, serving, wait_for, workers

START = datetime(2026, 11, 17, 1, 3, tzinfo=UTC)
FIRMS = ("cut", "fine", "gone", "idle")
CHECK = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d UTC (\S+) health: (.*)$")
ROUND = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d UTC health round of (\d{4}-\d\d-\d\d): (.*)$")


def _tokens(store: Store, settings: Settings, firm: str, used: datetime) -> None:
    """The firm's tokens as ccm left them when it last refreshed them, at `used`."""
    tokens = TokenSet("access", f"refresh-{firm}", used + timedelta(minutes=30))
    TokenVault(store, load_key(settings), lambda: used).put(firm, tokens)


def _seed(store: Store, settings: Settings, now: datetime) -> None:
    """Four Xero firms: `idle`'s refresh token unused for 53 days (Xero's die after 60: warned from day 50),
    `cut` needing a person to connect again, `fine` refreshed yesterday, `gone` disconnected."""
    with store.begin() as conn:
        for firm in FIRMS:
            save_tenant(conn, build(firm, f"{firm.title()} Ltd", "xero", timezone="UTC", night_time="23:30",
                                    contact_email=f"owner@{firm}.example"))  # fmt: skip
        states = {"cut": ConnectionState.RECONNECT_NEEDED, "gone": ConnectionState.DISCONNECTED}
        for firm in FIRMS:
            state = states.get(firm, ConnectionState.CONNECTED)
            message = "reconnect needed: the refresh token was refused" if firm == "cut" else ""
            save_connection(conn, Connection(firm, "xero", f"org-{firm}", state, message))
    for firm in FIRMS:
        _tokens(store, settings, firm, now - timedelta(days=53 if firm == "idle" else 1))


def _checks(lines: list[str]) -> Counter[str]:
    """How many health checks each firm had, from the reported lines."""
    return Counter(m.group(1) for m in (CHECK.match(line.strip()) for line in lines) if m)


def _rounds(lines: list[str]) -> Counter[str]:
    """How many health rounds each day (of the server's clock) had, from the reported lines."""
    return Counter(m.group(1) for m in (ROUND.match(line.strip()) for line in lines) if m)


def _open(store: Store) -> set[tuple[str, str]]:
    with store.read() as conn:
        return {(i.tenant_id, i.kind) for i in health.open_issues(conn)}


def _notices(store: Store) -> Counter[str]:
    with store.read() as conn:
        keys = conn.execute(select(outbox.c.tenant_id).where(outbox.c.kind == "notice")).scalars()
        return Counter(keys)


def test_sqlite_serve_checks_each_firms_health_once_a_day_in_process(tmp_path: Path):
    from connector.serve.scheduler import HEALTH, Scheduler

    store = Store.open(f"sqlite:///{tmp_path / 'ccm.db'}")
    clock = Clock(START, time.time(), 14400)  # a day in six real seconds
    settings = load_settings(None, {"CCM_HOME": str(tmp_path), "CCM_SERVE__POLL_MINUTES": "0"})
    rt = Runtime(settings, store, clock, "serve-1")
    lines: list[str] = []
    rt.report = lines.append
    _seed(store, settings, clock.now())
    # `fine`'s night is running (its run lease held, for longer than the test): the night checks health itself
    lease.acquire(store, "fine", lease.new_holder(), datetime.now(UTC), timedelta(hours=1))
    woken: list[int] = []
    scheduler = Scheduler(rt, wake=lambda: woken.append(1))  # SQLite: no executor, the dispatcher is woken
    try:
        assert scheduler.start() == 3  # nights for every firm but the disconnected one
        assert scheduler.scheduler.get_job(HEALTH) is not None
        wait_for(lambda: len(_rounds(lines)) >= 2, 30, "two days' health rounds")
    finally:
        scheduler.scheduler.shutdown(wait=True)  # a round under way finishes
    rounds, checks = _rounds(lines), _checks(lines)
    assert set(rounds.values()) == {1}, rounds  # once a day
    assert sorted(rounds)[:2] == ["2026-11-17", "2026-11-18"]
    # each round checks every firm but the disconnected one; `fine`'s night was running all along
    assert checks == {"cut": len(rounds), "idle": len(rounds)}, (checks, rounds)
    assert _open(store) == {("cut", "reconnect_needed"), ("idle", "refresh_idle")}
    assert _notices(store) == {"cut": 1, "idle": 1}  # told once, however many days it stays open
    assert woken  # the dispatcher was asked to look at the notices come due
    first = next(line for line in lines if " idle health: " in line)
    assert first.endswith("idle health: refresh_idle; 1 notice(s) to the firm planned"), first
    store.close()


def test_a_health_check_finds_an_issue_gone_and_closes_it(tmp_path: Path):
    from connector.jobs import tasks
    from connector.jobs.executor import InProcess

    store = Store.open(f"sqlite:///{tmp_path / 'ccm.db'}")
    clock = Clock(START, time.time(), 1)
    settings = load_settings(None, {"CCM_HOME": str(tmp_path)})
    rt = Runtime(settings, store, clock, "serve-1")
    _seed(store, settings, clock.now())
    runner = InProcess(lambda: None, dict)
    assert [tasks.health(rt, runner, f).outcome for f in tasks.health_firms(rt)] == ["done", "done", "done"]
    assert ("idle", "refresh_idle") in _open(store)
    _tokens(store, settings, "idle", clock.now())  # someone connected it again: fresh tokens
    done = tasks.health(rt, runner, "idle")
    assert done.line == "no open issue" and not done.sends
    assert _open(store) == {("cut", "reconnect_needed")}
    store.close()


def test_a_firms_health_check_waits_once_under_its_firms_lock(pg_url: str, tmp_path: Path):
    from connector.jobs import engine

    store = Store.open(pg_url)
    settings = load_settings(None, {"CCM_HOME": str(tmp_path), "CCM_DATABASE_URL": pg_url})
    ex = engine.Procrastinate(Runtime(settings, store, Clock(START, time.time(), 60), "test"), pg_url)
    try:
        assert ex.defer_health("acme") is True
        assert ex.defer_health("acme") is False  # a second round while the first waits
        with store.read() as conn:
            rows = conn.execute(
                text("SELECT task_name, lock, queueing_lock, queue_name FROM procrastinate_jobs")
            ).all()
        assert [tuple(r) for r in rows] == [(engine.HEALTH_FIRM, "firm:acme", "health:acme", "housekeeping")]
    finally:
        ex.close()
        store.close()


@pytest.mark.slow
def test_two_schedulers_and_two_workers_check_each_firm_once_a_day(pg_url: str, tmp_path: Path):
    clock = SimClock.starting(START, 14400)  # a day in six real seconds
    store = Store.open(pg_url)  # migrated here: ccm's tables and procrastinate's
    env = clean_env() | {
        "CCM_HOME": str(tmp_path / "home"), "CCM_DATABASE_URL": pg_url, "CCM_SERVE__CLOCK": clock.spec,
        "CCM_SERVE__POLL_MINUTES": "0", "CCM_SERVE__WORKERS": "2", "CCM_SERVE__SHUTDOWN_SECONDS": "5",
    }  # fmt: skip
    _seed(store, load_settings(None, env), clock.now())  # the vault key the processes read
    # every queue: a firm's check waits behind its night's job (the firm's lock), and these nights end at once
    # (no Xero client id: the firm's night fails before reaching for the ledger, and checks no health itself)
    with workers(env, 2) as crew:
        with (
            serving(env, free_port(), ("--no-worker",)) as a,
            serving(env, free_port(), ("--no-worker",)) as b,
        ):

            def said() -> list[str]:
                return [line for w in crew for line in w.lines]

            try:
                wait_for(lambda: len(_rounds(said())) >= 3 and min(_checks(said()).values(), default=0) >= 2, 90,
                         "three days' health rounds")  # fmt: skip
            except AssertionError:
                out = "\n".join(p.output()[-2000:] for p in (*crew, a, b))
                raise AssertionError(f"{_rounds(said())} {_checks(said())}\n{out}") from None
            assert a.stop() == 0, a.output()[-3000:]
            assert b.stop() == 0, b.output()[-3000:]
        for w in crew:
            assert w.stop() == 0, w.output()[-3000:]
    lines = [line for w in crew for line in w.lines]
    rounds, checks = _rounds(lines), _checks(lines)
    assert set(rounds.values()) == {1}, rounds  # one round a day, whichever scheduler asked and worker ran it
    days = sorted(date.fromisoformat(d) for d in rounds)  # from the first server's start, none left out
    assert days == [days[0] + timedelta(days=n) for n in range(len(days))], rounds
    # each round asks for every firm's check but the disconnected one's, queued behind its night's job (two
    # rounds while a check still waits make one check: the queueing lock `health:<firm>`)
    assert set(checks) == {"cut", "fine", "idle"}, checks
    assert all(2 <= n <= len(rounds) for n in checks.values()), (checks, rounds)
    assert _open(store) == {("cut", "reconnect_needed"), ("idle", "refresh_idle")}
    assert _notices(store) == {"cut": 1, "idle": 1}
    with store.read() as conn:
        failed = conn.execute(
            text("SELECT count(*) FROM procrastinate_jobs WHERE status = 'failed'")
        ).scalar()
        periodic = conn.execute(text(
            "SELECT count(*) FROM procrastinate_periodic_defers WHERE task_name = 'ccm.health'"
        )).scalar()  # fmt: skip
    assert failed == 0
    assert periodic == 1  # procrastinate keeps the newest day's record only
    store.close()
