"""ccm's background work on procrastinate (PostgreSQL): the task registrations and the executor that defers.

Jobs live in ccm's own database, in the schema its URL's search_path names (procrastinate's tables are made
by migration 0017 with ccm's own). Every job of a firm carries the lock `firm:<tenant>`: procrastinate never
runs two jobs with one lock at once, across every worker. Queueing locks make asking idempotent:
`night:<tenant>:<date>` (however many schedulers or sweeps ask, one job waits), `sync:<tenant>` (a webhook
flood leaves one sync waiting per firm; it reads every request up to the newest when it runs) and
`send:<tenant>`. A queueing lock only holds while a job waits: a request arriving while the firm's sync runs
queues the next one, which waits for the firm's lock.

The poll (`ccm.poll`), the reference rates' refresh (`ccm.rates`) and the daily health round
(`ccm.health`) are deferred by every scheduler as periodic jobs keyed by their period's start on the
server's clock (connector/serve/scheduler.py):
procrastinate's `procrastinate_periodic_defers` row per task and key lets one job through per period,
however many schedulers ask (a late one finds the key taken even after the job ran; procrastinate keeps
the newest key per task, and schedulers fire on the same period boundaries, so none asks for an older one).
The health round defers one `ccm.health_firm` job per firm (its firm lock, queueing lock `health:<tenant>`):
a firm's check waits for its night, never runs beside it.

Times asked for are on the server's clock (simulated in tests and demos); procrastinate's are real ones.

Connections: every pool names itself in PostgreSQL's `application_name` as `ccm <pool> <pid>` (`jobs`:
a worker's procrastinate pool, `defer`: a deferring process's, `limits`: the shared ledger limits, `store`:
ccm's own tables), so `SELECT application_name, count(*) FROM pg_stat_activity GROUP BY 1` tells who holds
what.
A worker defers through its own procrastinate pool (jobs run in threads procrastinate made; their deferring
goes back to the worker's event loop), so it has no `defer` pool.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import structlog
from procrastinate import App, JobContext, SyncPsycopgConnector, sql, utils
from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.jobs import Status
from psycopg.conninfo import make_conninfo
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url

from connector import outbox
from connector.config import Settings
from connector.jobs import tasks
from connector.serve import nights, syncqueue
from connector.serve.runtime import Runtime
from connector.store import Store

log = structlog.get_logger(__name__)
NIGHT, SYNC, SEND, SWEEP = "ccm.night", "ccm.sync", "ccm.send", "ccm.sweep"
POLL, RATES, HEALTH, HEALTH_FIRM = "ccm.poll", "ccm.rates", "ccm.health", "ccm.health_firm"
PERIODIC = {"poll": POLL, "rates": RATES, "health": HEALTH}  # the scheduler's job ids, the tasks they defer
QUEUES = ("nights", "syncs", "sends", "housekeeping")
SWEEP_CRON = "* * * * * */10"  # every 10 s (croniter's sixth field is seconds)
HEARTBEAT_S = 5.0  # a worker's heartbeat
STALLED_S = 20.0  # a worker silent this long is dead: its running jobs are retried by the next sweep
JOBS_POOL = 2  # a worker's procrastinate pool, short statements only (its listener has its own connection)


def conninfo(db_url: str, pool: str | None = None) -> str:
    """psycopg's connection string for ccm's SQLAlchemy URL (its query, e.g. options=-csearch_path=..., kept),
    named `ccm <pool> <pid>` in pg_stat_activity when `pool` is given."""
    url = make_url(db_url).set(drivername="postgresql").render_as_string(hide_password=False)
    return make_conninfo(url, application_name=app_name(pool)) if pool else url


def app_name(pool: str) -> str:
    """What this process's connections of `pool` are called in pg_stat_activity."""
    return f"ccm {pool} {os.getpid()}"


def firm_lock(tenant_id: str) -> str:
    return f"firm:{tenant_id}"


def _real(rt: Runtime, at: datetime | None, delay: float | None = None) -> datetime | None:
    """A schedule time for procrastinate (real UTC) from one on the server's clock, or a delay in real s."""
    if at is not None:
        real = datetime.fromtimestamp(rt.clock.to_real(at), UTC)
        return real if real > datetime.now(UTC) else None
    if delay:
        return datetime.now(UTC) + timedelta(seconds=delay)
    return None


