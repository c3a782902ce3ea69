"""Credit control's records in the store: limits, the holds the ledger shows, manual and never-hold marks.

Every function runs in the caller's transaction. Limits are ccm's own (set by `ccm limit set`, imported from
CSV by `csvimport`, or defaulted per segment in ccm.toml: `planning.with_segment_defaults`). A hold row says
what the ledger shows: the executor records a hold or release in the transaction that completes writing it
(`record_hold`); lifting a manual hold hands the row back to the rules. Planning reads all of it at once as
a `Standing`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Connection, select, update

from connector import outbox
from connector.model import Money
from connector.store.schema import credit_holds, credit_limits, customer_settings


@dataclass(frozen=True, slots=True)
class Held:
    on_hold: bool
    source: str
    reason: str
    since: datetime
    action_key: str = ""


def set_limit(
    conn: Connection, tenant_id: str, customer_id: str, limit: Money, now: datetime, source: str
) -> None:
    c = credit_limits.c
    values = {"amount": limit.amount, "currency": limit.currency, "source": source, "updated_at": now}
    done = conn.execute(
        update(credit_limits).where(c.tenant_id == tenant_id, c.customer_id == customer_id).values(**values)
    )
    if done.rowcount == 0:
        conn.execute(credit_limits.insert().values(tenant_id=tenant_id, customer_id=customer_id, **values))


def limits(conn: Connection, tenant_id: str) -> dict[str, Money]:
    c = credit_limits.c
    query = select(c.customer_id, c.amount, c.currency).where(c.tenant_id == tenant_id)
    return {cid: Money(Decimal(amount), currency) for cid, amount, currency in conn.execute(query)}


def holds(conn: Connection, tenant_id: str) -> dict[str, Held]:
    h = credit_holds.c
    columns = (h.customer_id, h.on_hold, h.source, h.reason, h.since, h.action_key)
    rows = conn.execute(select(*columns).where(h.tenant_id == tenant_id))
    return {r.customer_id: Held(r.on_hold, r.source, r.reason, r.since, r.action_key) for r in rows}


def record_hold(
    conn: Connection,
    tenant_id: str,
    customer_id: str,
    on: bool,
    source: str,
    reason: str,
    key: str,
    now: datetime,
) -> None:
    """The ledger now shows the hold (or its release): remember it, in the executor's transaction."""
    h = credit_holds.c
    values = {"on_hold": on, "source": source, "reason": reason, "since": now, "action_key": key}
    done = conn.execute(
        update(credit_holds).where(h.tenant_id == tenant_id, h.customer_id == customer_id).values(**values)
    )
    if done.rowcount == 0:
        conn.execute(credit_holds.insert().values(tenant_id=tenant_id, customer_id=customer_id, **values))


def manual_holds(conn: Connection, tenant_id: str) -> dict[str, tuple[str | None, str]]:
    s = customer_settings.c
    query = select(s.customer_id, s.manual_hold, s.manual_hold_reason, s.never_hold).where(
        s.tenant_id == tenant_id
    )
    found: dict[str, tuple[str | None, str]] = {}
    for cid, manual_hold, reason, never in conn.execute(query):
        if manual_hold:
            found[cid] = ("hold", reason or "")
        elif never:
            found[cid] = ("never", "")
    return found


@dataclass(frozen=True, slots=True)
class Standing:
    """What credit control reads from the store besides the snapshot: limits, holds, manual ones, levels."""

    limits: Mapping[str, Money]
    held: Mapping[str, Held]
    manual: Mapping[str, tuple[str | None, str]]
    levels: Mapping[str, int]


def standing(
    conn: Connection, tenant_id: str, last_levels: Mapping[str, tuple[int, date]] | None = None
) -> Standing:
    """Read what `planning.decide_on` needs, in one (read) transaction (`last_levels`: already read by the
    caller)."""
    if last_levels is None:
        last_levels = outbox.last_levels(conn, tenant_id)
    levels = {iid: lv for iid, (lv, _) in last_levels.items()}
    return Standing(limits(conn, tenant_id), holds(conn, tenant_id), manual_holds(conn, tenant_id), levels)
