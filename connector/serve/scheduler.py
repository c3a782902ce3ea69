"""APScheduler in `ccm serve`: one nightly job per tenant, its job store in ccm's own database.

Each connected tenant has a job `night:<tenant>` on a NightlyTrigger in the tenant's time zone at its night
time (`ccm tenants set T --night-time`, else `serve.night_time`). Jobs coalesce and have a misfire grace
(`serve.misfire_grace_hours`), so a server that was down when a night came runs it once at start, and one
down for several nights runs only the latest. A job does no work itself: when it has run, a listener marks
the night due in the nights table with the instant it was scheduled for, and the dispatcher takes it from
there (servers sharing the database mark the same row; nights.py makes it run once).

A second job, `poll`, asks for a sync of the streams the ledgers send no webhook events for (Xero's
payments) every `serve.poll_minutes`.

A third, `rates`, while statutory interest is on: fetches the central-bank reference rate it needs once a day
(real time: the banks publish in real time), at start too, and checks every tenant is covered
(connector/reference_rates/refresh.py).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from apscheduler.events import EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.jobstores.base import ConflictingIdError, JobLookupError
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from adapters import base as registry
from connector.model import ConnectionState, Tenant
from connector.serve import nights, syncqueue
from connector.serve.runtime import Runtime
from connector.serve.trigger import NightlyTrigger, fire_on, parse_time
from connector.store.schema import apscheduler_jobs
from connector.store.tenants import get_connection, list_tenants

log = structlog.get_logger(__name__)
NIGHT = "night:"
POLL = "poll"
RATES = "rates"
RATES_EVERY = timedelta(days=1)
_runtime: Runtime | None = None  # the process's server, for the job functions APScheduler calls by name
_wake: Callable[[], None] | None = None


def night_job(tenant_id: str) -> str:
    """What APScheduler runs at a tenant's night: nothing; the EXECUTED listener marks the night due."""
    return tenant_id


def poll_job() -> int:
    """Ask for a sync of every tenant's streams that have no webhook events; returns how many tenants."""
    rt = _runtime
    if rt is None or rt.should_stop():
        return 0
    asked = 0
    polled: dict[str, list[str]] = {}  # per ledger, worked out once a poll
    with rt.store.begin() as conn:
        for tenant in list_tenants(conn):
            link = get_connection(conn, tenant.id)
            if link is None or link.state is not ConnectionState.CONNECTED:
                continue
            if tenant.ledger not in polled:
                polled[tenant.ledger] = polled_streams(tenant.ledger)
            streams = polled[tenant.ledger]
            if streams:
                syncqueue.add(conn, tenant.id, streams, syncqueue.POLL, rt.real_now())
                asked += 1
    if _wake is not None:
        _wake()
    return asked


def rates_job() -> str:
    """Refresh the reference rates statutory interest needs and check every tenant; one line."""
    from connector.reference_rates import refresh

    rt = _runtime
    if rt is None or rt.should_stop():
        return ""
    now = rt.clock.now()
    line = refresh.daily(rt.store, rt.settings, now)
    rt.report(f"{now:%Y-%m-%d %H:%M} UTC reference rates: {line}")
    return line


def polled_streams(ledger: str) -> list[str]:
    """The mapped streams a ledger announces no changes of (they are polled)."""
    from connector.mapping import load_mapping

    spec = registry.get(ledger)
    if spec.webhook is None:
        return []
    mapped = load_mapping(spec.mapping, None, spec.schema).streams
    return [name for name in mapped if name not in spec.event_streams]


def night_of(tenant: Tenant, scheduled_real: datetime, rt: Runtime) -> tuple[date, datetime]:
    """The local date of the night a job run was scheduled for, and that night's instant on the clock."""
    on_clock = rt.clock.to_clock(scheduled_real.timestamp())
    on_clock = (on_clock + timedelta(seconds=30)).replace(second=0, microsecond=0)  # runs are on minutes
    zone = ZoneInfo(tenant.timezone)
    day = on_clock.astimezone(zone).date()
    return day, fire_on(day, parse_time(night_time(tenant, rt)), zone)


def night_time(tenant: Tenant, rt: Runtime) -> str:
    return tenant.night_time or rt.settings.serve.night_time


