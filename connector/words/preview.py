"""`ccm preview`: the e-mail a customer would get now, rendered by the very code that sends it.

Guarantees:
- Nothing is sent, stored or recorded: tonight's decisions are evaluated from the store (as the executor
  re-evaluates them before sending) and rendered with `Executor.compose`, the function the send uses, so what
  is shown is what goes out (pay links are fetched from the ledger when it is connected, as the send does).
- `level`: the customer's open invoices all at that level of their policy, in the wording the send would use
  (a customer on credit hold gets the hold wording), for checking a level's e-mail before it is due.
- A customer with nothing due answers with why, in one line; a level the policy does not have is a
  `NothingToShow` naming it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from connector import chasing, mail, outbox
from connector import creditcontrol as credit
from connector.config import Settings
from connector.errors import NeedsPerson
from connector.model import Money, Status
from connector.outbox import Mode
from connector.reconcile import Basis, load_snapshot
from connector.rules.dunning import DueItem, Line, Reminder, action_key
from connector.run.execute import Executor, Outcome
from connector.run.plan import Context, evaluate_tenant
from connector.store import Store
from connector.wiring import NotConnected, ledger_for


class NothingToShow(NeedsPerson, ValueError):
    """No e-mail to show for the customer; the message says why in one line."""


@dataclass(frozen=True, slots=True)
class Shown:
    to: str
    template: str
    level_name: str
    rendered: mail.Rendered


def _at_level(basis: Basis, ctx: Context, store: Store, customer_id: str, number: int) -> Reminder:
    """The customer's open invoices, all at level `number` of the customer's policy."""
    snapshot, today = basis.snapshot, basis.today
    with store.read() as conn:
        state = chasing.states(conn, ctx.tenant.id).get(customer_id, chasing.ChasingState())
        levels = outbox.last_levels(conn, ctx.tenant.id)
        held = credit.holds(conn, ctx.tenant.id).get(customer_id)
    customer = snapshot.customers_by_id[customer_id]
    risk = basis.behaviours[customer_id].risk.value if customer_id in basis.behaviours else None
    policy = ctx.policies.choose(customer.segments, risk, state.policy)
    level = policy.level(number)
    if level is None:
        raise NothingToShow(f"--level {number}: policy {policy.name!r} has levels 1 to {len(policy.levels)}")
    lines = []
    for s in sorted(basis.ledger.invoices.values(), key=lambda s: (s.due, s.invoice.id)):
        inv = s.invoice
        if inv.customer_id != customer_id or s.outstanding <= 0 or inv.status is not Status.OPEN:
            continue
        last, sent_on = levels.get(inv.id, (0, None))
        item = DueItem(inv.id, s.due, Money(s.outstanding, inv.currency), inv.number, last_level=last,
                       last_sent_on=sent_on)  # fmt: skip
        lines.append(Line(item, level, (today - s.due).days))
    if not lines:
        raise NothingToShow(f"{customer.name} has no open invoices")
    template = policy.hold_template if held is not None and held.on_hold else level.template
    key = action_key(ctx.tenant.id, customer_id, lines, policy, level.channel, template)
    return Reminder(key, customer_id, level.channel, policy.name, policy.version, tuple(lines), template)


def at_level(basis: Basis, ctx: Context, store: Store, customer_id: str, number: int) -> Reminder:
    """The customer's open invoices all at level `number` of their policy (what `--level` shows; the
    settings page's template preview drafts from it). NothingToShow when there is none to show."""
    return _at_level(basis, ctx, store, customer_id, number)


def _why_nothing(skipped: list[str], name: str) -> str:
    if skipped:
        return f"nothing is due to {name} today: " + "; ".join(skipped)
    return f"nothing is due to {name} today (use --level N to see a level's e-mail)"


def preview(
    store: Store, settings: Settings, ctx: Context, customer_id: str, today: date, level: int | None = None
) -> Shown:
    """The e-mail the customer would get now (or at `level`): rendered, never sent."""
    basis = Basis.of(load_snapshot(store, ctx.tenant.id), today, ctx.rating)
    evaluation, snapshot = evaluate_tenant(store, ctx, today, basis)
    name = snapshot.customers_by_id[customer_id].name
    if level is not None:
        reminder = _at_level(basis, ctx, store, customer_id, level)
    else:
        mine = [r for r in evaluation.reminders if r.customer_id == customer_id]
        found = next((r for r in mine if r.channel == "email"), None)
        if found is None:
            numbers = {i.id: i.number or i.id for i in snapshot.invoices if i.customer_id == customer_id}
            skipped = [
                f"{numbers.get(s.invoice_id, s.invoice_id)}: {s.reason.value}"
                for s in evaluation.skipped
                if s.customer_id == customer_id
            ]
            others = [f"{r.lines[0].level.name} ({r.channel})" for r in mine]
            raise NothingToShow(
                f"{name} is due {', '.join(others)} today, not an e-mail from ccm"
                if others
                else _why_nothing(skipped, name)
            )
        reminder = found
    if reminder.channel != "email":
        top = reminder.lines[0].level
        raise NothingToShow(
            f"level {top.number} ({top.name}) is a {reminder.channel}, not an e-mail from ccm"
        )
    top = max(reminder.lines, key=lambda line: line.level.number).level
    template = reminder.template or top.template
    try:
        ledger = ledger_for(settings, store, ctx.tenant)
    except NotConnected:
        ledger = None  # no pay links to fetch: the send could not fetch them either
    executor = Executor(store, settings, ctx, ledger, "preview", Mode.DRY_RUN)
    rendered = executor.compose(template, reminder, snapshot, today, Outcome())
    return Shown(snapshot.customers_by_id[customer_id].email or "", template, top.name, rendered)
