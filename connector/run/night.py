"""A tenant's night, `ccm run`: sync → reconcile → plan → (approve) → execute, under the tenant's run lease.

Bad tenant settings (policy file, templates, credit rules, mapping override, unsafe SMTP settings) stop the
tenant before anything is synced, planned or sent; a failed sync stops it before anything is planned
(chasing on stale data could chase someone who has paid). Once sending, one action's failure is that
action's (connector/run/execute.py): the night goes on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import structlog

from adapters import base as registry
from adapters.base import Ledger, LedgerError
from connector import credit, health, lease, outbox
from connector.config import Settings
from connector.model import Tenant
from connector.outbox import Action, Mode
from connector.reconcile import Basis, allocate, find_discrepancies, load_snapshot
from connector.reference_rates.refresh import check as rates_check
from connector.rules.credit import Decision, Rule, load_rules
from connector.run.execute import Executor, Outcome
from connector.run.plan import Context, Plan, plan_tenant
from connector.runtime import ledger_for, mapping_for
from connector.store import Store, synclog
from connector.store.tenants import get_connection, get_tenant
from connector.sync import PageEvent, SyncResult, run_sync

log = structlog.get_logger(__name__)
LEASE_TTL = timedelta(minutes=5)  # renewed while the night runs; a dead holder's runs out within this
CREDIT_FILE = "credit.yaml"


@dataclass
class NightSummary:
    tenant_id: str
    sync: SyncResult | None = None
    discrepancies: int = 0
    plan: Plan | None = None
    outcome: Outcome | None = None
    stopped: str | None = None
    skipped: Counter[str] = field(default_factory=Counter)
    holds: list[Decision] = field(default_factory=list)
    health: list[health.OpenIssue] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the night chose not to do, one line each

    @property
    def api_calls(self) -> int:
        return (self.sync.api_calls if self.sync else 0) + (self.outcome.api_calls if self.outcome else 0)


def plan_holds(
    store: Store,
    settings: Settings,
    ctx: Context,
    now: datetime,
    mode: Mode,
    basis: Basis,
    rules: Sequence[Rule] | None = None,
) -> list[Decision]:
    """Credit-hold decisions for the tenant, written to the outbox (a dry run writes nothing).

    Read in a read transaction, decided outside any, written in a short one (`rules`: loaded up front by
    the night; else the tenant's file is read here).
    """
    if rules is None:
        rules = load_rules(settings.tenant_dir(ctx.tenant.id) / CREDIT_FILE)
    with store.read() as conn:
        found = credit.standing(conn, ctx.tenant.id)
    decisions, _ = credit.decide_on(
        basis, found, rules, settings.credit.include_drafts, settings.credit.segment_limits
    )
    actions = credit.hold_actions(decisions, basis.snapshot, basis.today, now, found.held)
    with store.begin() as conn:
        outbox.plan(conn, ctx.tenant.id, actions, mode, now)
    return decisions


def run_night(
    store: Store,
    settings: Settings,
    tenant_id: str,
    *,
    now: datetime,
    mode: Mode = Mode.AUTO,
    ledger: Ledger | None = None,
    sync: bool = True,
    holder: str | None = None,
    on_page: Callable[[PageEvent], None] | None = None,
    before_effect: Callable[[Action], None] | None = None,
    clock: Callable[[], datetime] | None = None,
    trigger: str = "cli",
    should_stop: Callable[[], bool] | None = None,
) -> NightSummary:
    """Run one tenant's night at `now` under its run lease. Raises lease.Busy if another holder runs it.

    `clock` is what the sync stamps its run and caps its cursors with: the ledger's time (default: the real
    clock, whatever `now` says); `should_stop` is asked between pages and between side effects (a server
    shutting down).
    """
    holder = holder or lease.new_holder()
    with lease.kept(store, tenant_id, holder, LEASE_TTL) as keeper:

        def stop() -> bool:
            return keeper.is_lost() or (should_stop is not None and should_stop())

        return night_held(
            store, settings, tenant_id, now=now, mode=mode, ledger=ledger, sync=sync, holder=holder,
            on_page=on_page, before_effect=before_effect, clock=clock, trigger=trigger,
            should_stop=stop,
        )  # fmt: skip


def night_held(
    store: Store,
    settings: Settings,
    tenant_id: str,
    *,
    now: datetime,
    holder: str,
    mode: Mode = Mode.AUTO,
    ledger: Ledger | None = None,
    sync: bool = True,
    on_page: Callable[[PageEvent], None] | None = None,
    before_effect: Callable[[Action], None] | None = None,
    clock: Callable[[], datetime] | None = None,
    trigger: str = "cli",
    should_stop: Callable[[], bool] | None = None,
) -> NightSummary:
    """`run_night` for a caller already holding the tenant's run lease as `holder`."""
    summary = NightSummary(tenant_id)
    with store.read() as conn:
        tenant = get_tenant(conn, tenant_id)
    ctx = Context.load(settings, tenant)  # policy file, SMTP settings
    ctx.check_templates()
    rules = load_rules(settings.tenant_dir(tenant.id) / CREDIT_FILE)  # a bad file stops us before the sync
    mapping = mapping_for(settings, tenant) if sync else None  # the tenant's override, validated
    if sync or ledger is None:
        ledger = ledger or ledger_for(settings, store, tenant)
    if mapping is not None:
        summary.sync = run_sync(
            store, tenant.id, ledger, mapping, on_page=on_page,
            overlap=timedelta(seconds=settings.sync.overlap_seconds), clock=clock or _utcnow,
            trigger=trigger, should_stop=should_stop,
        )  # fmt: skip
        if summary.sync.outcome == synclog.INTERRUPTED:
            summary.stopped = f"shutting down: {summary.sync.error}"
            return summary
    rates_check(store, settings, now, tenant.id)  # reference_rate_stale, also for nights run without a server
    offline = not sync and mode is Mode.DRY_RUN  # neither pulls nor sends: no call may reach the ledger
    summary.health = check_health(store, settings, tenant, ledger, now, ask_ledger=not offline)
    if offline:
        summary.notes.append("the ledger was not asked (--no-sync --dry-run): its own reminders not checked")
    executor = Executor(store, settings, ctx, ledger, holder, mode, before_effect, should_stop)
    if mode is not Mode.DRY_RUN and settings.health.notify:
        with store.begin() as conn:
            outbox.plan(conn, tenant.id, health.notices(conn, tenant, now), Mode.AUTO, now)
    if summary.sync is not None and summary.sync.outcome == synclog.FAILED:
        if mode is not Mode.DRY_RUN:
            summary.outcome = executor.notices_only(now)  # telling the firm what is wrong still goes out
        summary.stopped = f"sync failed, so nothing was planned or sent: {summary.sync.error}"
        return summary
    today = ctx.calendar.local_date(now)
    snapshot = load_snapshot(store, tenant.id)  # read once; planning, holds and sending share it
    basis = Basis.of(snapshot, today)
    summary.discrepancies = len(find_discrepancies(snapshot, allocate(snapshot), basis.rates))
    summary.plan = plan_tenant(store, ctx, today, now, mode, basis)
    summary.skipped.update(s.reason.value for s in summary.plan.evaluation.skipped)
    summary.holds = plan_holds(store, settings, ctx, now, mode, basis, rules)
    if mode is not Mode.DRY_RUN:
        summary.outcome = executor.run(now, basis=basis)
        summary.stopped = summary.outcome.stopped
        with store.read() as conn:  # what sending found (SMTP login refused, actions needing a person) too
            summary.health = health.open_issues(conn, tenant.id)
    return summary