class Procrastinate:
    """Defers jobs: from any thread through a small synchronous pool of its own, or, given a worker's `app`,
    from that worker's jobs through the worker's pool; workers run them."""

    name = "procrastinate"

    def __init__(self, rt: Runtime, db_url: str, app: App | None = None) -> None:
        self.rt = rt
        self._own = app is None
        if app is None:
            pool = SyncPsycopgConnector(conninfo=conninfo(db_url, "defer"), min_size=1, max_size=2)
            app = App(connector=pool)
            app.open()
        self.app = app

    def _defer(self, task: str, queue: str, tenant_id: str, queueing_lock: str | None,
               schedule_at: datetime | None, **kwargs: Any) -> bool:  # fmt: skip
        deferrer = self.app.configure_task(
            task, queue=queue, lock=firm_lock(tenant_id), queueing_lock=queueing_lock, schedule_at=schedule_at
        )
        try:
            deferrer.defer(tenant=tenant_id, **kwargs)
        except AlreadyEnqueued:  # one waits already and will cover this
            return False
        return True

    def defer_night(self, tenant_id: str, night: date, at: datetime | None = None) -> bool:
        return self._defer(NIGHT, "nights", tenant_id, f"night:{tenant_id}:{night}", _real(self.rt, at),
                           night=night.isoformat())  # fmt: skip

    def request_sync(self, tenant_ids: Iterable[str], delay: float | None = None) -> None:
        wait = self.rt.settings.serve.debounce_seconds if delay is None else delay
        for tenant_id in dict.fromkeys(tenant_ids):
            self._defer(SYNC, "syncs", tenant_id, f"sync:{tenant_id}", _real(self.rt, None, wait))

    def defer_send(self, tenant_id: str) -> None:
        self._defer(SEND, "sends", tenant_id, f"send:{tenant_id}", None)

    def defer_health(self, tenant_id: str) -> bool:
        """Check the firm's connection health (after whatever job of the firm runs now)."""
        return self._defer(HEALTH_FIRM, "housekeeping", tenant_id, f"health:{tenant_id}", None)

    def sends_due(self) -> None:
        return None  # the sweep looks every few seconds

    def defer_periodic(self, task: str, key: int) -> bool:
        """Defer the scheduler's periodic job `task` ("poll" or "rates") for the period starting at `key`
        (POSIX s on the server's clock); False when some scheduler deferred it already."""
        row = self.app.connector.execute_query_one(
            query=sql.queries["defer_periodic_job"], task_name=PERIODIC[task], periodic_id=task,
            defer_timestamp=key, queue="housekeeping", priority=0, lock=None, queueing_lock=None,
            args={"timestamp": key},
        )  # fmt: skip
        deferred = row["id"] is not None
        if deferred:
            log.info("jobs.periodic_deferred", task=PERIODIC[task], key=key)
        return deferred

    def depths(self) -> dict[str, int]:
        rt = self.rt
        with rt.store.read() as conn:
            return {
                "nights": nights.open_count(conn),
                "sync_requests": syncqueue.depth(conn),
                "sends_due": outbox.due_count(conn, rt.clock.now()),
            } | jobs_summary(conn)

    def close(self) -> None:
        if self._own:  # a worker's app is the worker's to close
            self.app.close()


def jobs_summary(conn: Connection) -> dict[str, int]:
    """Jobs waiting per queue (`jobs_<queue>`), jobs running, and workers alive (a heartbeat lately)."""
    rows = conn.execute(text(
        "SELECT queue_name, status::text, count(*) FROM procrastinate_jobs"
        " WHERE status::text IN (:todo, :doing) GROUP BY queue_name, status"
    ), {"todo": Status.TODO.value, "doing": Status.DOING.value}).all()  # fmt: skip
    workers = conn.execute(text(
        "SELECT count(*) FROM procrastinate_workers WHERE last_heartbeat > now() - make_interval(secs => :s)"
    ), {"s": STALLED_S}).scalar_one()  # fmt: skip
    found = {f"jobs_{queue}": 0 for queue in QUEUES} | {"running": 0, "workers": int(workers)}
    for queue, status, count in rows:
        key = "running" if Status(status) is Status.DOING else f"jobs_{queue}"
        found[key] = found.get(key, 0) + int(count)
    return found


