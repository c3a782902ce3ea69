"""Snoozing actions that await approval: put aside until a time, then back on the approvals list.

Guarantees:
- Only an action awaiting approval can be snoozed; its snooze is one row (`outbox_snoozes`), replaced when it
  is snoozed again, and ends by itself at its time (nothing needs to run for it to come back).
- A snoozed action is never sent before its snooze ends, even if approved meanwhile (`ccm outbox approve
  --all`): snoozing moves its `send_after` to the snooze's end, in the same transaction.
- `hidden` names the keys a person put aside as of `now`: what the approvals page leaves out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, select, update

from connector import outbox
from connector.outbox import State
from connector.store.schema import outbox as outbox_table
from connector.store.schema import outbox_snoozes


class SnoozeProblem(ValueError):
    """The snooze cannot be made; one line naming what was wrong."""


@dataclass(frozen=True, slots=True)
class Snoozed:
    key: str
    until: datetime
    by: str
    at: datetime


def snooze(
    conn: Connection, tenant_id: str, keys: Sequence[str], until: datetime, by: str, now: datetime
) -> list[str]:
    """Put aside the actions awaiting approval among `keys` until `until` (UTC); returns the keys snoozed."""
    if until <= now:
        raise SnoozeProblem(f"the snooze must end in the future, not at {until:%Y-%m-%d %H:%M} UTC")
    waiting = [a for a in outbox.by_keys(conn, tenant_id, keys) if a.state is State.AWAITING_APPROVAL]
    s, o = outbox_snoozes.c, outbox_table.c
    done: list[str] = []
    for action in waiting:
        conn.execute(delete(outbox_snoozes).where(s.tenant_id == tenant_id, s.key == action.key))
        conn.execute(outbox_snoozes.insert().values(tenant_id=tenant_id, key=action.key, until=until, by=by,
                                                    at=now))  # fmt: skip
        if action.send_after < until:
            conn.execute(
                update(outbox_table)
                .where(o.tenant_id == tenant_id, o.key == action.key)
                .values(send_after=until, updated_at=now)
            )
        done.append(action.key)
    return done


def wake(conn: Connection, tenant_id: str, keys: Sequence[str]) -> int:
    """End the snoozes of `keys` now (the send time stays as the snooze set it); returns how many ended."""
    s = outbox_snoozes.c
    return int(
        conn.execute(delete(outbox_snoozes).where(s.tenant_id == tenant_id, s.key.in_(list(keys)))).rowcount
    )


def active(conn: Connection, tenant_id: str, now: datetime) -> dict[str, Snoozed]:
    """The snoozes still running at `now`, by key."""
    s = outbox_snoozes.c
    query = select(outbox_snoozes).where(s.tenant_id == tenant_id, s.until > now)
    return {r.key: Snoozed(r.key, r.until, r.by, r.at) for r in conn.execute(query)}


def hidden(conn: Connection, tenant_id: str, now: datetime) -> frozenset[str]:
    """Keys of actions awaiting approval that are snoozed at `now`."""
    return frozenset(active(conn, tenant_id, now))
