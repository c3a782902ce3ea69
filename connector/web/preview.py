"""An action awaiting approval as the bookkeeper must judge it: the reminder e-mail rendered from its payload
with the tenant's own templates (connector/mail.py, as the executor renders it), or what a hold is about.

The payload holds what the night planned: the customer, the level and each invoice's number, due date,
days overdue and outstanding amount. Pay links and a statutory interest line are added when it is sent,
from that day's figures; a payment since planning cancels it then, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from connector import mail
from connector.config import Settings
from connector.model import Tenant
from connector.outbox import Action
from connector.run.plan import TEMPLATES_DIR

NOT_YET = "Pay links and any statutory interest line are added when it is sent, from that day's figures."


@dataclass(frozen=True, slots=True)
class Preview:
    action: Action
    customer: str
    what: str  # "reminder (first reminder) by e-mail", "credit hold", ...
    to: str  # the address, or "" when not an e-mail
    invoices: tuple[str, ...]
    rendered: mail.Rendered | None  # the e-mail, when the action sends one
    detail: str  # for a hold or a call: the rule that fired; for an e-mail that could not render: why


def templates_for(settings: Settings, tenant: Tenant) -> mail.Templates:
    folder = settings.tenant_dir(tenant.id) / TEMPLATES_DIR
    return mail.environment(folder if folder.is_dir() else None)


def _money(amount: str, currency: str) -> str:
    try:
        return f"{Decimal(amount):,.2f} {currency}"
    except InvalidOperation:
        return f"{amount} {currency}"


def reminder_view(tenant: Tenant, action: Action, today: date) -> mail.ReminderView:
    """What the template sees, from the payload the night planned (execute.view's fields, same formats)."""
    p: dict[str, Any] = action.payload
    lines = p.get("lines", [])
    totals: dict[str, Decimal] = {}
    for line in lines:
        try:
            totals[str(line["currency"])] = totals.get(str(line["currency"]), Decimal(0)) + Decimal(
                str(line["amount"])
            )
        except (KeyError, InvalidOperation):
            continue
    return mail.ReminderView(
        firm=tenant.name, customer=str(p.get("customer_name") or action.customer_id),
        level=int(p.get("level", 0)), level_name=str(p.get("level_name", "")),
        lines=tuple(
            mail.LineView(
                str(line.get("number") or line.get("invoice_id")), date.fromisoformat(str(line["due_date"])),
                int(line.get("days_overdue", 0)),
                _money(str(line.get("amount", "")), str(line.get("currency", ""))),
                str(line.get("level_name", "")), None,
            )
            for line in lines
        ),
        totals=tuple(f"{v:,.2f} {k}" for k, v in sorted(totals.items())), today=today, reference=action.key,
        contact_email=p.get("email"), interest_line=None,
    )  # fmt: skip


def preview(
    templates: mail.Templates, tenant: Tenant, action: Action, customer: str, what: str,
    invoices: tuple[str, ...], today: date,
) -> Preview:  # fmt: skip
    p = action.payload
    if action.kind == "reminder" and action.channel == "email":
        template = str(p.get("template") or "")
        try:
            rendered = mail.render(templates, template, reminder_view(tenant, action, today))
        except (mail.TemplateProblem, KeyError, ValueError) as exc:
            return Preview(action, customer, what, str(p.get("email") or ""), invoices, None,
                           f"the e-mail cannot be shown: {exc}")  # fmt: skip
        return Preview(action, customer, what, str(p.get("email") or ""), invoices, rendered, NOT_YET)
    if action.kind == "reminder" and action.channel == "ledger_email":
        return Preview(action, customer, what, "", invoices, None,
                       "the ledger sends its own invoice e-mail for each invoice")  # fmt: skip
    reason = str(p.get("reason") or action.reason or "")
    return Preview(action, customer, what, "", invoices, None, reason)
