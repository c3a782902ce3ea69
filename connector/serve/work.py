"""The four kinds of work a server does for one tenant, each under the tenant's run lease:

- `night`: the scheduled night (sync, reconcile, plan, send what may go out now, health), claimed in the
  nights table so it runs once however many servers see it due;
- `sync`: an incremental sync asked for by webhooks, `ccm sync --now` or polling, of the streams asked for;
- `send`: what the outbox holds that has come due (reminders deferred to the send window, approved ones,
  retried ledger writes, notices), after re-pulling the tenant so nobody who paid since is chased;
- `health`: the tenant's connection health from what the store knows (the connection's state, the refresh
  token's idle days, the consent's end), recorded, and the firm told of what newly opened (an outbox notice
  the send job sends). A night checks health too, with what only its run learns (the day's calls left, the
  ledger's own reminders); this check runs daily whether nights run or not, so a firm whose nights stopped
  still hears its refresh token is dying. It never calls the ledger.

Each returns a `Done` saying what happened in one line, its outcome a `JobOutcome`; none raises for a
tenant's own problems. Those are the typed kinds only (its files, its connection, its settings, a ledger's
error); a Retriable or RateLimited anywhere in a night runs it again after serve.retry_minutes, up to
serve.max_attempts. Anything else is a bug or the database: logged with its traceback, and the night is
`crashed`, run again at the next tick (up to serve.max_attempts) and shown as such in `ccm schedule`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

import structlog

from connector import firmmode, health, lease, nightreport, outbox
from connector import ledger as registry
from connector.errors import CcmError, TryLater
from connector.ledger import RateLimited, Usage
from connector.model import ConnectionState, Tenant
from connector.outbox import Mode
from connector.run.execute import Executor, Outcome
from connector.run.night import LEASE_TTL, NightSummary, for_night_at, night_held
from connector.run.plan import Context
from connector.serve import nights, syncqueue
from connector.serve.nights import NightState
from connector.serve.runtime import Runtime
from connector.store.synclog import SyncOutcome
from connector.store.tenants import get_connection, get_tenant
from connector.sync import SyncResult, run_sync
from connector.web import snapshots
from connector.wiring import mapping_for

log = structlog.get_logger(__name__)
# A tenant's own problem (its files, its connection, its settings): reported, never a crash of the server.
# Typed kinds only: a ValueError or KeyError from ccm's own code is a bug, and must show as one.
# What a person must act on fails the firm's night with its line; what may pass by itself is retried; anything
# else is a bug or the database: logged with its traceback, the night `crashed` (connector/errors.py).
_TENANT_PROBLEMS = (CcmError,)
_TRANSIENT = (TryLater,)  # caught before _TENANT_PROBLEMS


class JobOutcome(StrEnum):
    """How a job ended: a night's state once it ran, a sync's outcome, or what kept the job from running."""

    DONE = "done"  # a night, a send or a health check that ran to its end
    DUE = "due"  # a night stopped by a shutdown: it runs again
    RETRY = "retry"  # a transient failure: asked for again later
    CRASHED = "crashed"  # a night that hit a bug or the database
    FAILED = "failed"  # what a person must act on
    OK = "ok"  # a sync (its outcome in the sync log)
    PARTIAL = "partial"
    INTERRUPTED = "interrupted"
    SKIPPED = "skipped"  # nothing to do: another holder did it, or nothing was asked
    BUSY = "busy"  # another holder runs the firm now: asked for again soon


QUIET = (JobOutcome.SKIPPED, JobOutcome.BUSY)  # nothing ran: neither reported nor counted as a run's end
TROUBLE = (JobOutcome.FAILED, JobOutcome.RETRY)


@dataclass(frozen=True, slots=True)
class Done:
    kind: str  # night | sync | send | health
    tenant_id: str
    outcome: JobOutcome
    line: str
    seconds: float = 0.0
    sends: bool = False  # it left outbox actions due now (a health check's notices): the send job should run


def _sync_line(result: SyncResult | None) -> str:
    if result is None:
        return "no sync"
    counts = result.counts.values()
    read = sum(c.get("read", 0) for c in counts)
    changed = sum(c.get("inserted", 0) + c.get("updated", 0) + c.get("deleted", 0) for c in counts)
    return f"read {read}, changed {changed}, {result.api_calls} API calls"


def _outcome_line(o: Outcome | None) -> str:
    if o is None:
        return ""
    parts = [f"sent {len(o.sent)}", f"deferred {len(o.deferred)}"]
    for label, items in (
        ("call tasks", o.tasks),
        ("cancelled", o.cancelled),
        ("failed", o.failed),
        ("unknown", o.unknown),
        ("holds", o.holds),
        ("releases", o.releases),
        ("notices", o.notices),
    ):
        if items:
            parts.append(f"{label} {len(items)}")
    if o.notes:
        parts.append(f"notes {o.notes}")
    return ", ".join(parts)


def _count(rt: Runtime, tenant: Tenant | None, ledger: object) -> None:
    """Add what a job's ledger spent to the metrics: every call it made (the adapter counts them), 429s."""
    name = tenant.ledger if tenant is not None else "unknown"
    usage_of = getattr(ledger, "usage", None)
    usage: Usage | None = usage_of() if usage_of is not None else None
    if usage is not None:
        rt.metrics.api_calls.labels(name).inc(usage.calls)
        if usage.throttled:
            rt.metrics.throttled.labels(name).inc(usage.throttled)


