"""Planning a tenant's reminders: store → reconcile → debtors → dunning evaluation → outbox actions.

The evaluation is pure (connector/rules/dunning.py); this module gathers its inputs from the store (the
reconciled outstanding amounts, payment behaviour, chasing state, reminder history) and turns its decisions
into outbox actions with deterministic keys, sent at the tenant's next send-window opening.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from connector import backlog, chasing, creditcontrol, mail, outbox
from connector.config import CreditSettings, Settings
from connector.model import CustomerStatus, Money, Status, Tenant
from connector.outbox import Mode, NewAction
from connector.payloads import CallTaskPayload, Kind, ReminderPayload
from connector.reconcile import Basis, Snapshot, load_snapshot
from connector.reconcile.rating import DEFAULT_MODEL, RatingModel
from connector.reconcile.snapshot import builder, without_gc
from connector.reference_rates.stored import RATES_FILE
from connector.rules import interest
from connector.rules.calendar import SendCalendar
from connector.rules.credit import Rule, load_rating, load_rules
from connector.rules.dunning import Debtor, DueItem, Evaluation, Reminder, Skip, evaluate
from connector.rules.policy import PolicySet, load_policies
from connector.store import Store

POLICY_FILE = "policy.yaml"
TEMPLATES_DIR = "templates"
CREDIT_FILE = "credit.yaml"


@dataclass(frozen=True)
class Context:
    """Everything about a tenant that planning and execution read besides the records."""

    tenant: Tenant
    policies: PolicySet
    calendar: SendCalendar
    templates: mail.Templates  # sandboxed: a firm writes its own templates
    # The credit-hold rules: reminders are worded for (or skip) customers going on hold tonight. None: only
    # holds already in the ledger are known.
    credit_rules: tuple[Rule, ...] | None = None
    credit: CreditSettings | None = None
    rating: RatingModel = DEFAULT_MODEL  # the payment-rating thresholds of the firm's credit.yaml

    @classmethod
    def load(cls, settings: Settings, tenant: Tenant) -> Context:
        mail.check_smtp(settings.smtp)  # unsafe mail settings stop the run before anything is done
        folder = settings.tenant_dir(tenant.id)
        policies = load_policies(folder / POLICY_FILE)
        interest.load_rates(folder / RATES_FILE)  # a bad reference_rates.yaml stops the run before the sync
        templates_dir = folder / TEMPLATES_DIR
        return cls(
            tenant, policies, SendCalendar(tenant.timezone, tenant.country),
            mail.environment(templates_dir if templates_dir.is_dir() else None),
            load_rules(folder / CREDIT_FILE), settings.credit, load_rating(folder / CREDIT_FILE),
        )  # fmt: skip

    def check_templates(self) -> None:
        """Render every template the policies use: a broken one stops the run before anything is sent."""
        mail.check_templates(
            self.templates,
            [
                level.template
                for p in self.policies.policies
                for level in p.levels
                if level.channel != "ledger_email"
            ]
            + [  # the wordings an e-mail may take instead of its level's own (connector/rules/dunning.py)
                t
                for p in self.policies.policies
                if any(level.channel == "email" for level in p.levels)
                for t in (p.hold_template, p.old_debt_template)
            ],
        )


@dataclass(frozen=True)
class Plan:
    evaluation: Evaluation
    actions: tuple[NewAction, ...]
    created: tuple[str, ...]
    existing: tuple[str, ...]
    kept_back: tuple[backlog.Kept, ...] = ()  # old debts found at connection, waiting for a person


_NO_STATE = chasing.ChasingState()  # a customer without chasing state of its own (read only)
_NOT_SENT: tuple[int, date | None] = (0, None)
_ZERO = Decimal(0)
# by position: built for every open invoice each night
_due_item = builder(
    DueItem,
    "invoice_id due_date outstanding number disputed last_level last_sent_on pay_url held_back"
    " promised_until",
)
_money = builder(Money, "amount currency")  # unchecked: a computed amount in a checked Money's currency
_debtor = builder(  # one per customer chased
    Debtor,
    "customer_id name email segments risk policy do_not_chase paused_until promise_until on_plan on_hold"
    " unapplied last_contacted_on items balance_differs",
)


def debtors(
    basis: Basis,
    states: Mapping[str, chasing.ChasingState],
    last_levels: Mapping[str, tuple[int, date]],
    last_contacts: Mapping[str, date],
    on_hold: frozenset[str] = frozenset(),
) -> list[Debtor]:
    """Each customer with open, outstanding invoices, as dunning sees them."""
    snapshot = basis.snapshot
    risk = {cid: b.risk.value for cid, b in basis.behaviours.items()}
    items: dict[str, list[DueItem]] = {}
    held_back = basis.agreement.invoices  # the ledger's figures differ: listed, so the skip says why
    # per invoice: looked up 100,000s of times a night
    state_of, level_of, back_of, is_open = states.get, last_levels.get, held_back.get, Status.OPEN
    for state in (*basis.ledger.invoices.values(), *(h.state for h in held_back.values())):
        outstanding = state.outstanding
        if outstanding <= _ZERO:
            continue
        inv = state.invoice
        iid = inv.id
        back = back_of(iid)
        if back is None and inv.status is not is_open:
            continue
        cid = inv.customer_id
        customer_state = state_of(cid, _NO_STATE)
        level, sent_on = level_of(iid, _NOT_SENT)
        total = inv.total  # what is owed: the invoice's own total (shared) when nothing was applied
        owed = total if outstanding is total.amount else _money(outstanding, total.currency)
        item = _due_item(
            iid, inv.due_date or inv.issue_date, owed, inv.number, iid in customer_state.disputed, level,
            sent_on, None, None if back is None else back.reason, customer_state.promised.get(iid),
        )  # fmt: skip
        found = items.get(cid)
        if found is None:
            items[cid] = [item]
        else:
            found.append(item)
    base = snapshot.tenant.base_currency
    inactive, balances, positions = basis.agreement.inactive, basis.agreement.balances, basis.positions
    chased: list[Debtor] = []
    for customer in snapshot.customers:
        cid = customer.id
        if cid not in items or customer.status is not CustomerStatus.ACTIVE:
            continue
        if cid in inactive:  # merged away: the ledger no longer chases it either
            continue
        st = state_of(cid, _NO_STATE)
        position = positions.get(cid)
        unapplied = position.base.unapplied if position is not None else _ZERO
        check = balances.get(cid)
        chased.append(_debtor(
            cid, customer.name, customer.email, customer.segments, risk.get(cid), st.policy, st.do_not_chase,
            st.paused_until, st.promise_until, st.on_plan, cid in on_hold,
            Money(unapplied, base) if unapplied > 0 else None, last_contacts.get(cid), tuple(items[cid]),
            check.explanation if check is not None else None,
        ))  # fmt: skip
    return chased


def evaluate_tenant(
    store: Store, ctx: Context, today: date, basis: Basis | None = None
) -> tuple[Evaluation, Snapshot]:
    """Today's dunning decisions from what the store holds now (or from `basis`, read moments ago)."""
    evaluation, snapshot, _ = evaluate_with_backlog(store, ctx, today, basis)
    return evaluation, snapshot


