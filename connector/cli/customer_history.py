"""What ccm did and recorded for one customer, by invoice number, for `ccm customer` in every format.

Reminders sent (from the reminder history: the day each invoice got each level), holds placed and released
(the hold and release actions of the outbox, with their state and reason) and the chasing history (disputes,
promises, plans, notes), each invoice named by its number (its id only when the ledger gave it none).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, select

from connector import chasing
from connector.payloads import HoldPayload, Kind
from connector.store.schema import invoices, outbox, reminder_history

REMINDER_COLUMNS = ("sent on", "invoice", "level")
HOLD_COLUMNS = ("when", "action", "state", "reason")
HISTORY_COLUMNS = ("opened", "kind", "invoice", "until", "amount", "note", "closed", "outcome")


@dataclass(frozen=True, slots=True)
class History:
    reminders: list[tuple[date, str, int]]
    holds: list[tuple[datetime, str, str, str]]
    events: list[chasing.Event]

    def as_json(self) -> dict[str, list[dict[str, object]]]:
        """The three lists as `ccm customer --format json` holds them (schemas/customer.json)."""
        return {
            "reminders": [dict(zip(REMINDER_COLUMNS, r, strict=True)) for r in self.reminders],
            "holds": [dict(zip(HOLD_COLUMNS, h, strict=True)) for h in self.holds],
            "history": [dict(zip(HISTORY_COLUMNS, row, strict=True)) for row in self.event_rows()],
        }

    def event_rows(self) -> list[tuple[object, ...]]:
        return [
            (e.opened_at, e.kind, e.invoice_number or e.invoice_id, e.until,
             str(e.amount) if e.amount is not None else None, e.note, e.closed_at, e.outcome)
            for e in self.events
        ]  # fmt: skip


def load(conn: Connection, tenant_id: str, customer_id: str) -> History:
    """The customer's reminders and hold changes (oldest first) and chasing events (newest first)."""
    h, i = reminder_history.c, invoices.c
    query = (
        select(h.sent_on, h.invoice_id, h.level, i.number)
        .select_from(
            reminder_history.outerjoin(invoices, (i.tenant_id == h.tenant_id) & (i.id == h.invoice_id))
        )
        .where(h.tenant_id == tenant_id, h.customer_id == customer_id)
        .order_by(h.sent_on, i.number, h.level)
    )
    reminders = [(r.sent_on, r.number or r.invoice_id, r.level) for r in conn.execute(query)]
    o = outbox.c
    query = (
        select(o.kind, o.state, o.payload, o.reason, o.updated_at)
        .where(o.tenant_id == tenant_id, o.customer_id == customer_id, o.kind.in_(("hold", "release")))
        .order_by(o.updated_at, o.key)
    )
    holds = [
        (r.updated_at, "placed" if r.kind == Kind.HOLD else "released", r.state,
         HoldPayload.from_json(r.payload or {}).reason or r.reason or "")
        for r in conn.execute(query)
    ]  # fmt: skip
    return History(reminders, holds, chasing.events(conn, tenant_id, customer_id))