def _finished(rt: Runtime, done: Done) -> Done:
    rt.metrics.runs.labels(done.kind, done.outcome).inc()
    rt.metrics.seconds.labels(done.kind).observe(done.seconds)
    if done.outcome in TROUBLE:
        rt.metrics.failures.labels(done.kind).inc()
    if done.outcome not in QUIET:
        rt.report(f"{rt.clock.now():%Y-%m-%d %H:%M} UTC {done.tenant_id} {done.kind}: {done.line}")
        if done.kind in ("night", "sync") and rt.pages:  # pages computed again now, not at their next view
            snapshots.warm(rt.store, rt.settings, done.tenant_id, rt.clock.now(), always=done.kind == "night")
    log.info(f"{done.kind}.finished", tenant=done.tenant_id, outcome=done.outcome, detail=done.line)
    return done


# ---- the night


def _classify(rt: Runtime, summary: NightSummary, attempt: int) -> tuple[NightState, str, datetime | None]:
    """(night state, one line, retry time) for a night that ran."""
    result = summary.sync
    line = "; ".join(part for part in (_sync_line(result), _outcome_line(summary.outcome)) if part)
    if summary.health:
        line += f"; health: {', '.join(i.kind for i in summary.health)}"
    if result is not None and result.outcome == SyncOutcome.INTERRUPTED:
        return NightState.DUE, f"stopped by a shutdown ({line}); runs again", None
    if result is not None and result.outcome == SyncOutcome.FAILED:
        if result.transient and attempt < rt.settings.serve.max_attempts:
            wait = rt.clock.now() + timedelta(minutes=rt.settings.serve.retry_minutes)
            when = max(wait, result.retry_at) if result.retry_at else wait
            return NightState.RETRY, f"{result.error}; attempt {attempt}, again after {when:%H:%M} UTC", when
        return NightState.FAILED, f"{summary.stopped}", None
    if summary.stopped and not rt.should_stop():
        return NightState.FAILED, f"{line}; stopped: {summary.stopped}", None
    return NightState.DONE, line, None


