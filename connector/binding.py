"""A firm is bound to its ledger organisation.

Once a tenant has synced from an organisation (a Xero organisation, a QuickBooks company), a consent for a
different one is refused: otherwise anyone who could start a connect flow could re-point a firm at another
organisation, whose customers ccm would then chase from a store mixing both. The operator may move a tenant
on purpose (`ccm connect LEDGER -t T --replace-organisation`); `clear` then empties the tenant's store of the
old organisation's records and cancels what was planned for them, before the new connection is saved, under
the tenant's run lease so no run is half-way through them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Table, select, update

from connector.flow import Choice
from connector.model import Connection as LedgerConnection
from connector.outbox import OPEN_STATES, State
from connector.store.schema import (
    allocations,
    chasing_events,
    credit_holds,
    credit_limits,
    credit_notes,
    customer_settings,
    customers,
    health_issues,
    invoices,
    outbox,
    payments,
    reminder_history,
    sync_cursors,
    sync_requests,
    sync_runs,
)
from connector.store.tenants import get_connection, get_tenant

# What belongs to one organisation: its records, and what ccm and the firm decided about them (by their ids).
_CLEARED: tuple[tuple[str, Table], ...] = (
    ("customers", customers),
    ("invoices", invoices),
    ("credit notes", credit_notes),
    ("payments", payments),
    ("allocations", allocations),
    ("credit limits", credit_limits),
    ("credit holds", credit_holds),
    ("customer settings", customer_settings),
    ("disputes, promises and plans", chasing_events),
    ("reminder history", reminder_history),
    ("sync cursors", sync_cursors),
    ("queued syncs", sync_requests),
)


class OtherOrganisation(ValueError):
    """A consent for an organisation other than the one the tenant is bound to; nothing was stored."""


@dataclass(frozen=True, slots=True)
class Bound:
    tenant_id: str
    firm: str
    ledger: str
    external_id: str


def bound_to(conn: Connection, tenant_id: str) -> Bound | None:
    """The organisation the tenant is bound to: its connection's, once it has synced or holds records."""
    link: LedgerConnection | None = get_connection(conn, tenant_id)
    if link is None or not link.external_id:
        return None
    runs = select(sync_runs.c.run_id).where(sync_runs.c.tenant_id == tenant_id).limit(1)
    synced = conn.execute(runs).first()
    held = any(
        conn.execute(select(t.c.tenant_id).where(t.c.tenant_id == tenant_id).limit(1)).first()
        for t in (customers, invoices, payments, credit_notes)
    )
    if synced is None and not held:
        return None
    return Bound(tenant_id, get_tenant(conn, tenant_id).name, link.ledger, link.external_id)


def check(conn: Connection, tenant_id: str, ledger: str, choice: Choice) -> Bound | None:
    """None when `choice` may be saved as the tenant's organisation; the binding it would break otherwise."""
    bound = bound_to(conn, tenant_id)
    if bound is None or (bound.ledger == ledger and bound.external_id == choice.id):
        return None
    return bound


def refusal(bound: Bound, choice: Choice, how_to_move: str) -> OtherOrganisation:
    """The one-line refusal for a consent to `choice` while the tenant is bound elsewhere."""
    return OtherOrganisation(
        f"tenant {bound.tenant_id!r} ({bound.firm}) holds the records of {bound.ledger} organisation "
        f"{bound.external_id}, and this consent is for {choice.name} ({choice.id}): nothing was stored. "
        f"{how_to_move}"
    )


def clear(conn: Connection, tenant_id: str, reason: str, now: datetime) -> dict[str, int]:
    """Remove the tenant's records of its current organisation and cancel its planned actions.

    What was sent stays in the outbox as history, and the sync log keeps its runs. Returns counts by what
    was removed (only non-zero ones), with "cancelled actions" among them.
    """
    counts: dict[str, int] = {}
    for what, table in _CLEARED:
        counts[what] = int(conn.execute(table.delete().where(table.c.tenant_id == tenant_id)).rowcount)
    o = outbox.c
    cancelled = conn.execute(
        update(outbox)
        .where(o.tenant_id == tenant_id, o.state.in_([str(s) for s in OPEN_STATES]))
        .values(state=str(State.CANCELLED), reason=reason, updated_at=now)
    )
    counts["cancelled actions"] = int(cancelled.rowcount)
    h = health_issues.c
    conn.execute(
        update(health_issues).where(h.tenant_id == tenant_id, h.resolved_at.is_(None)).values(resolved_at=now)
    )
    return {k: v for k, v in counts.items() if v}


def said(counts: dict[str, int]) -> str:
    """'removed 12 customers, 80 invoices; cancelled 3 actions' (or 'nothing to remove')."""
    removed = [f"{n} {what}" for what, n in counts.items() if what != "cancelled actions"]
    parts = [f"removed {', '.join(removed)}"] if removed else []
    if counts.get("cancelled actions"):
        parts.append(f"cancelled {counts['cancelled actions']} planned actions")
    return "; ".join(parts) or "nothing to remove"
