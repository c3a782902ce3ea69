"""A person settles an action whose outcome was unknown: the one code path of `ccm outbox resolve` and the
bookkeeper's pages.

`went_out` records it exactly as a sent one: the reminder history (the customer's sequence goes on from it,
on the tenant's local day it went out) and, for a reminder that contacted the customer, the ledger notes it
leaves, planned to be written at the next send. Otherwise it is planned again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection

from connector import outbox
from connector.model import Tenant
from connector.outbox import Action, Mode
from connector.payloads import Kind, lines_of
from connector.rules.calendar import SendCalendar
from connector.run.execute import CONTACTING, sent_notes


@dataclass(frozen=True, slots=True)
class Resolved:
    action: Action  # as it was before
    day: date | None  # the local day it went out (went_out only)
    notes: int  # ledger notes planned


def resolve(conn: Connection, tenant: Tenant, key: str, went_out: bool, now: datetime) -> Resolved | None:
    """Settle the unknown action `key` in the caller's transaction; None: no unknown action with that key."""
    action = outbox.get(conn, tenant.id, key)
    calendar = SendCalendar(tenant.timezone, tenant.country)
    day = calendar.local_date(action.claimed_at or now) if action else None  # the day it went out
    resolved = outbox.resolve(conn, tenant.id, key, went_out=went_out, now=now, sent_on=day)
    if resolved is None:
        return None
    notes = 0
    if went_out and day is not None and resolved.kind == Kind.REMINDER and resolved.channel in CONTACTING:
        lines = [(str(line["invoice_id"]), int(line["level"]), str(line.get("level_name", "")))
                 for line in lines_of(resolved.payload)]  # fmt: skip
        went = resolved.claimed_at or now  # the notes are due from when it went out, as a sent one's are
        notes = len(
            outbox.plan(conn, tenant.id, sent_notes(resolved, lines, day, went), Mode.AUTO, now).created
        )
    return Resolved(resolved, day if went_out else None, notes)