@without_gc
def evaluate_with_backlog(
    store: Store, ctx: Context, today: date, basis: Basis | None = None
) -> tuple[Evaluation, Snapshot, list[backlog.Kept]]:
    """`evaluate_tenant`, with the invoices the backlog cutoff kept out of it (connector/backlog.py)."""
    own = basis is None or basis.today != today
    if basis is None or own:
        basis = Basis.of(load_snapshot(store, ctx.tenant.id), today, ctx.rating)
    snapshot = basis.snapshot
    with store.read() as conn:
        states = chasing.states(conn, ctx.tenant.id)
        levels = outbox.last_levels(conn, ctx.tenant.id)
        contacts = outbox.last_contacts(conn, ctx.tenant.id)
        standing = creditcontrol.standing(conn, ctx.tenant.id, levels)
        cutoff = backlog.read(conn, ctx.tenant)
    held, unapplied = holds_tonight(basis, standing, ctx)
    if own:  # a basis made here serves no one after: keep nothing computed from it for later
        basis.memo.clear()
    chased = debtors(basis, states, levels, contacts, held)
    found, kept = backlog.withhold(chased, cutoff, ctx.policies, today)
    evaluation = evaluate(ctx.tenant.id, found, ctx.policies, ctx.calendar, today)
    return with_credit_flags(evaluation, unapplied), snapshot, kept


def holds_tonight(
    basis: Basis, standing: creditcontrol.Standing, ctx: Context
) -> tuple[frozenset[str], list[tuple[str, str]]]:
    """Who is on hold once tonight's hold decisions are carried out (the same pure decisions the night's
    `plan_holds` writes), and the unapplied-money flags credit control raises. Pure over what was read."""
    if ctx.credit_rules is None:
        return frozenset(cid for cid, h in standing.held.items() if h.on_hold), []
    settings = ctx.credit or CreditSettings()
    decisions, accounts = creditcontrol.decide_on(
        basis, standing, ctx.credit_rules, settings.include_drafts, settings.segment_limits
    )
    return creditcontrol.held_after(standing.held, decisions), creditcontrol.unapplied_flags(accounts)


