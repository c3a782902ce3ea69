"""A tenant's night, `ccm run`: sync → reconcile → plan → (approve) → execute, under the tenant's run lease.

Bad tenant settings (policy file, templates) stop the tenant before anything is planned or sent; a failed
sync stops it before anything is planned (chasing on stale data could chase someone who has paid).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from adapters.base import Ledger
from connector import credit, lease, outbox
from connector.config import Settings
from connector.outbox import Action, Mode
from connector.reconcile import Basis, allocate, find_discrepancies, load_snapshot
from connector.rules.credit import Decision, load_rules
from connector.run.execute import Executor, Outcome
from connector.run.plan import Context, Plan, plan_tenant
from connector.runtime import ledger_for, mapping_for
from connector.store import Store, synclog
from connector.store.tenants import get_tenant
from connector.sync import PageEvent, SyncResult, run_sync

LEASE_TTL = timedelta(minutes=30)
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

    @property
    def api_calls(self) -> int:
        return (self.sync.api_calls if self.sync else 0) + (self.outcome.api_calls if self.outcome else 0)


def plan_holds(
    store: Store, settings: Settings, ctx: Context, now: datetime, mode: Mode, basis: Basis
) -> list[Decision]:
    """Credit-hold decisions for the tenant, written to the outbox (a dry run writes nothing)."""
    rules = load_rules(settings.tenant_dir(ctx.tenant.id) / CREDIT_FILE)
    snapshot, today = basis.snapshot, basis.today
    with store.begin() as conn:
        decisions, _ = credit.decide(
            conn,
            snapshot,
            today,
            rules,
            settings.credit.include_drafts,
            settings.credit.segment_limits,
            basis,
        )
        held = credit.holds(conn, ctx.tenant.id)
        outbox.plan(
            conn, ctx.tenant.id, credit.hold_actions(decisions, snapshot, today, now, held), mode, now
        )
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
) -> NightSummary:
    """Run one tenant's night. Raises lease.Busy if another process is running this tenant."""
    holder = holder or lease.new_holder()
    summary = NightSummary(tenant_id)
    with lease.held(store, tenant_id, holder, now, LEASE_TTL):
        with store.read() as conn:
            tenant = get_tenant(conn, tenant_id)
        ctx = Context.load(settings, tenant)
        ctx.check_templates()
        if sync or ledger is None:
            ledger = ledger or ledger_for(settings, store, tenant)
        if sync:
            summary.sync = run_sync(
                store, tenant.id, ledger, mapping_for(settings, tenant), on_page=on_page,
                overlap=timedelta(seconds=settings.sync.overlap_seconds),
            )  # fmt: skip
            if summary.sync.outcome == synclog.FAILED:
                summary.stopped = f"sync failed, so nothing was planned or sent: {summary.sync.error}"
                return summary
        today = ctx.calendar.local_date(now)
        snapshot = load_snapshot(store, tenant.id)  # read once; planning, holds and sending share it
        basis = Basis.of(snapshot, today)
        summary.discrepancies = len(find_discrepancies(snapshot, allocate(snapshot), basis.rates))
        summary.plan = plan_tenant(store, ctx, today, now, mode, basis)
        summary.skipped.update(s.reason.value for s in summary.plan.evaluation.skipped)
        summary.holds = plan_holds(store, settings, ctx, now, mode, basis)
        if mode is not Mode.DRY_RUN:
            executor = Executor(store, settings, ctx, ledger, holder, mode, before_effect)
            summary.outcome = executor.run(now, basis=basis)
            summary.stopped = summary.outcome.stopped
    return summary
