"""APScheduler in `ccm serve`: one nightly job per tenant, its jobs in memory (SQLite and PostgreSQL alike).

Each connected tenant has a job `night:<tenant>` on a NightlyTrigger in the tenant's time zone at its night
time (`ccm tenants set T --night-time`, else `serve.night_time`). A job does no work itself: when it has run,
a listener marks the night due in the nights table with the instant it was scheduled for, and the executor
takes it from there (servers sharing the database mark the same row; nights.py makes it run once): on SQLite
the in-process dispatcher, on PostgreSQL the procrastinate job the server whose insert it was defers
(connector/jobs/engine.py). The jobs are in memory, so at start each connected tenant's latest night whose
time passed within `serve.misfire_grace_hours` and that has no row yet is marked due (`catch_up`): a server
down for several nights runs only the latest, once; on PostgreSQL the workers' sweep asks again for any
night whose job was lost.

A second job, `poll`, asks for a sync of the streams the ledgers send no webhook events for (Xero's
payments) every `serve.poll_minutes` of the server's clock, on the boundaries of that period.

A third, `rates`, while statutory interest is on: fetches the central-bank reference rate it needs once a day
(real time: the banks publish in real time), at start too, and checks every tenant is covered
(connector/reference_rates/refresh.py).

A fourth, `health`, once a day of the server's clock (at start too): each firm's connection health from
what the store knows (connector/serve/work.py `health_check`), whether its nights run or not.

On SQLite `poll`, `rates` and `health` run here (the health round firm by firm, each under the firm's run
lease). On PostgreSQL they are procrastinate tasks (`ccm.poll`, `ccm.rates`, `ccm.health`) that a worker
runs: each scheduler defers them as periodic jobs keyed by their period's start on the server's clock (the
poll period; the UTC day), and procrastinate's periodic-defer record lets one job per key through however
many schedulers ask; `ccm.health` defers a job per firm under the firm's lock.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

import structlog
from apscheduler.events import EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.jobstores.base import ConflictingIdError, JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from connector import ledger as registry
from connector.jobs import tasks
from connector.jobs.executor import InProcess, TaskRunner
from connector.model import ConnectionState, Tenant
from connector.serve import nights, syncqueue
from connector.serve.runtime import Runtime
from connector.serve.trigger import NightlyTrigger, fire_on, parse_time
from connector.serve.work import JobOutcome
from connector.store.tenants import get_connection, get_tenant, list_tenants

log = structlog.get_logger(__name__)
NIGHT = "night:"
POLL = "poll"
RATES = "rates"
RATES_EVERY = timedelta(days=1)
HEALTH = "health"
HEALTH_EVERY = timedelta(days=1)  # of the server's clock
_runtime: Runtime | None = None  # the process's server, for the job functions APScheduler calls by name
_wake: Callable[[], None] | None = None
_executor: TaskRunner | None = None


def night_job(tenant_id: str) -> str:
    """What APScheduler runs at a tenant's night: nothing; the EXECUTED listener marks the night due."""
    return tenant_id


@runtime_checkable
class Periodic(Protocol):
    """An executor that defers periodic jobs (procrastinate's): one job per task and key, however many ask."""

    def defer_periodic(self, task: str, key: int) -> bool: ...


def poll_job() -> int:
    """SQLite: the poll, run in this process; returns how many tenants were asked for."""
    rt = _runtime
    if rt is None or rt.should_stop():
        return 0
    return poll(rt, _executor, _wake)


def poll(rt: Runtime, executor: TaskRunner | None, wake: Callable[[], None] | None = None) -> int:
    """Ask for a sync of every tenant's streams that have no webhook events; returns how many tenants."""
    asked = 0
    polled: dict[str, list[str]] = {}  # per ledger, worked out once a poll
    polled_tenants: list[str] = []
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
                polled_tenants.append(tenant.id)
    if executor is not None:
        executor.request_sync(polled_tenants)
    elif wake is not None:
        wake()
    return asked


def rates_job() -> str:
    """SQLite: the reference rates' refresh, run in this process; one line."""
    rt = _runtime
    if rt is None or rt.should_stop():
        return ""
    return rates(rt)


def health_job() -> int:
    """SQLite: the day's health round, run in this process; returns how many firms were checked."""
    rt = _runtime
    if rt is None or rt.should_stop():
        return 0
    wake = _wake
    runner = _executor or InProcess(wake if wake is not None else _nothing, dict)
    checked = health_round(rt, runner)
    tasks.report_round(rt, rates_key(rt), f"checked {checked} firm(s)")
    return checked


def _nothing() -> None:
    return None


def health_round(rt: Runtime, runner: TaskRunner) -> int:
    """Check every firm's health, one after another (the same task body a worker runs per firm)."""
    checked = 0
    for tenant_id in tasks.health_firms(rt):
        if rt.should_stop():
            break
        try:
            done = tasks.health(rt, runner, tenant_id)
        except Exception:  # a bug or the database: the next firm still gets its check
            log.exception("health.check_crashed", tenant=tenant_id)
            continue
        checked += done.outcome is JobOutcome.DONE
    return checked


def rates(rt: Runtime) -> str:
    """Refresh the reference rates statutory interest needs and check every tenant; one line."""
    from connector.reference_rates import refresh

    now = rt.clock.now()
    line = refresh.daily(rt.store, rt.settings, now)
    rt.report(f"{now:%Y-%m-%d %H:%M} UTC reference rates: {line}")
    return line


def poll_key(rt: Runtime, at: datetime | None = None) -> int:
    """The poll period an instant on the server's clock belongs to: its start (POSIX s), the nearest boundary
    (schedulers fire on boundaries, a little late or early)."""
    period = rt.settings.serve.poll_minutes * 60
    now = (at or rt.clock.now()).timestamp()
    return round(now / period) * period


