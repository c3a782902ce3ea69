"""The outbox: planned side effects with deterministic keys, executed at most once, never lost silently.

States:
```
awaiting_approval ──approve──▶ planned ──claim──▶ sending ──complete──▶ sent
        │                         │                  │ └──fail──▶ failed (the effect surely did not happen)
        └────────cancel───────────┴──▶ cancelled     └──recover──▶ unknown (the process died mid-send)
```
Planning inserts with the action's key, so planning the same action twice yields one row. `claim` is a
compare-and-set (planned → sending) committed BEFORE the effect; `complete` commits after it. A process that
dies in between leaves the row in `sending`; `recover` later turns it into `unknown`, shown to the bookkeeper
and never retried blindly, unless the action is replay-safe (a ledger write carrying an idempotency key the
ledger honours), which goes back to `planned`. A bookkeeper settles an unknown one with `resolve`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from connector.store import bulk
from connector.store.schema import outbox, reminder_history


class State(StrEnum):
    AWAITING_APPROVAL = "awaiting_approval"
    PLANNED = "planned"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


class Mode(StrEnum):
    AUTO = "auto"
    APPROVE = "approve"
    DRY_RUN = "dry-run"


OPEN_STATES = (State.AWAITING_APPROVAL, State.PLANNED)
_CHUNK = 500
_PLAN_COLUMNS = ("tenant_id", "key", "kind", "channel", "customer_id", "payload", "state", "replay_safe",
                 "planned_at", "send_after", "attempts", "updated_at")  # fmt: skip
_RETRIED = "retried: the previous attempt stopped mid-way; the ledger deduplicates by key"


@dataclass(frozen=True, slots=True)
class NewAction:
    key: str
    kind: str  # reminder | note | hold | release | call_task
    channel: str
    customer_id: str
    payload: dict[str, Any]
    send_after: datetime
    replay_safe: bool = False


@dataclass(frozen=True, slots=True)
class Action:
    tenant_id: str
    key: str
    kind: str
    channel: str
    customer_id: str
    payload: dict[str, Any]
    state: State
    replay_safe: bool
    planned_at: datetime
    send_after: datetime
    attempts: int
    result: str | None
    reason: str | None
    updated_at: datetime


@dataclass(frozen=True)
class PlanResult:
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)


def plan(
    conn: Connection, tenant_id: str, actions: Sequence[NewAction], mode: Mode, now: datetime
) -> PlanResult:
    """Store new actions (a dry run stores nothing); an action whose key exists is left as it is."""
    result = PlanResult()
    if mode is Mode.DRY_RUN or not actions:
        return result
    state = State.AWAITING_APPROVAL if mode is Mode.APPROVE else State.PLANNED
    keys = [a.key for a in actions]
    known: set[str] = set()
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        query = select(outbox.c.key).where(outbox.c.tenant_id == tenant_id, outbox.c.key.in_(chunk))
        known.update(conn.execute(query).scalars())
    rows = [
        {"tenant_id": tenant_id, "key": a.key, "kind": a.kind, "channel": a.channel,
         "customer_id": a.customer_id, "payload": a.payload, "state": str(state),
         "replay_safe": a.replay_safe, "planned_at": now, "send_after": a.send_after, "attempts": 0,
         "updated_at": now}
        for a in actions if a.key not in known
    ]  # fmt: skip
    if rows:
        dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
        insert = dialect.insert(outbox).on_conflict_do_nothing(index_elements=["tenant_id", "key"])
        bulk.executemany(conn, "insert:outbox", lambda: insert, outbox, rows, _PLAN_COLUMNS)
    result.created.extend(str(r["key"]) for r in rows)
    result.existing.extend(k for k in keys if k in known)
    return result


def _set(
    conn: Connection, tenant_id: str, key: str, from_states: Iterable[State], now: datetime, **values: Any
) -> bool:
    done = conn.execute(
        update(outbox)
        .where(outbox.c.tenant_id == tenant_id, outbox.c.key == key,
               outbox.c.state.in_([str(s) for s in from_states]))
        .values(updated_at=now, **values)
    )  # fmt: skip
    return done.rowcount == 1


def approve(conn: Connection, tenant_id: str, keys: Sequence[str] | None, now: datetime) -> int:
    """Approve the given actions (all awaiting ones when `keys` is None); returns how many."""
    query = (
        update(outbox)
        .where(outbox.c.tenant_id == tenant_id, outbox.c.state == str(State.AWAITING_APPROVAL))
        .values(state=str(State.PLANNED), updated_at=now)
    )
    if keys is not None:
        query = query.where(outbox.c.key.in_(list(keys)))
    return conn.execute(query).rowcount


def claim(conn: Connection, tenant_id: str, key: str, owner: str, now: datetime) -> bool:
    """Take a planned action for execution. Commit before performing the effect."""
    return _set(conn, tenant_id, key, [State.PLANNED], now, state=str(State.SENDING), claimed_by=owner,
                claimed_at=now, attempts=outbox.c.attempts + 1)  # fmt: skip


def complete(
    conn: Connection,
    tenant_id: str,
    key: str,
    result: str,
    now: datetime,
    history: Sequence[tuple[str, int]] = (),
    sent_on: date | None = None,
) -> bool:
    """Mark a claimed action sent; `history` (invoice id, level) rows are written in the same transaction.

    `sent_on` is the tenant's local day of sending (default: the UTC day of `now`).
    """
    done = _set(conn, tenant_id, key, [State.SENDING], now, state=str(State.SENT), result=result)
    if done and history:
        row = conn.execute(
            select(outbox.c.customer_id).where(outbox.c.tenant_id == tenant_id, outbox.c.key == key)
        )
        customer_id = row.scalar_one()
        day = sent_on or now.date()
        h = reminder_history.c
        wanted = sorted({invoice_id for invoice_id, _ in history})
        query = select(h.invoice_id, h.level).where(h.tenant_id == tenant_id, h.invoice_id.in_(wanted))
        have = {(r.invoice_id, r.level) for r in conn.execute(query)}
        rows = [
            {"tenant_id": tenant_id, "invoice_id": invoice_id, "level": level, "customer_id": customer_id,
             "sent_on": day, "action_key": key}
            for invoice_id, level in dict.fromkeys(history) if (invoice_id, level) not in have
        ]  # fmt: skip
        if rows:
            conn.execute(reminder_history.insert(), rows)
    return done


def fail(conn: Connection, tenant_id: str, key: str, reason: str, now: datetime) -> bool:
    """The effect surely did not happen (refused before sending): record why."""
    return _set(conn, tenant_id, key, [State.SENDING], now, state=str(State.FAILED), reason=reason)


def mark_unknown(conn: Connection, tenant_id: str, key: str, reason: str, now: datetime) -> bool:
    """The effect may or may not have happened (the connection dropped mid-send): show it, never retry it."""
    return _set(conn, tenant_id, key, [State.SENDING], now, state=str(State.UNKNOWN), reason=reason)


def defer(conn: Connection, tenant_id: str, key: str, until: datetime, reason: str, now: datetime) -> bool:
    """Move a planned action's send time (outside the send window, customer already contacted today)."""
    return _set(conn, tenant_id, key, OPEN_STATES, now, send_after=until, reason=reason)


