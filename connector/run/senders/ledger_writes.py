"""Ledger write-backs: notes on invoices, holds and releases on customers, each idempotent by its key.

Invariants: nothing is written without a ledger connection (the actions stay planned). A hold (release) for
a customer already on (off) hold is cancelled as done, never written again: an earlier night's hold that
waited and tonight's are two keys (hold keys carry the day) for one change. A hold or release written is
recorded in the firm's holds (connector/credit.py) in the commit that completes it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial

from sqlalchemy import Connection

from connector import creditcontrol as credit
from connector import outbox
from connector.ledger import Fatal, Ledger, WriteResult
from connector.outbox import Action
from connector.payloads import HoldPayload, Kind, NotePayload
from connector.run.senders.attempt import Attempts
from connector.store import Store

KINDS = (Kind.NOTE, Kind.HOLD, Kind.RELEASE)


def _write(ledger: Ledger, action: Action) -> Callable[[], WriteResult]:
    """A ledger write needs no preparing: its effect."""
    return partial(_written, ledger, action)


def _written(ledger: Ledger, action: Action) -> WriteResult:
    p = action.payload
    if isinstance(p, NotePayload):
        return ledger.add_note(p.ref, p.text, action.key)
    on = action.kind == Kind.HOLD
    return ledger.set_hold(action.customer_id, on, _hold(action).reason, action.key)


def _hold(action: Action) -> HoldPayload:
    if not isinstance(action.payload, HoldPayload):
        raise Fatal(f"{action.key}: a {action.kind} without its reason")
    return action.payload


class LedgerWriter:
    """Writes one tenant's due notes, holds and releases to its ledger in one execution."""

    def __init__(self, store: Store, tenant_id: str, ledger: Ledger, attempts: Attempts) -> None:
        self.store = store
        self.tenant_id = tenant_id
        self.ledger = ledger
        self.attempts = attempts
        self.out = attempts.out

    def run(self, now: datetime) -> None:
        with self.store.read() as conn:
            due = [a for a in outbox.due(conn, self.tenant_id, now) if a.kind in KINDS]
        for action in due:
            if action.kind in ("hold", "release") and self._already_done(action, now):
                continue
            done = self.attempts.attempt(action, partial(_write, self.ledger, action), now)
            if done is None:
                continue
            self.out.api_calls += done.api_calls
            self.attempts.complete(
                action, done.ledger_ref or "done", now, also=partial(self._record, action, now)
            )
            if action.kind == "note":
                self.out.notes += 1
            else:
                (self.out.holds if action.kind == "hold" else self.out.releases).append(action.customer_id)

    def _record(self, action: Action, now: datetime, conn: Connection) -> None:
        """A hold or release written: the firm's holds say so (who asked, why, by which action)."""
        if action.kind not in (Kind.HOLD, Kind.RELEASE):
            return
        p, on = _hold(action), action.kind == Kind.HOLD
        credit.record_hold(conn, self.tenant_id, action.customer_id, on, p.source, p.reason, action.key, now)

    def _already_done(self, action: Action, now: datetime) -> bool:
        """Cancel a hold for a customer on hold now (a release for one off hold): an earlier night's action
        that waited (a transient failure, a firm-level stop) and tonight's plan for the same customer are two
        keys for one change, and the second must not be written again."""
        with self.store.begin() as conn:
            held = credit.holds(conn, self.tenant_id).get(action.customer_id)
            if held is None or held.on_hold != (action.kind == "hold"):
                return False
            state = "on" if held.on_hold else "off"
            reason = f"already done: the customer is {state} hold since {held.since:%Y-%m-%d}"
            self.attempts.cancel(conn, action, reason, now)
        return True