def rates_key(rt: Runtime, at: datetime | None = None) -> int:
    """The UTC day of an instant on the server's clock: its midnight (POSIX s); the health round's key too."""
    day = (at or rt.clock.now()).astimezone(UTC).date()
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())


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

    def __init__(self, rt: Runtime, wake: Callable[[], None], executor: TaskRunner | None = None) -> None:
        global _runtime, _wake, _executor  # the in-process poll and rates jobs find the server here
        _runtime, _wake, _executor = rt, wake, executor
        self.rt = rt
        self.wake = wake
        self.executor = executor
        self.periodic = isinstance(executor, Periodic)  # PostgreSQL: poll and rates are procrastinate tasks
        self.scheduler = BackgroundScheduler(
            jobstores={"default": MemoryJobStore()}, timezone=UTC, job_defaults=self._defaults(), daemon=True
        )
        self.scheduler.add_listener(self._ran, EVENT_JOB_EXECUTED | EVENT_JOB_MISSED)

    def _defaults(self) -> dict[str, Any]:
        grace = self.rt.clock.real_seconds(self.rt.settings.serve.misfire_grace_hours * 3600)
        return {"coalesce": True, "max_instances": 1, "misfire_grace_time": max(1, int(grace))}

    def start(self) -> int:
        """Start scheduling; returns how many tenants have a nightly job."""
        self.scheduler.start()
        count = self.align()
        self.catch_up()
        return count

    def catch_up(self) -> int:
        """Mark due (and defer) each connected tenant's latest night whose time passed within the misfire
        grace and that nobody recorded: what a job store kept in the database would have run at start."""
        rt = self.rt
        now = rt.clock.now()
        grace = timedelta(hours=rt.settings.serve.misfire_grace_hours)
        marked = 0
        with rt.store.read() as conn:
            found = [(t, get_connection(conn, t.id)) for t in list_tenants(conn)]
        for tenant, link in found:
            if link is None or link.state is ConnectionState.DISCONNECTED:
                continue
            zone = ZoneInfo(tenant.timezone)
            today = now.astimezone(zone).date()
            at = parse_time(night_time(tenant, rt))
            passed = [(d, fire_on(d, at, zone)) for d in (today - timedelta(days=1), today)]
            past = [(d, i) for d, i in passed if i <= now]
            if not past:
                continue
            day, instant = past[-1]
            if now - instant > grace:
                continue
            marked += self._due(tenant.id, day, instant)
        return marked

    def shutdown(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)

    def poke(self) -> None:
        """Look at the jobs again now."""
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
        self._ensure_health(stored.get(HEALTH))
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
        clock = self.rt.clock
        seconds = clock.real_seconds(minutes * 60)
        if job is not None and abs(job.trigger.interval.total_seconds() - seconds) < 1e-3:
            return
        now = clock.now()  # fire on the period's boundaries of the server's clock: every scheduler alike
        nxt = poll_key(self.rt, now)
        if nxt <= now.timestamp():
            nxt += minutes * 60
        start = datetime.fromtimestamp(clock.to_real(datetime.fromtimestamp(nxt, UTC)), UTC)
        try:
            self.scheduler.add_job(
                self._defer_poll if self.periodic else poll_job,
                IntervalTrigger(seconds=seconds, start_date=start),
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
            return  # keeps its next run
        try:
            self.scheduler.add_job(
                self._defer_rates if self.periodic else rates_job,
                IntervalTrigger(seconds=RATES_EVERY.total_seconds()), id=RATES, name=RATES,
                next_run_time=datetime.now(UTC), misfire_grace_time=None,
            )  # fmt: skip
        except ConflictingIdError:
            return

    def _ensure_health(self, job: Any) -> None:
        if job is not None:
            return  # keeps its next run
        try:
            self.scheduler.add_job(
                self._defer_health if self.periodic else health_job,
                IntervalTrigger(seconds=self.rt.clock.real_seconds(HEALTH_EVERY.total_seconds())),
                id=HEALTH, name=HEALTH, next_run_time=datetime.now(UTC), misfire_grace_time=None,
            )  # fmt: skip
        except ConflictingIdError:
            return

    def _defer_health(self) -> bool:
        """PostgreSQL: defer the day's health round (one a day however many schedulers ask)."""
        return self._defer_periodic(HEALTH, rates_key(self.rt))

    def _defer_poll(self) -> bool:
        """PostgreSQL: defer this period's poll (one job however many schedulers ask)."""
        return self._defer_periodic(POLL, poll_key(self.rt))

    def _defer_rates(self) -> bool:
        """PostgreSQL: defer today's reference-rates refresh (one job a day however many schedulers ask)."""
        return self._defer_periodic(RATES, rates_key(self.rt))

    def _defer_periodic(self, task: str, key: int) -> bool:
        executor = self.executor
        if self.rt.should_stop() or not isinstance(executor, Periodic):
            return False
        return executor.defer_periodic(task, key)

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
        with self.rt.store.read() as conn:
            tenant = get_tenant(conn, tenant_id)
        day, instant = night_of(tenant, scheduled, self.rt)
        self._due(tenant_id, day, instant)

    def _due(self, tenant_id: str, day: date, instant: datetime) -> bool:
        """Record the night due; the server whose insert it was asks its executor to run it."""
        with self.rt.store.begin() as conn:
            inserted = nights.mark_due(conn, tenant_id, day, instant)
        if inserted:
            log.info("night.due", tenant=tenant_id, night=str(day))
            if self.executor is not None:
                self.executor.defer_night(tenant_id, day)
        self.wake()
        return inserted