def with_credit_flags(evaluation: Evaluation, flags: Sequence[tuple[str, str]]) -> Evaluation:
    """Credit control's unapplied-money flags beside dunning's, one per customer (dunning's wins)."""
    flagged = {s.customer_id for s in evaluation.skipped if s.reason is Skip.UNAPPLIED_CASH}
    extra = tuple(text for cid, text in flags if cid not in flagged)
    return replace(evaluation, flags=evaluation.flags + extra) if extra else evaluation


_REMINDER_FIELDS = "customer_name email policy policy_version level level_name template worded_for lines"
_reminder_payload = builder(ReminderPayload, _REMINDER_FIELDS)  # one per reminder planned, every night
_call_task_payload = builder(CallTaskPayload, _REMINDER_FIELDS + " phone")


def _payload(reminder: Reminder, snapshot: Snapshot, ctx: Context) -> ReminderPayload:
    customer = snapshot.customers_by_id[reminder.customer_id]
    top = max(reminder.lines, key=lambda line: line.level.number).level
    lines = tuple([
        {"invoice_id": line.item.invoice_id, "number": line.item.number or line.item.invoice_id,
         "due_date": line.item.due_date.isoformat(), "level": line.level.number,
         "level_name": line.level.name, "amount": str(line.item.outstanding.amount),
         "currency": line.item.outstanding.currency, "days_overdue": line.days_overdue}
        for line in reminder.lines
    ])  # fmt: skip
    fields = (customer.name, customer.email, reminder.policy, reminder.policy_version, top.number, top.name,
              reminder.template or top.template, reminder.worded_for, lines)  # fmt: skip
    # a call task keeps the number it was planned with (the night's report says it); `ccm calls` reads the
    # customer's number as of the last sync
    if reminder.channel == "call_task":
        return _call_task_payload(*fields, customer.phone)
    return _reminder_payload(*fields)


def actions_for(evaluation: Evaluation, snapshot: Snapshot, ctx: Context, now: datetime) -> list[NewAction]:
    send_after = ctx.calendar.next_send_time(now)
    return [
        NewAction(
            key=r.key,
            kind=Kind.CALL_TASK if r.channel == "call_task" else Kind.REMINDER,
            channel=r.channel,
            customer_id=r.customer_id,
            payload=_payload(r, snapshot, ctx),
            send_after=send_after,
            replay_safe=r.channel in ("ledger_email", "call_task"),
        )
        for r in evaluation.reminders
    ]


@without_gc
def plan_tenant(
    store: Store, ctx: Context, today: date, now: datetime, mode: Mode, basis: Basis | None = None
) -> Plan:
    """Evaluate and write today's actions to the outbox (a dry run writes nothing)."""
    ctx.check_templates()
    evaluation, snapshot, kept = evaluate_with_backlog(store, ctx, today, basis)
    new = actions_for(evaluation, snapshot, ctx, now)
    with store.begin() as conn:
        result = outbox.plan(conn, ctx.tenant.id, new, mode, now)
    return Plan(evaluation, tuple(new), tuple(result.created), tuple(result.existing), tuple(kept))


def why_not(evaluation: Evaluation, snapshot: Snapshot, lines: Sequence[Mapping[str, Any]]) -> str:
    """Why a planned reminder no longer stands as planned, in the bookkeeper's words."""
    due_now = {(line.item.invoice_id, line.level.number) for r in evaluation.reminders for line in r.lines}
    skips = {s.invoice_id: s for s in evaluation.skipped}
    by_id = snapshot.invoices_by_id
    reasons = []
    for line in lines:
        iid, level = str(line["invoice_id"]), int(line["level"])
        if (iid, level) in due_now:
            continue
        number = line.get("number") or iid
        if iid in skips:
            reasons.append(f"{number}: {skips[iid].reason.value}")
        elif iid in by_id and by_id[iid].status is Status.OPEN:
            reasons.append(f"{number}: no longer due this reminder (paid or credited in part)")
        else:
            reasons.append(f"{number}: paid, credited or voided since planning")
    if reasons:
        return "; ".join(reasons)
    planned = {str(line["invoice_id"]) for line in lines}
    for r in evaluation.reminders:
        if {line.item.invoice_id for line in r.lines} == planned:  # the same invoices, worded anew
            why = r.worded_for or "the level's own wording, the reason for the other no longer applying"
            return f"re-planned with new wording: {why}"
    return "re-planned: the customer's reminder now covers other invoices too"
