"""A tenant's night, `ccm run`: sync → reconcile → plan → (approve) → execute, under the tenant's run lease.

The night runs in the firm's mode (connector/firmmode.py) unless the caller asks for one: a newly connected
firm's first nights only plan, and what they plan waits for a person (`ccm outbox approve`). Each night's plan
replaces what an earlier one left awaiting approval; in auto mode what is still due is approved by the night.
The backlog cutoff (connector/backlog.py) keeps old debts found at connection out of it until included.

Bad tenant settings (policy file, templates, credit rules, mapping override, unsafe SMTP settings) stop the
tenant before anything is synced, planned or sent; a failed sync stops it before anything is planned
(chasing on stale data could chase someone who has paid). Once sending, one action's failure is that
action's (connector/run/execute.py): the night goes on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import structlog
from sqlalchemy import Connection

from connector import backlog, firmmode, health, lease, outbox
from connector import creditcontrol as credit
from connector import ledger as registry
from connector.config import Settings
from connector.ledger import Ledger, LedgerError
from connector.model import Tenant
from connector.outbox import Action, Mode
from connector.reconcile import Basis, allocate, find_discrepancies, load_snapshot
from connector.reference_rates.refresh import check as rates_check
from connector.rules.calendar import SendCalendar
from connector.rules.credit import Decision, Rule, load_rules
from connector.run.execute import Executor, Outcome
from connector.run.plan import Context, Plan, plan_tenant
from connector.store import Store, synclog
from connector.store.tenants import count_night, get_connection, get_standing, get_tenant
from connector.sync import PageEvent, SyncResult, run_sync
from connector.wiring import ledger_for, mapping_for
from connector.words import locale as words
from connector.words import statements
from connector.words.context import reading_locale

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
    mode: Mode = Mode.AUTO  # the mode the night ran in (the firm's, unless the caller asked for one)
    why_mode: str = ""  # why that mode, in words ("safe night 1 of 3 since connecting on ...")
    safe_night: int | None = None  # this night's number among the firm's safe first nights

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
    planned: list[str] | None = None,
) -> list[Decision]:
    """Credit-hold decisions for the tenant, written to the outbox (a dry run writes nothing).

    Read in a read transaction, decided outside any, written in a short one (`rules`: loaded up front by
    the night; else the tenant's file is read here). `planned` collects the keys of the actions planned.
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
    if planned is not None:
        planned.extend(a.key for a in actions)
    return decisions


def run_night(
    store: Store,
    settings: Settings,
    tenant_id: str,
    *,
    now: datetime,
    mode: Mode | None = Mode.AUTO,
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

    `mode` None: the firm's own (connector/firmmode.py), safe first nights included.

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
    mode: Mode | None = Mode.AUTO,
    ledger: Ledger | None = None,
    sync: bool = True,
    on_page: Callable[[PageEvent], None] | None = None,
    before_effect: Callable[[Action], None] | None = None,
    clock: Callable[[], datetime] | None = None,
    trigger: str = "cli",
    should_stop: Callable[[], bool] | None = None,
) -> NightSummary:
    """`run_night` for a caller already holding the tenant's run lease as `holder`.

    Its reasons, notes and notices name amounts as the firm writes them (its locale: connector/words).
    """
    with store.read() as conn:
        tenant = get_tenant(conn, tenant_id)
        locale = reading_locale(conn, tenant)
    with words.writing_in(locale):
        return _night(
            store, settings, tenant, now=now, holder=holder, mode=mode, ledger=ledger, sync=sync,
            on_page=on_page, before_effect=before_effect, clock=clock, trigger=trigger,
            should_stop=should_stop,
        )  # fmt: skip


def _night(
    store: Store,
    settings: Settings,
    tenant: Tenant,
    *,
    now: datetime,
    holder: str,
    mode: Mode | None,
    ledger: Ledger | None,
    sync: bool,
    on_page: Callable[[PageEvent], None] | None,
    before_effect: Callable[[Action], None] | None,
    clock: Callable[[], datetime] | None,
    trigger: str,
    should_stop: Callable[[], bool] | None,
) -> NightSummary:
    summary = NightSummary(tenant.id)
    ctx = Context.load(settings, tenant)  # policy file, SMTP settings
    chosen = for_night(store, settings, tenant.id, ctx.calendar.local_date(now), mode)
    mode = summary.mode = chosen.mode
    summary.why_mode, summary.safe_night = chosen.why, chosen.safe_night
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
        if summary.sync.outcome == synclog.SyncOutcome.INTERRUPTED:
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
    if summary.sync is not None and summary.sync.outcome == synclog.SyncOutcome.FAILED:
        if mode is not Mode.DRY_RUN:
            summary.outcome = executor.notices_only(now)  # telling the firm what is wrong still goes out
        summary.stopped = f"sync failed, so nothing was planned or sent: {summary.sync.error}"
        return summary
    today = ctx.calendar.local_date(now)
    snapshot = load_snapshot(store, tenant.id)  # read once; planning, holds and sending share it
    basis = Basis.of(snapshot, today, ctx.rating)  # the firm's own rating thresholds, as `ccm customer` shows
    summary.discrepancies = len(find_discrepancies(snapshot, allocate(snapshot), basis.rates))
    summary.plan = plan_tenant(store, ctx, today, now, mode, basis)
    summary.skipped.update(s.reason.value for s in summary.plan.evaluation.skipped)
    monthly, problem = statements.plan(store, basis, ctx.calendar, ctx.templates, today, now, mode)  # opt-in
    if monthly or problem:
        summary.notes.append(problem or f"{len(monthly)} monthly statement(s) planned")
    hold_keys: list[str] = []
    summary.holds = plan_holds(store, settings, ctx, now, mode, basis, rules, hold_keys)
    _after_planning(store, summary, chosen, hold_keys, today, now)
    if mode is not Mode.DRY_RUN:
        summary.outcome = executor.run(now, basis=basis)
        summary.stopped = summary.outcome.stopped
        if mode is Mode.APPROVE:
            with store.begin() as conn:
                _drop_holds_done(conn, tenant.id, now)
        with store.read() as conn:  # what sending found (SMTP login refused, actions needing a person) too
            summary.health = health.open_issues(conn, tenant.id)
    return summary


def _after_planning(
    store: Store,
    summary: NightSummary,
    chosen: firmmode.Effective,
    hold_keys: Sequence[str],
    today: date,
    now: datetime,
) -> None:
    """Count the night, let tonight's plan replace what earlier ones left awaiting approval, and say what
    was kept back and what waits for a person."""
    assert summary.plan is not None
    tenant_id, mode = summary.tenant_id, summary.mode
    kept = backlog.summary(summary.plan.kept_back, tenant_id)
    if kept is not None:
        summary.skipped[KEPT_BACK] += len(summary.plan.kept_back)
        summary.notes.append(kept)
    if mode is Mode.DRY_RUN:
        return
    with store.begin() as conn:
        _settle_earlier_plans(
            conn, tenant_id, [a.key for a in summary.plan.actions] + list(hold_keys), mode, now
        )
        count_night(conn, tenant_id, today)
    if mode is Mode.APPROVE:
        summary.notes.append(_waiting_line(summary, chosen))


KEPT_BACK = "kept back: overdue longer than the policy's backlog_days when ccm was connected (`ccm include`)"
_NIGHT_KINDS = ("reminder", "call_task", "hold", "release")  # what a night plans (notes follow a sending)


def for_night(
    store: Store, settings: Settings, tenant_id: str, today: date, asked: Mode | None = None
) -> firmmode.Effective:
    """The mode of the firm's night of local date `today`: `asked` when the caller asked for one."""
    with store.read() as conn:
        found = firmmode.decide(get_standing(conn, tenant_id), settings.serve.safe_nights,
                                firmmode.default_mode(settings), today)  # fmt: skip
    if asked is None or asked is found.mode:
        return found
    return firmmode.Effective(asked, f"{asked.value}, as asked (the firm's: {found.why})")


def for_night_at(
    store: Store, settings: Settings, tenant_id: str, now: datetime, asked: Mode | None = None
) -> firmmode.Effective:
    """`for_night` for the firm's night at the instant `now`."""
    with store.read() as conn:
        tenant = get_tenant(conn, tenant_id)
    today = SendCalendar(tenant.timezone, tenant.country).local_date(now)
    return for_night(store, settings, tenant_id, today, asked)


def _settle_earlier_plans(
    conn: Connection, tenant_id: str, tonight: Sequence[str], mode: Mode, now: datetime
) -> None:
    """What earlier nights left awaiting approval: tonight's plan replaces it.

    An action tonight planned again stays (in auto mode it is approved: the firm no longer asks a person);
    one tonight did not plan (paid since, or the customer's reminder now lists other invoices) is cancelled.
    """
    planned = set(tonight)
    waiting = outbox.actions(conn, tenant_id, [outbox.State.AWAITING_APPROVAL])
    stale = [a.key for a in waiting if a.kind in _NIGHT_KINDS and a.key not in planned]
    for key in stale:
        outbox.cancel(
            conn,
            tenant_id,
            key,
            "not in a later night's plan (paid since, or replaced by a reminder that "
            "lists the customer's invoices as they are now)",
            now,
        )
    if mode is Mode.AUTO:
        outbox.approve(conn, tenant_id, [a.key for a in waiting if a.key in planned], now)
    # A hold or release an earlier night planned that is still waiting (deferred after a failure, or the firm
    # stopped): tonight decided afresh, and what it did not decide again must not reach the ledger (the
    # customer paid since, say). Hold keys carry the night's date, so tonight's own decision has its own key.
    for a in outbox.actions(conn, tenant_id, [outbox.State.PLANNED]):
        if a.kind in ("hold", "release") and a.key not in planned:
            why = f"tonight's credit check no longer asks for this {a.kind}"
            outbox.cancel(conn, tenant_id, a.key, why, now)


def _drop_holds_done(conn: Connection, tenant_id: str, now: datetime) -> None:
    """Holds (releases) awaiting approval for customers an approved one put on (took off) hold tonight."""
    held = {cid for cid, h in credit.holds(conn, tenant_id).items() if h.on_hold}
    for a in outbox.actions(conn, tenant_id, [outbox.State.AWAITING_APPROVAL]):
        if (a.kind == "hold" and a.customer_id in held) or (
            a.kind == "release" and a.customer_id not in held
        ):
            done = "on hold" if a.kind == "hold" else "off hold"
            outbox.cancel(conn, tenant_id, a.key, f"already done: the customer is {done} now", now)


def _waiting_line(summary: NightSummary, chosen: firmmode.Effective) -> str:
    """What an approve-mode night says: nothing went out without a person, and how to approve."""
    with_holds = f", {len(summary.holds)} hold change(s)" if summary.holds else ""
    planned = len(summary.plan.actions) if summary.plan else 0
    what = f"planned {planned} reminder(s) or call task(s){with_holds}, nothing sent or written"
    if chosen.safe_night is not None:
        head = f"safe night {chosen.safe_night} of {chosen.safe_nights}"
    else:
        head = f"approve mode ({chosen.why})"
    return f"{head}: {what} until approved; {firmmode.approve_hint(summary.tenant_id)}"


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