def release(conn: Connection, tenant_id: str, key: str, reason: str, now: datetime) -> bool:
    """Give a claimed action back (a transient failure before anything was sent): it is tried again later."""
    return _set(conn, tenant_id, key, [State.SENDING], now, state=str(State.PLANNED), reason=reason,
                claimed_by=None, claimed_at=None)  # fmt: skip


def cancel(conn: Connection, tenant_id: str, key: str, reason: str, now: datetime) -> bool:
    """Drop an action that was not started (the customer paid, disputed, ...), with the reason."""
    return _set(conn, tenant_id, key, OPEN_STATES, now, state=str(State.CANCELLED), reason=reason)


def recover(
    conn: Connection, tenant_id: str, now: datetime, older_than: timedelta = timedelta(0)
) -> list[str]:
    """Settle actions whose executor died mid-send: replay-safe ones are planned again, others become unknown.

    Call it only while holding the tenant's run (no other executor is working on it).
    """
    stale = now - older_than
    rows = conn.execute(
        select(outbox.c.key, outbox.c.replay_safe).where(
            outbox.c.tenant_id == tenant_id,
            outbox.c.state == str(State.SENDING),
            outbox.c.claimed_at <= stale,
        )
    ).all()
    unknown: list[str] = []
    for key, replay_safe in rows:
        if replay_safe:
            _set(conn, tenant_id, key, [State.SENDING], now, state=str(State.PLANNED), claimed_by=None,
                 claimed_at=None, reason=_RETRIED)  # fmt: skip
        else:
            _set(conn, tenant_id, key, [State.SENDING], now, state=str(State.UNKNOWN),
                 reason="the process stopped while sending: it may or may not have gone out; check, then "
                 "`ccm outbox resolve`")  # fmt: skip
            unknown.append(key)
    return unknown