def night(rt: Runtime, tenant_id: str, on: date) -> Done:
    """Run the tenant's night of local date `on`, unless another holder has or is running it."""
    holder = lease.new_holder()
    began = time.perf_counter()
    try:
        with lease.kept(rt.store, tenant_id, holder, LEASE_TTL) as keeper:
            with rt.store.begin() as conn:
                attempt = nights.claim(conn, tenant_id, on, holder, rt.clock.now())
            if attempt is None:
                return Done("night", tenant_id, JobOutcome.SKIPPED, f"night {on} was taken by another holder")
            requested_before = rt.real_now()
            state, line, when, synced = _night(rt, tenant_id, holder, attempt, _stopper(rt, keeper))
            with rt.store.begin() as conn:
                nights.finish(conn, tenant_id, on, holder, state, line, rt.clock.now(), when)
                if synced:  # the night's sync read every stream: requests made before it are answered
                    syncqueue.covered_by(conn, tenant_id, requested_before)
    except lease.Busy:
        return Done("night", tenant_id, JobOutcome.BUSY, "another holder is running this tenant")
    seconds = time.perf_counter() - began
    return _finished(rt, Done("night", tenant_id, JobOutcome(state), f"night {on}: {line}", seconds))


def _stopper(rt: Runtime, keeper: lease.Keeper) -> Callable[[], bool]:
    """Stop at the next safe point when the server shuts down, or when the lease could not be kept (another
    holder may be running the tenant by now)."""
    return lambda: rt.should_stop() or keeper.is_lost()


def _night(
    rt: Runtime, tenant_id: str, holder: str, attempt: int, stop: Callable[[], bool]
) -> tuple[NightState, str, datetime | None, bool]:
    tenant: Tenant | None = None
    ledger = None
    began = rt.clock.now()

    def report(summary: NightSummary | None, problem: str | None = None, crashed: bool = False) -> None:
        try:
            mode = summary.mode if summary is not None else _mode(rt, tenant_id).mode
            nightreport.record(rt.store, tenant_id, summary, ran_from=nightreport.RanFrom.SERVE, mode=mode,
                               started_at=began, finished_at=rt.clock.now(), problem=problem,
                               crashed=crashed)  # fmt: skip
        except Exception:  # the night's own state is in `nights`; a report that cannot be written is logged
            log.exception("night.report_failed", tenant=tenant_id)

    try:
        with rt.store.read() as conn:
            tenant = get_tenant(conn, tenant_id)
        ledger = rt.ledger(tenant)
        summary = night_held(
            rt.store,
            rt.settings,
            tenant_id,
            now=rt.clock.now(),
            holder=holder,
            mode=None,  # the firm's own: approve on its safe first nights (connector/firmmode.py)
            ledger=ledger,
            clock=rt.clock.now,
            trigger="night",
            should_stop=stop,
        )
    except _TRANSIENT as exc:
        again = _again(rt, str(exc), attempt, exc)
        report(None, again[1])
        return (*again, False)
    except _TENANT_PROBLEMS as exc:
        report(None, str(exc))
        return NightState.FAILED, str(exc), None, False
    except Exception as exc:  # a bug or the database: logged in full, run again at the next tick
        log.exception("night.crashed", tenant=tenant_id, attempt=attempt)
        what = f"internal error ({type(exc).__name__}); see the server's log"
        if attempt < rt.settings.serve.max_attempts:
            line = f"{what}; attempt {attempt}, runs again at the next tick"
            report(None, line, crashed=True)
            return NightState.CRASHED, line, rt.clock.now(), False
        report(None, f"{what}; gave up after {attempt} attempts", crashed=True)
        return NightState.CRASHED, f"{what}; gave up after {attempt} attempts", None, False
    finally:
        _count(rt, tenant, ledger)
    if summary.outcome is not None and summary.outcome.sent:
        rt.metrics.reminders.inc(len(summary.outcome.sent))
    state, line, when = _classify(rt, summary, attempt)
    if state != NightState.DUE:  # stopped by a shutdown: it runs again, and that run is the night's record
        report(summary)
    synced = summary.sync is not None and summary.sync.outcome.read_all
    return state, line, when, synced


def _mode(rt: Runtime, tenant_id: str) -> firmmode.Effective:
    """The firm's mode now (serve.mode for a firm without its own, after its safe first nights)."""
    return for_night_at(rt.store, rt.settings, tenant_id, rt.clock.now())


