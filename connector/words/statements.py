"""Monthly statements of account: one e-mail per customer with open items, for firms that opt in.

Guarantees:
- Opt-in per firm (its profile's `statements`); nothing is planned for a firm that has not opted in.
- Exactly once per customer and month: the outbox key is `stmt:<tenant>:<customer>:<YYYY-MM>`, so a night
  planning it again, a second process, or a rerun yields the one row; the executor sends it at most once.
- Planned by the night on the firm's statement day (its profile's `statement_day`, day of month, when it has
  one; else the first business day of the month in the firm's calendar), or a night within the following
  CATCH_UP days when that night was missed; never later, so a statement does not arrive mid-month.
- Lists what was open on the night it was planned (active customers with an e-mail address, not marked
  do-not-chase), rendered from the shipped or the firm's `statement` template with the reminders' context.
"""

from __future__ import annotations

import calendar as months
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal

from connector import chasing, envelope, mail, outbox
from connector.firmprofile import FirmProfile, load_profile
from connector.model import CustomerStatus, Status
from connector.outbox import Mode, NewAction
from connector.payloads import Kind, StatementLine, StatementPayload
from connector.reconcile import Basis
from connector.rules.calendar import SendCalendar
from connector.store import Store
from connector.words import context

KIND = Kind.STATEMENT
TEMPLATE = "statement"
CATCH_UP = timedelta(days=6)


def key(tenant_id: str, customer_id: str, month: date) -> str:
    return f"stmt:{tenant_id}:{customer_id}:{month:%Y-%m}"[:128]


def statement_day(cal: SendCalendar, year: int, month: int, chosen: int | None = None) -> date:
    """The firm's statement day in a month: `chosen` (capped at the month's last day), else the first
    business day."""
    if chosen:
        return date(year, month, min(chosen, months.monthrange(year, month)[1]))
    day = date(year, month, 1)
    while not cal.is_business_day(day):
        day += timedelta(days=1)
    return day


def wanted(profile: FirmProfile) -> bool:
    return bool(getattr(profile, "statements", False))


def due_month(profile: FirmProfile, cal: SendCalendar, today: date) -> date | None:
    """The month (its first day) whose statements tonight plans, or None."""
    if not wanted(profile):
        return None
    day = statement_day(cal, today.year, today.month, getattr(profile, "statement_day", None))
    return today.replace(day=1) if day <= today <= day + CATCH_UP else None


def actions(
    basis: Basis, states: dict[str, chasing.ChasingState], month: date, send_after: datetime
) -> list[NewAction]:
    """One statement per customer with open items, listing them as they stand at `basis.today`."""
    snapshot, today = basis.snapshot, basis.today
    lines: dict[str, list[StatementLine]] = {}
    for state in sorted(basis.ledger.invoices.values(), key=lambda s: (s.due, s.invoice.id)):
        inv = state.invoice
        if state.outstanding <= 0 or inv.status is not Status.OPEN:
            continue
        lines.setdefault(inv.customer_id, []).append({
            "invoice_id": inv.id, "number": inv.number or inv.id, "due_date": state.due.isoformat(),
            "days_overdue": (today - state.due).days, "amount": str(state.outstanding),
            "total": str(inv.total.amount), "currency": inv.currency,
        })  # fmt: skip
    found = []
    for customer in snapshot.customers:
        st = states.get(customer.id, chasing.ChasingState())
        if customer.id not in lines or customer.status is not CustomerStatus.ACTIVE or not customer.email:
            continue
        if st.do_not_chase:
            continue
        found.append(NewAction(
            key=key(snapshot.tenant.id, customer.id, month), kind=KIND, channel="email",
            customer_id=customer.id, send_after=send_after,
            payload=StatementPayload(customer.name, customer.email, month, today, TEMPLATE,
                                     tuple(lines[customer.id])),
        ))  # fmt: skip
    return found


SAMPLE = StatementPayload(
    "Sample Customer", "ap@example.com", date(2026, 1, 1), date(2026, 1, 2), "",
    ({"invoice_id": "I-1", "number": "INV-0001", "due_date": "2026-01-20", "days_overdue": -18,
      "amount": "120.00", "total": "150.00", "currency": "GBP"},),
)  # fmt: skip


def plan(
    store: Store,
    basis: Basis,
    cal: SendCalendar,
    templates: mail.Templates,
    today: date,
    now: datetime,
    mode: Mode,
) -> tuple[list[str], str | None]:
    """Tonight's statements, stored (a dry run stores nothing): the keys newly planned, and why none were
    when the firm's statement template does not render (the reminders go on; the next night tries again)."""
    tenant_id = basis.snapshot.tenant.id
    with store.read() as conn:
        profile = load_profile(conn, tenant_id)
        month = due_month(profile, cal, today)
        if month is None:
            return [], None
        states = chasing.states(conn, tenant_id)
    try:
        render(templates, SAMPLE, "sample", basis.snapshot.tenant.name, "en_GB", profile)
    except mail.TemplateProblem as exc:
        return [], f"monthly statements not planned: {exc}"
    new = actions(basis, states, month, cal.next_send_time(now))
    with store.begin() as conn:
        return list(outbox.plan(conn, tenant_id, new, mode, now).created), None


def view(p: StatementPayload, key: str, firm: str, locale: str, profile: FirmProfile) -> mail.ReminderView:
    """What the statement template sees, from what the night planned (`p`: the action's payload)."""
    lines = tuple(
        context.line_view(
            str(ln["number"]), date.fromisoformat(str(ln["due_date"])), int(ln["days_overdue"]),
            Decimal(str(ln["amount"])), Decimal(str(ln["total"])), str(ln["currency"]), 0,
            "statement", locale,
        )
        for ln in p.lines
    )  # fmt: skip
    amounts = [(line.outstanding or Decimal(0), line.currency) for line in lines]
    numbers = [line.number for line in lines]
    shown = mail.ReminderView(
        firm=firm, customer=p.customer_name, level=0, level_name="statement", lines=lines,
        totals=context.totals(amounts, locale), today=p.as_at, reference=key, contact_email=str(p.email),
        locale=locale, month=p.month,
    )  # fmt: skip
    signoff, pay = envelope.signoff(profile, firm), envelope.pay_details(profile, numbers)
    return replace(shown, signoff=signoff, pay=pay)


def render(
    templates: mail.Templates,
    payload: StatementPayload,
    key: str,
    firm: str,
    locale: str,
    profile: FirmProfile,
) -> mail.Rendered:
    """The statement e-mail (template `statement`, or the one the payload names)."""
    template = payload.template or TEMPLATE
    return mail.render(templates, template, view(payload, key, firm, locale, profile))