def running_firms(rt: Runtime) -> set[str]:
    """Firms with a job running now (their `firm:` lock is taken)."""
    with rt.store.read() as conn:
        locks = conn.execute(text(
            "SELECT lock FROM procrastinate_jobs WHERE status::text = :doing AND lock LIKE 'firm:%'"
        ), {"doing": Status.DOING.value}).scalars()  # fmt: skip
        return {str(lock).removeprefix("firm:") for lock in locks}


def register(app: App) -> None:
    """The task functions on `app` (a worker's); their runtime and executor come in the job's context."""

    def _parts(context: JobContext) -> tuple[Runtime, Procrastinate]:
        extra = context.additional_context
        return extra["rt"], extra["executor"]

    def night_job(context: JobContext, tenant: str, night: str) -> str:
        rt, ex = _parts(context)
        return tasks.night(rt, ex, tenant, date.fromisoformat(night)).line

    def sync_job(context: JobContext, tenant: str) -> str:
        rt, ex = _parts(context)
        return tasks.sync(rt, ex, tenant).line

    def send_job(context: JobContext, tenant: str) -> str:
        rt, ex = _parts(context)
        return tasks.send(rt, ex, tenant).line

    async def sweep_job(context: JobContext, timestamp: int) -> str:
        rt, ex = _parts(context)
        manager = context.app.job_manager
        stalled = list(await manager.get_stalled_jobs(seconds_since_heartbeat=STALLED_S))
        for job in stalled:  # a worker died (SIGKILL, a lost machine): its job runs again elsewhere
            log.warning("jobs.stalled_retried", job=job.id, task=job.task_name, lock=job.lock)
            await manager.retry_job(job)
        started = time.monotonic()
        running = await asyncio.to_thread(running_firms, rt)
        asked = await utils.sync_to_async(tasks.sweep, rt, ex, running)  # its defers come back to this loop
        return f"stalled {len(stalled)}; asked {asked}; {time.monotonic() - started:.2f}s"

    def poll_job(context: JobContext, timestamp: int) -> str:
        from connector.serve import scheduler

        rt, ex = _parts(context)
        return f"asked {scheduler.poll(rt, ex)} tenant(s) for a poll"

    def rates_job(context: JobContext, timestamp: int) -> str:
        from connector.serve import scheduler

        rt, _ = _parts(context)
        return scheduler.rates(rt)

    def health_job(context: JobContext, timestamp: int) -> str:
        rt, ex = _parts(context)
        firms = tasks.health_firms(rt)
        asked = sum(ex.defer_health(tenant_id) for tenant_id in firms)
        return tasks.report_round(rt, timestamp, f"asked {asked} of {len(firms)} firm(s) for a health check")

    def health_firm_job(context: JobContext, tenant: str) -> str:
        rt, ex = _parts(context)
        return tasks.health(rt, ex, tenant).line

    app.task(name=NIGHT, queue="nights", pass_context=True)(night_job)
    app.task(name=POLL, queue="housekeeping", pass_context=True)(poll_job)
    app.task(name=RATES, queue="housekeeping", pass_context=True)(rates_job)
    app.task(name=HEALTH, queue="housekeeping", pass_context=True)(health_job)
    app.task(name=HEALTH_FIRM, queue="housekeeping", pass_context=True)(health_firm_job)
    app.task(name=SYNC, queue="syncs", pass_context=True)(sync_job)
    app.task(name=SEND, queue="sends", pass_context=True)(send_job)
    sweep = app.task(name=SWEEP, queue="housekeeping", pass_context=True, queueing_lock="sweep")(sweep_job)
    app.periodic(cron=SWEEP_CRON, periodic_id="sweep")(sweep)


def request_sync_once(settings: Settings, store: Store, tenant_id: str) -> None:
    """Defer the firm's sync from a short-lived process (`ccm sync --now`), after the debounce time."""
    from connector import lease
    from connector.clock import Clock

    rt = Runtime(settings, store, Clock.parse(settings.serve.clock), lease.new_holder())
    executor = Procrastinate(rt, settings.db_url)
    try:
        executor.request_sync([tenant_id])
    finally:
        executor.close()