def _again(
    rt: Runtime, error: str, attempt: int, exc: Exception | None = None
) -> tuple[NightState, str, datetime | None]:
    """A night that failed transiently: run again after serve.retry_minutes (or the ledger's Retry-After),
    until serve.max_attempts."""
    if attempt >= rt.settings.serve.max_attempts:
        return NightState.FAILED, f"{error}; gave up after {attempt} attempts", None
    when = rt.clock.now() + timedelta(minutes=rt.settings.serve.retry_minutes)
    if isinstance(exc, RateLimited):
        when = max(when, rt.clock.now() + timedelta(seconds=exc.retry_after))
    return NightState.RETRY, f"{error}; attempt {attempt}, again after {when:%H:%M} UTC", when


# ---- syncs asked for


def _trigger(reasons: list[str]) -> str:
    for reason in (syncqueue.WEBHOOK, syncqueue.NOW, syncqueue.POLL):
        if reason in reasons:
            return reason
    return syncqueue.NOW


def sync(rt: Runtime, tenant_id: str, up_to: int) -> Done:
    """An incremental sync of what the tenant's requests up to `up_to` ask for; forgets them after."""
    holder = lease.new_holder()
    began = time.perf_counter()
    try:
        with lease.kept(rt.store, tenant_id, holder, LEASE_TTL) as keeper:
            outcome, line, forget = _sync(rt, tenant_id, up_to, _stopper(rt, keeper))
            if forget:
                with rt.store.begin() as conn:
                    syncqueue.done(conn, tenant_id, up_to)
    except lease.Busy:
        return Done("sync", tenant_id, JobOutcome.BUSY, "another holder is running this tenant")
    return _finished(rt, Done("sync", tenant_id, outcome, line, time.perf_counter() - began))


def _sync(rt: Runtime, tenant_id: str, up_to: int, stop: Callable[[], bool]) -> tuple[JobOutcome, str, bool]:
    """(outcome, line, whether the requests are answered)."""
    with rt.store.read() as conn:
        streams, reasons = syncqueue.streams(conn, tenant_id, up_to)
    trigger = _trigger(reasons)
    tenant: Tenant | None = None
    ledger = None
    try:
        with rt.store.read() as conn:
            tenant = get_tenant(conn, tenant_id)
        mapping = mapping_for(rt.settings, tenant)
        wanted = None if streams is None else [s for s in streams if s in mapping.streams]
        if wanted == []:
            return JobOutcome.OK, f"{trigger}: nothing ccm reads changed", True
        ledger = rt.ledger(tenant)
        result = run_sync(
            rt.store,
            tenant_id,
            ledger,
            mapping,
            streams=wanted,
            trigger=trigger,
            clock=rt.clock.now,
            overlap=timedelta(seconds=rt.settings.sync.overlap_seconds),
            should_stop=stop,
        )
    except _TRANSIENT as exc:  # the requests stay: asked again after the cool-off
        return JobOutcome.FAILED, f"{trigger}: {exc}", False
    except _TENANT_PROBLEMS as exc:
        return JobOutcome.FAILED, f"{trigger}: {exc}", True
    finally:
        _count(rt, tenant, ledger)
    what = ", ".join(wanted) if wanted else "every stream"
    line = f"{trigger} sync of {what}: {_sync_line(result)}"
    if result.outcome == SyncOutcome.FAILED:
        return JobOutcome.FAILED, f"{line}; {result.error}", not result.transient
    return JobOutcome(result.outcome), line, result.outcome != SyncOutcome.INTERRUPTED


# ---- sending what has come due