def _utcnow() -> datetime:
    return datetime.now(UTC)


def check_health(
    store: Store,
    settings: Settings,
    tenant: Tenant,
    ledger: Ledger | None,
    now: datetime,
    *,
    ask_ledger: bool = True,
) -> list[health.OpenIssue]:
    """Assess and record the tenant's connection health; returns every issue still open.

    Without `ask_ledger` only what ccm knows itself is assessed (the ledger's reminder setting stays as
    last recorded)."""
    usage = getattr(ledger, "usage", None)
    reminders = getattr(ledger, "reminders_enabled", None) if ask_ledger else None
    reminders_on: bool | None = None
    if reminders is not None:
        try:
            reminders_on = bool(reminders())
        except LedgerError as exc:  # the check is advice: a failure does not stop the night
            log.info("health.reminders_unknown", tenant=tenant.id, reason=str(exc))
    spec = registry.get(tenant.ledger)
    with store.begin() as conn:
        found = health.assess(
            tenant, get_connection(conn, tenant.id), health.tokens_of(conn, tenant.id),
            idle_days=spec.refresh_idle_days, usage=usage() if usage is not None else None,
            reminders_on=reminders_on, now=now, rules=settings.health,
        )  # fmt: skip
        checked = health.KINDS if reminders_on is not None else tuple(k for k in health.KINDS
                                                                      if k != "ledger_reminders")  # fmt: skip
        health.record(conn, tenant.id, found, now, checked)
        return health.open_issues(conn, tenant.id)