class Scheduler:
    """The process's APScheduler, with its jobs kept in line with the tenants in the store."""

    def __init__(self, rt: Runtime, wake: Callable[[], None]) -> None:
        global _runtime, _wake  # APScheduler calls jobs by module path; they find the server here
        _runtime, _wake = rt, wake
        self.rt = rt
        self.wake = wake
        store = SQLAlchemyJobStore(engine=rt.store.engine, tablename=apscheduler_jobs.name)
        self.scheduler = BackgroundScheduler(
            jobstores={"default": store}, timezone=UTC, job_defaults=self._defaults(), daemon=True
        )
        self.scheduler.add_listener(self._ran, EVENT_JOB_EXECUTED | EVENT_JOB_MISSED)

    def _defaults(self) -> dict[str, Any]:
        grace = self.rt.clock.real_seconds(self.rt.settings.serve.misfire_grace_hours * 3600)
        return {"coalesce": True, "max_instances": 1, "misfire_grace_time": max(1, int(grace))}

    def start(self) -> int:
        """Start scheduling; returns how many tenants have a nightly job."""
        self.scheduler.start()
        return self.align()

    def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def poke(self) -> None:
        """Look at the job store again now (another server may have changed it)."""
        if self.scheduler.running:
            self.scheduler.wakeup()

    def align(self) -> int:
        """Make the stored jobs match the tenants: add, re-time or remove; returns the nightly job count."""
        rt = self.rt
        wanted: dict[str, NightlyTrigger] = {}
        with rt.store.read() as conn:
            for tenant in list_tenants(conn):
                link = get_connection(conn, tenant.id)
                if link is not None and link.state is not ConnectionState.DISCONNECTED:
                    at = night_time(tenant, rt)
                    wanted[NIGHT + tenant.id] = NightlyTrigger(tenant.timezone, at, rt.clock)
        stored = {job.id: job for job in self.scheduler.get_jobs()}
        for job_id in stored:
            if job_id.startswith(NIGHT) and job_id not in wanted:
                self._remove(job_id)
        for job_id, trigger in wanted.items():
            self._ensure(job_id, trigger, stored.get(job_id))
        self._ensure_poll(stored.get(POLL))
        self._ensure_rates(stored.get(RATES))
        return len(wanted)

    def _ensure(self, job_id: str, trigger: NightlyTrigger, job: Any) -> None:
        if job is not None and trigger.same_schedule(job.trigger):
            return  # keep its stored next run time: a night missed while down is still owed
        try:
            self.scheduler.add_job(
                night_job,
                trigger,
                args=[job_id[len(NIGHT) :]],
                id=job_id,
                name=job_id,
                replace_existing=job is not None,
            )
            log.info("schedule.night", job=job_id, trigger=str(trigger))
        except ConflictingIdError:  # another server added it a moment ago
            return

    def _ensure_poll(self, job: Any) -> None:
        minutes = self.rt.settings.serve.poll_minutes
        if minutes == 0:
            if job is not None:
                self._remove(POLL)
            return
        seconds = self.rt.clock.real_seconds(minutes * 60)
        if job is not None and abs(job.trigger.interval.total_seconds() - seconds) < 1e-3:
            return
        try:
            self.scheduler.add_job(
                poll_job,
                IntervalTrigger(seconds=seconds),
                id=POLL,
                name=POLL,
                replace_existing=job is not None,
            )
        except ConflictingIdError:
            return

    def _ensure_rates(self, job: Any) -> None:
        settings = self.rt.settings
        if settings.credit.statutory_interest == "off" or not settings.rates.refresh:
            if job is not None:
                self._remove(RATES)
            return
        if job is not None:
            return  # keeps its next run; one missed while down runs at start (no misfire limit)
        try:
            self.scheduler.add_job(
                rates_job, IntervalTrigger(seconds=RATES_EVERY.total_seconds()), id=RATES, name=RATES,
                next_run_time=datetime.now(UTC), misfire_grace_time=None,
            )  # fmt: skip
        except ConflictingIdError:
            return

    def _remove(self, job_id: str) -> None:
        try:
            self.scheduler.remove_job(job_id)
        except JobLookupError:  # another server removed it
            return

    def _ran(self, event: JobExecutionEvent) -> None:
        """A nightly job ran (or missed its grace): mark the night it was scheduled for due."""
        if not event.job_id.startswith(NIGHT):
            return
        tenant_id = event.job_id[len(NIGHT) :]
        if event.code == EVENT_JOB_MISSED:
            log.warning("schedule.missed", tenant=tenant_id, scheduled=str(event.scheduled_run_time))
            return
        try:
            self._mark(tenant_id, event.scheduled_run_time)
        except Exception:  # the next server start or the other server marks it; never kill the scheduler
            log.exception("schedule.mark_failed", tenant=tenant_id)

    def _mark(self, tenant_id: str, scheduled: datetime) -> None:
        from connector.store.tenants import get_tenant

        rt = self.rt
        with rt.store.begin() as conn:
            tenant = get_tenant(conn, tenant_id)
            day, instant = night_of(tenant, scheduled, rt)
            if nights.mark_due(conn, tenant_id, day, instant):
                log.info("night.due", tenant=tenant_id, night=str(day))
        self.wake()
