"""The rendering context of a customer's message: what each invoice is, at its own level, and what we wrote
to the customer about it before; amounts and dates in the firm's locale.

Guarantees:
- One builder for the message that is sent and for `ccm preview` / the approval page's preview, so a preview
  shows what goes out.
- Each line carries its own level and the day we last wrote to the customer about its invoice (e-mail or the
  ledger's invoice e-mail; a call task is not writing): `written_about` lists only those invoices, and
  `first_time` the others, so no template says "we wrote to you about" an invoice never written about.
- An amount says what is outstanding; the invoice total rides beside it only when the two differ.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from decimal import Decimal

from sqlalchemy import Connection, and_, func, or_, select

from connector import mail
from connector.firmprofile import load_profile
from connector.model import Tenant
from connector.reconcile import Snapshot
from connector.rules.dunning import Line, Reminder
from connector.store.schema import outbox, reminder_history
from connector.words import locale as words

WRITING = ("email", "ledger_email")  # channels that write to the customer (a call task does not)
_CHUNK = 5_000  # invoice ids per history query (SQLite binds at most 32,766 parameters)


def tenant_locale(conn: Connection, tenant: Tenant) -> str:
    """The firm's locale: its profile's, else its country's (LocaleProblem for an unknown one)."""
    chosen = getattr(load_profile(conn, tenant.id), "locale", None)
    return words.firm_locale(tenant.country, chosen, f"tenant {tenant.id}: locale")


def reading_locale(conn: Connection, tenant: Tenant) -> str:
    """The locale people read the firm's figures and decisions in: `tenant_locale`, or its country's when the
    one chosen is unknown (its sends fail with that reason; its pages and decisions are still written)."""
    try:
        return tenant_locale(conn, tenant)
    except words.LocaleProblem:
        return words.firm_locale(tenant.country)


def written(conn: Connection, tenant_id: str, invoice_ids: Iterable[str]) -> dict[str, date]:
    """Per invoice: the last day a message written to the customer about it went out (a history row whose
    action is no longer in the outbox counts as written: only a call task is not writing)."""
    wanted = sorted(set(invoice_ids))
    h, o = reminder_history.c, outbox.c
    found: dict[str, date] = {}
    for start in range(0, len(wanted), _CHUNK):  # a run's invoices at once, in chunks the database binds
        query = (
            select(h.invoice_id, func.max(h.sent_on))
            .select_from(
                reminder_history.outerjoin(outbox, and_(o.tenant_id == h.tenant_id, o.key == h.action_key))
            )
            .where(
                h.tenant_id == tenant_id,
                h.invoice_id.in_(wanted[start : start + _CHUNK]),
                or_(o.channel.is_(None), o.channel.in_(WRITING)),
            )
            .group_by(h.invoice_id)
        )
        found.update((str(iid), day) for iid, day in conn.execute(query))
    return found


def totals(amounts: Iterable[tuple[Decimal, str]], locale: str) -> tuple[str, ...]:
    """What is outstanding in all, one amount per currency, in the locale."""
    summed: dict[str, Decimal] = {}
    for amount, currency in amounts:
        summed[currency] = summed.get(currency, Decimal(0)) + amount
    return tuple(words.money(v, k, locale) for k, v in sorted(summed.items()))


def line_view(
    number: str,
    due: date,
    days_overdue: int,
    outstanding: Decimal,
    total: Decimal | None,
    currency: str,
    level: int,
    level_name: str,
    locale: str,
    pay_url: str | None = None,
    written_on: date | None = None,
) -> mail.LineView:
    """One invoice as a template sees it (the total only when it differs from what is outstanding)."""
    shown_total = words.money(total, currency, locale) if total is not None and total != outstanding else None
    return mail.LineView(
        number, due, days_overdue, words.money(outstanding, currency, locale), level_name, pay_url,
        level=level, written_on=written_on, total=shown_total, outstanding=outstanding, currency=currency,
    )  # fmt: skip


def _line(line: Line, snapshot: Snapshot, locale: str, pay_url: str | None, on: date | None) -> mail.LineView:
    item = line.item
    invoice = snapshot.invoices_by_id.get(item.invoice_id)
    total = invoice.total.amount if invoice is not None else None
    return line_view(
        item.number or item.invoice_id, item.due_date, line.days_overdue, item.outstanding.amount, total,
        item.outstanding.currency, line.level.number, line.level.name, locale, pay_url, on,
    )  # fmt: skip


def split(lines: Sequence[mail.LineView]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(numbers we wrote about before, numbers mentioned for the first time)."""
    return (
        tuple(line.number for line in lines if line.written_on is not None),
        tuple(line.number for line in lines if line.written_on is None),
    )


def reminder_view(
    reminder: Reminder,
    snapshot: Snapshot,
    firm: str,
    today: date,
    locale: str,
    pay_urls: Mapping[str, str],
    wrote: Mapping[str, date],
    interest_line: str | None = None,
) -> mail.ReminderView:
    """What the template sees, from today's figures: each invoice at its own level, the tone the top one's."""
    customer = snapshot.customers_by_id[reminder.customer_id]
    lines = tuple(
        _line(line, snapshot, locale, pay_urls.get(line.item.invoice_id), wrote.get(line.item.invoice_id))
        for line in reminder.lines
    )
    top = max(reminder.lines, key=lambda line: line.level.number).level
    before, first = split(lines)
    return mail.ReminderView(
        firm=firm, customer=customer.name, level=top.number, level_name=top.name, lines=lines,
        totals=totals(((ln.item.outstanding.amount, ln.item.outstanding.currency) for ln in reminder.lines),
                      locale),
        today=today, reference=reminder.key, contact_email=customer.email, interest_line=interest_line,
        locale=locale, written_about=before, first_time=first, contact_phone=customer.phone,
    )  # fmt: skip
