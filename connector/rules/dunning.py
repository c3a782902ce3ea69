"""Dunning decisions: which open invoices are due which reminder level today, and why others are not.

A pure function of a snapshot (debtors with their open items and chasing state), the policies, the tenant's
calendar and a date: `evaluate(...) -> Evaluation`. No I/O, no clock. Kill Bill's overdue engine is the
model: an ordered list of levels with plain conditions, evaluated afresh every night, so a payment, a
dispute or a promise simply stops the sequence, and a missed night is caught up once, at the next level in
sequence (never skipping one, never repeating one).

Every invoice that would have been chased but is not carries a `Skip` reason, so the bookkeeper sees why.

The level sets the sequence; the wording of an e-mail also follows the customer's state (`wording`): a
customer on credit hold (or going on hold tonight: the caller passes the hold decisions in as `on_hold`) is
told so, and ccm's first e-mail on a long-overdue debt is firm, never "if payment is already on its way".
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum

from connector.model import Money
from connector.reconcile.snapshot import builder
from connector.rules.calendar import SendCalendar
from connector.rules.policy import Level, Policy, PolicySet

_ZERO = Decimal(0)


class Skip(StrEnum):
    """Why a reminder that was due is not sent. The values are what the bookkeeper reads."""

    LEDGER_BALANCE = "the customer's balance in the ledger differs from ccm's: flagged for the bookkeeper"
    LEDGER_DIFFERS = "the ledger's figures for the invoice differ from ccm's: flagged for the bookkeeper"
    DO_NOT_CHASE = "customer is marked do-not-chase"
    PAUSED = "customer is paused"
    PAYMENT_PLAN = "customer is on a payment plan"
    PROMISE = "customer promised to pay"
    ON_HOLD = "customer is on credit hold and the policy does not chase held customers"
    UNAPPLIED_CASH = "unapplied cash or credit on the account: flagged for the bookkeeper instead"
    CONTACTED_TODAY = "customer was already contacted today"
    DISPUTED = "invoice is disputed"
    UNDER_MINIMUM = "outstanding amount is under the level's minimum"
    TOO_SOON = "too soon after the previous reminder"
    NO_ADDRESS = "no e-mail address for the customer"


@dataclass(frozen=True, slots=True)
class DueItem:
    """One open invoice as dunning sees it (outstanding as reconciled, not the ledger's raw figure)."""

    invoice_id: str
    due_date: date
    outstanding: Money
    number: str | None = None
    disputed: bool = False
    last_level: int = 0  # highest level already sent for this invoice
    last_sent_on: date | None = None
    pay_url: str | None = None
    held_back: str | None = None  # why the ledger's figures for it differ from ccm's (never chased then)
    promised_until: date | None = None  # a promise to pay covers this invoice until then (not chased)


@dataclass(frozen=True, slots=True)
class Debtor:
    """A customer with open items and everything that decides whether, and how, to chase them."""

    customer_id: str
    name: str
    email: str | None = None
    segments: tuple[str, ...] = ()
    risk: str | None = None
    policy: str | None = None  # the customer's own policy; wins over segment and risk
    do_not_chase: bool = False
    paused_until: date | None = None
    promise_until: date | None = None
    on_plan: bool = False
    on_hold: bool = False
    unapplied: Money | None = None
    last_contacted_on: date | None = None
    items: tuple[DueItem, ...] = ()
    balance_differs: str | None = None  # the ledger's balance of the customer and ccm's, when they differ


@dataclass(frozen=True, slots=True)
class Line:
    """One invoice in a reminder, at the level it is due."""

    item: DueItem
    level: Level
    days_overdue: int


_line = builder(Line, "item level days_overdue")  # by position: one for every invoice chased each night


@dataclass(frozen=True, slots=True)
class Reminder:
    """One message (or call task) to one customer, listing every invoice due a reminder on that channel."""

    key: str
    customer_id: str
    channel: str
    policy: str
    policy_version: str
    lines: tuple[Line, ...]
    template: str = ""  # the wording chosen (`wording`); empty: the top level's own template
    worded_for: str = ""  # why that wording, when it is not the level's own

    @property
    def level(self) -> int:
        """The highest level in the message: it sets the tone of the template."""
        return max(line.level.number for line in self.lines)


@dataclass(frozen=True, slots=True)
class Skipped:
    customer_id: str
    invoice_id: str
    level: int
    reason: Skip
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Evaluation:
    reminders: tuple[Reminder, ...]
    skipped: tuple[Skipped, ...]
    flags: tuple[str, ...]  # things for the bookkeeper to look at (unapplied cash on a chased account, ...)


def action_key(
    tenant_id: str, customer_id: str, lines: Iterable[Line], policy: Policy, channel: str, wording: str = ""
) -> str:
    """Deterministic: the same customer, invoices, levels, policy version and wording always give the same
    key (`wording`: only when it is not the level's own, so a reminder re-worded for a hold is a new one)."""
    parts = sorted(f"{line.item.invoice_id}@{line.level.number}" for line in lines)
    text = "|".join([tenant_id, customer_id, channel, policy.name, policy.version, *parts])
    if wording:
        text += f"|worded:{wording}"
    return "dun-" + hashlib.sha256(text.encode()).hexdigest()[:32]


def _customer_skip(debtor: Debtor, policy: Policy, today: date) -> tuple[Skip, str] | None:
    """The first customer-wide reason not to chase today, in order of precedence (its words built only
    when it applies: this runs for every customer with an invoice due a reminder)."""
    found: tuple[Skip, str] | None = None
    if debtor.balance_differs is not None:
        found = Skip.LEDGER_BALANCE, debtor.balance_differs
    elif debtor.do_not_chase:
        found = Skip.DO_NOT_CHASE, ""
    elif debtor.paused_until is not None and today <= debtor.paused_until:
        found = Skip.PAUSED, f"until {debtor.paused_until}"
    elif debtor.on_plan:
        found = Skip.PAYMENT_PLAN, ""
    elif debtor.promise_until is not None and today <= debtor.promise_until:
        found = Skip.PROMISE, f"by {debtor.promise_until}"
    elif debtor.on_hold and not policy.chase_on_hold:
        found = Skip.ON_HOLD, ""
    elif debtor.unapplied is not None and debtor.unapplied.amount > 0:
        found = Skip.UNAPPLIED_CASH, str(debtor.unapplied)
    elif debtor.last_contacted_on == today:
        found = Skip.CONTACTED_TODAY, ""
    return found


def _due_levels(
    items: Iterable[DueItem], policy: Policy, calendar: SendCalendar, today: date
) -> list[tuple[DueItem, Level]]:
    """The items due a level today, each with that level, in the items' order: for each, the next level in
    sequence if its date has come (a missed night still yields just the next one).

    A level before the due date ("due in 3 days") says something untrue once the date has passed, so an
    unsent pre-due level expires at the due date and the sequence goes on from the first level after it.
    One customer's items at a time, the policy read once: this runs for every open invoice each night.
    """
    levels = policy.levels
    count = len(levels)
    business = policy.days == "business"
    found: list[tuple[DueItem, Level]] = []
    for item in items:
        if item.outstanding.amount <= _ZERO:
            continue
        index = item.last_level  # of the next level in sequence, number last_level + 1
        if not 0 <= index < count:
            continue
        level = levels[index]
        due = item.due_date
        if level.offset < 0 and today >= due:  # pre-due levels expired: on to the first one after them
            while index < count and levels[index].offset < 0:
                index += 1
            if index == count:
                continue
            level = levels[index]
        if business:
            scheduled = calendar.add_days(due, level.offset, business=True)
        else:  # calendar.add_days of calendar days, without the call
            scheduled = due + timedelta(days=level.offset)
        if today >= scheduled:
            found.append((item, level))
    return found


def wording(debtor: Debtor, policy: Policy, lines: Iterable[Line]) -> tuple[str, str]:
    """(template, why) for one e-mail: the hold wording for a customer on hold; the old-debt wording when
    the message's top level was meant for debts younger than `old_debt_days` and it is ccm's first e-mail on
    an invoice at least that overdue; else the top level's own template (why: empty)."""
    shown = tuple(lines)
    top = max(shown, key=lambda line: line.level.number).level
    if debtor.on_hold:
        return policy.hold_template, "the customer is on credit hold"
    if top.offset < policy.old_debt_days:
        first = [ln for ln in shown if ln.item.last_level == 0 and ln.days_overdue >= policy.old_debt_days]
        if first:
            oldest = max(first, key=lambda ln: ln.days_overdue)
            number = oldest.item.number or oldest.item.invoice_id
            why = f"first reminder on a debt {oldest.days_overdue} days overdue ({number})"
            return policy.old_debt_template, why
    return top.template, ""


def _item_skip(item: DueItem, level: Level, today: date) -> tuple[Skip, str] | None:
    if item.held_back is not None:
        return Skip.LEDGER_DIFFERS, item.held_back
    if item.disputed:
        return Skip.DISPUTED, ""
    if item.promised_until is not None and today <= item.promised_until:
        return Skip.PROMISE, f"by {item.promised_until}"
    if level.min_amount is not None and item.outstanding.amount < level.min_amount:
        return Skip.UNDER_MINIMUM, f"{item.outstanding} < {level.min_amount}"
    if level.min_days_since_last is not None and item.last_sent_on is not None:
        since = (today - item.last_sent_on).days
        if since < level.min_days_since_last:
            return Skip.TOO_SOON, f"{since} of {level.min_days_since_last} days"
    return None


def _item_order(due: tuple[DueItem, Level]) -> tuple[date, str]:
    return due[0].due_date, due[0].invoice_id


# by position: one per reminder and per invoice skipped, every night
_reminder = builder(Reminder, "key customer_id channel policy policy_version lines template worded_for")
_skipped = builder(Skipped, "customer_id invoice_id level reason detail")


def evaluate(
    tenant_id: str, debtors: Iterable[Debtor], policies: PolicySet, calendar: SendCalendar, today: date
) -> Evaluation:
    """Decide today's reminders. Deterministic; independent of the order of debtors and items."""
    reminders: list[Reminder] = []
    skipped: list[Skipped] = []
    flags: list[str] = []
    chosen: dict[tuple[tuple[str, ...], str | None, str | None], Policy] = {}  # few distinct: once each
    for debtor in sorted(debtors, key=lambda d: d.customer_id):
        asked = (debtor.segments, debtor.risk, debtor.policy)
        policy = chosen.get(asked)
        if policy is None:
            policy = chosen[asked] = policies.choose(*asked)
        due = _due_levels(debtor.items, policy, calendar, today)
        if not due:
            continue
        if len(due) > 1:  # only the items due a level are sorted: the same order, less work
            due.sort(key=_item_order)
        blocked = _customer_skip(debtor, policy, today)
        if blocked is not None and blocked[0] is Skip.UNAPPLIED_CASH:
            flags.append(
                f"{debtor.name}: {blocked[1]} unapplied while {len(due)} invoice(s) are due a reminder; "
                "apply it in the ledger or refund it"
            )
        by_channel: dict[str, list[Line]] = {}
        for item, level in due:
            reason = blocked or _item_skip(item, level, today)
            on = level.channel
            if reason is None and on == "email" and not debtor.email:
                reason = (Skip.NO_ADDRESS, "")
            if reason is not None:
                skipped.append(_skipped(debtor.customer_id, item.invoice_id, level.number, *reason))
                continue
            line = _line(item, level, (today - item.due_date).days)
            found = by_channel.get(on)
            if found is None:
                by_channel[on] = [line]
            else:
                found.append(line)
        for channel, lines in sorted(by_channel.items()) if len(by_channel) > 1 else by_channel.items():
            template, why = wording(debtor, policy, lines) if channel == "email" else ("", "")
            key = action_key(tenant_id, debtor.customer_id, lines, policy, channel, template if why else "")
            reminders.append(_reminder(
                key, debtor.customer_id, channel, policy.name, policy.version, tuple(lines),
                template if why else "", why,
            ))  # fmt: skip
    return Evaluation(tuple(reminders), tuple(skipped), tuple(flags))