def resolve(conn: Connection, tenant_id: str, key: str, went_out: bool, now: datetime) -> bool:
    """A bookkeeper settles an unknown action: it went out (sent) or it did not (planned again)."""
    if went_out:
        return _set(
            conn, tenant_id, key, [State.UNKNOWN], now, state=str(State.SENT), result="confirmed by a person"
        )
    return _set(conn, tenant_id, key, [State.UNKNOWN], now, state=str(State.PLANNED), claimed_by=None,
                claimed_at=None)  # fmt: skip


def _action(row: Any) -> Action:
    return Action(
        tenant_id=row.tenant_id, key=row.key, kind=row.kind, channel=row.channel, customer_id=row.customer_id,
        payload=row.payload, state=State(row.state), replay_safe=row.replay_safe, planned_at=row.planned_at,
        send_after=row.send_after, attempts=row.attempts, result=row.result, reason=row.reason,
        updated_at=row.updated_at,
    )  # fmt: skip


def actions(conn: Connection, tenant_id: str, states: Sequence[State] | None = None) -> list[Action]:
    query = select(outbox).where(outbox.c.tenant_id == tenant_id).order_by(outbox.c.send_after, outbox.c.key)
    if states is not None:
        query = query.where(outbox.c.state.in_([str(s) for s in states]))
    return [_action(r) for r in conn.execute(query)]


def due(conn: Connection, tenant_id: str, now: datetime) -> list[Action]:
    """Planned actions whose time has come, oldest first."""
    query = (
        select(outbox)
        .where(
            outbox.c.tenant_id == tenant_id, outbox.c.state == str(State.PLANNED), outbox.c.send_after <= now
        )
        .order_by(outbox.c.send_after, outbox.c.key)
    )
    return [_action(r) for r in conn.execute(query)]


def last_levels(conn: Connection, tenant_id: str) -> dict[str, tuple[int, date]]:
    """Per invoice: the highest reminder level sent and when it went out."""
    query = select(reminder_history.c.invoice_id, reminder_history.c.level, reminder_history.c.sent_on).where(
        reminder_history.c.tenant_id == tenant_id
    )
    found: dict[str, tuple[int, date]] = {}
    for invoice_id, level, sent_on in conn.execute(query):
        if invoice_id not in found or level > found[invoice_id][0]:
            found[invoice_id] = (level, sent_on)
    return found


def last_contacts(conn: Connection, tenant_id: str) -> dict[str, date]:
    """Per customer: the last day a reminder went out."""
    query = select(reminder_history.c.customer_id, reminder_history.c.sent_on).where(
        reminder_history.c.tenant_id == tenant_id
    )
    found: dict[str, date] = {}
    for customer_id, sent_on in conn.execute(query):
        if customer_id not in found or sent_on > found[customer_id]:
            found[customer_id] = sent_on
    return found


def due_tenants(conn: Connection, now: datetime) -> list[str]:
    """Tenants with planned actions whose time has come (what a server sends next), longest waiting first."""
    query = (
        select(outbox.c.tenant_id)
        .where(outbox.c.state == str(State.PLANNED), outbox.c.send_after <= now)
        .group_by(outbox.c.tenant_id)
        .order_by(func.min(outbox.c.send_after))
    )
    return list(conn.execute(query).scalars())


def due_count(conn: Connection, now: datetime) -> int:
    query = select(func.count()).where(outbox.c.state == str(State.PLANNED), outbox.c.send_after <= now)
    return int(conn.execute(query).scalar_one())