def send(rt: Runtime, tenant_id: str) -> Done:
    """Send the tenant's due actions, re-pulling it first (a payment since planning cancels a reminder)."""
    holder = lease.new_holder()
    began = time.perf_counter()
    tenant: Tenant | None = None
    ledger = None
    try:
        with lease.kept(rt.store, tenant_id, holder, LEASE_TTL) as keeper:
            stop = _stopper(rt, keeper)
            with rt.store.read() as conn:
                tenant = get_tenant(conn, tenant_id)
            ctx = Context.load(rt.settings, tenant)
            ctx.check_templates()
            ledger = rt.ledger(tenant)
            mapping = mapping_for(rt.settings, tenant)
            found, live = tenant, ledger

            def resync() -> SyncResult:
                return run_sync(
                    rt.store,
                    found.id,
                    live,
                    mapping,
                    trigger="send",
                    clock=rt.clock.now,
                    overlap=timedelta(seconds=rt.settings.sync.overlap_seconds),
                    should_stop=stop,
                )

            mode = _mode(rt, tenant_id).mode  # what sending re-plans awaits a person as the night's would
            executor = Executor(rt.store, rt.settings, ctx, ledger, holder, mode, should_stop=stop)
            outcome = executor.run(rt.clock.now(), resync=resync)
    except lease.Busy:
        return Done("send", tenant_id, JobOutcome.BUSY, "another holder is running this tenant")
    except _TRANSIENT as exc:  # what is due stays due: looked at again after the cool-off
        return _finished(rt, Done("send", tenant_id, JobOutcome.RETRY, str(exc), time.perf_counter() - began))
    except _TENANT_PROBLEMS as exc:
        seconds = time.perf_counter() - began
        return _finished(rt, Done("send", tenant_id, JobOutcome.FAILED, str(exc), seconds))
    finally:
        _count(rt, tenant, ledger)
    if outcome.sent:
        rt.metrics.reminders.inc(len(outcome.sent))
    line = _outcome_line(outcome) + (f"; stopped: {outcome.stopped}" if outcome.stopped else "")
    state = JobOutcome.FAILED if outcome.stopped and not rt.should_stop() else JobOutcome.DONE
    return _finished(rt, Done("send", tenant_id, state, line, time.perf_counter() - began))


# ---- connection health, between nights


def health_check(rt: Runtime, tenant_id: str) -> Done:
    """Check the tenant's connection health from the store and record it; plan the notices of what opened
    (`Done.sends`: the caller asks for the firm's send job)."""
    holder = lease.new_holder()
    began = time.perf_counter()
    try:
        with lease.kept(rt.store, tenant_id, holder, LEASE_TTL):
            now = rt.clock.now()
            mode = _mode(rt, tenant_id).mode
            with rt.store.begin() as conn:
                tenant = get_tenant(conn, tenant_id)
                link = get_connection(conn, tenant_id)
                if link is None or link.state is ConnectionState.DISCONNECTED:
                    return Done("health", tenant_id, JobOutcome.SKIPPED, "not connected: nothing to check")
                found = health.assess(
                    tenant, link, health.tokens_of(conn, tenant_id),
                    idle_days=registry.get(tenant.ledger).refresh_idle_days, usage=None, reminders_on=None,
                    now=now, rules=rt.settings.health,
                )  # fmt: skip
                health.record(conn, tenant_id, found, now, health.STORE_KINDS)
                told: list[str] = []
                if mode is not Mode.DRY_RUN and rt.settings.health.notify:
                    notices = health.notices(conn, tenant, now)
                    told = outbox.plan(conn, tenant_id, notices, Mode.AUTO, now).created
                still = [i.kind for i in health.open_issues(conn, tenant_id)]
    except lease.Busy:  # its night (or a send) runs: the night checks health itself
        return Done("health", tenant_id, JobOutcome.BUSY, "another holder is running this tenant")
    except _TENANT_PROBLEMS as exc:
        seconds = time.perf_counter() - began
        return _finished(rt, Done("health", tenant_id, JobOutcome.FAILED, str(exc), seconds))
    line = ", ".join(still) if still else "no open issue"
    if told:
        line += f"; {len(told)} notice(s) to the firm planned"
    seconds = time.perf_counter() - began
    return _finished(rt, Done("health", tenant_id, JobOutcome.DONE, line, seconds, sends=bool(told)))
