"""The outbox: planned side effects with deterministic keys, executed at most once, never lost silently.

States:
```
awaiting_approval ──approve──▶ planned ──claim──▶ sending ──complete──▶ sent
        │                       ▲ │ │                │ └──fail──▶ failed (the effect surely did not happen)
        │    retry_later ───────┘ │ └──fail──▶ failed └──recover──▶ unknown (the process died mid-send)
        └────────cancel───────────┴──▶ cancelled      failed ──retry──▶ planned, ──dismiss──▶ cancelled
```
Planning inserts with the action's key, so planning the same action twice yields one row. `claim` is a
compare-and-set (planned → sending) committed BEFORE the effect, and as late as possible: whatever can fail
before the effect (rendering, pay links, the SMTP session) is done before it. `complete` commits after the
effect. A process that dies in between leaves the row in `sending`; `recover` later turns it into `unknown`,
shown to the bookkeeper and never retried blindly, unless the action is replay-safe (a ledger write carrying
an idempotency key the ledger honours), which goes back to `planned`. A bookkeeper settles an unknown one
with `resolve` (which records a confirmed one exactly as `complete` would).

Per-action outcomes: a permanent failure fails that action with its reason (`fail`); a transient one moves it
later with a doubling backoff (`retry_later`: 15 minutes, 30, 60, ... at most 4 hours) and fails it once it
has been tried MAX_ATTEMPTS times. A person re-plans failed actions with `retry` (same key, attempts kept,
the reason saying what it retries) or drops them with `dismiss`. `unsettled` lists what waits for a person.

Every function runs in the caller's transaction (a `Store.begin()` connection) and never commits; every
query is scoped by tenant. Each transition is a compare-and-set on the action's state: it returns False
(or None, or leaves a key out of its list) when the action was not in a state it moves from, and then
writes nothing, so two processes racing for one action never both move it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from connector.payloads import (
    DigestPayload,
    Kind,
    NotePayload,
    NoticePayload,
    Payload,
    ReminderPayload,
    StatementPayload,
    customer_name,
    decode,
    lines_of,
)
from connector.store import bulk
from connector.store.schema import customers, invoices, outbox, reminder_history


class State(StrEnum):
    """Where an action is in its life (the module docstring draws the moves); stored as its value."""

    AWAITING_APPROVAL = "awaiting_approval"
    PLANNED = "planned"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"
    UNKNOWN = "unknown"


class Mode(StrEnum):
    """How `plan` stores a night's actions.

    AUTO: planned, sent when due. APPROVE: awaiting a person's approval. DRY_RUN: not stored at all.
    """

    AUTO = "auto"
    APPROVE = "approve"
    DRY_RUN = "dry-run"


OPEN_STATES = (State.AWAITING_APPROVAL, State.PLANNED)
_CHUNK = 500
_PLAN_COLUMNS = ("tenant_id", "key", "kind", "channel", "customer_id", "payload", "state", "replay_safe",
                 "planned_at", "send_after", "attempts", "updated_at")  # fmt: skip
_RETRIED = "retried: the previous attempt stopped mid-way; the ledger deduplicates by key"
RETRY_FIRST = timedelta(minutes=15)  # a transient failure is tried again after this, doubling each time
RETRY_CAP = timedelta(hours=4)  # ... but never waits longer than this
MAX_ATTEMPTS = 5  # tries of one action (since it was planned or retried by a person) before it fails
_RETRY_BASE = "retry_base"  # payload: the attempts an action had when a person re-planned it


@dataclass(frozen=True, slots=True)
class NewAction:
    """An action to plan.

    Attributes:
        key: Deterministic: the same decision yields the same key, so planning it again stores nothing new.
            Unique per tenant; ledger write-backs derive their idempotency keys from it.
        kind: What it does (connector/payloads.py `Kind`).
        channel: How it goes out: email, ledger (a write-back), ledger_email (the ledger's own invoice
            e-mail) or call_task.
        customer_id: The customer it concerns (the store's id).
        payload: What the executor needs, typed by kind (connector/payloads.py); stored as JSON.
        send_after: Not executed before this instant.
        replay_safe: Doing the effect twice is harmless (a ledger write with an idempotency key the ledger
            honours): after a crash mid-send it is planned again instead of becoming unknown.
    """

    key: str
    kind: Kind
    channel: str
    customer_id: str
    payload: Payload
    send_after: datetime
    replay_safe: bool = False


@dataclass(frozen=True, slots=True)
class Action:
    """An action as stored (see NewAction for the planned fields).

    Attributes:
        attempts: Tries made: each claim counts one, as does a transient failure before the claim; a try
            stopped by the firm's own problem (`release(counted=False)`) does not. Kept when a person
            retries the action.
        result: What the effect returned once sent (a message id, a ledger reference), or "confirmed by a
            person" when `resolve` recorded it.
        reason: Why it is where it is: the last failure, deferral, cancellation or retry.
        claimed_at: When the last claim was taken; cleared when the action goes back to planned or fails.
        retry_base: The attempts it had when a person last retried it (stored beside the payload's keys).
    """

    tenant_id: str
    key: str
    kind: Kind
    channel: str
    customer_id: str
    payload: Payload
    state: State
    replay_safe: bool
    planned_at: datetime
    send_after: datetime
    attempts: int
    result: str | None
    reason: str | None
    updated_at: datetime
    claimed_at: datetime | None = None
    retry_base: int = 0


@dataclass(frozen=True)
class PlanResult:
    """What `plan` did, by key, in the order given.

    `created`: the keys it stored; `existing`: those already stored and left as they were. Both are empty
    for a dry run.
    """

    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)


def plan(
    conn: Connection, tenant_id: str, actions: Sequence[NewAction], mode: Mode, now: datetime
) -> PlanResult:
    """Store new actions for a tenant: planned (AUTO) or awaiting approval (APPROVE).

    Idempotent: an action whose key is already stored, in whatever state, is left exactly as it is (its
    state, payload and send time are not updated), so re-planning a night never duplicates or revives an
    action. A dry run stores nothing and returns an empty result.

    Returns:
        The keys stored now and the keys that already existed.
    """
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
        {"tenant_id": tenant_id, "key": a.key, "kind": str(a.kind), "channel": a.channel,
         "customer_id": a.customer_id, "payload": a.payload.to_json(), "state": str(state),
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
    """Approve actions awaiting approval: they become planned and go out when due.

    Args:
        keys: The actions to approve; None approves every awaiting action of the tenant. Keys of actions in
            another state, or of none, are ignored.

    Returns:
        How many actions were approved.
    """
    query = (
        update(outbox)
        .where(outbox.c.tenant_id == tenant_id, outbox.c.state == str(State.AWAITING_APPROVAL))
        .values(state=str(State.PLANNED), updated_at=now)
    )
    if keys is not None:
        query = query.where(outbox.c.key.in_(list(keys)))
    return conn.execute(query).rowcount


def claim(conn: Connection, tenant_id: str, key: str, owner: str, now: datetime) -> bool:
    """Take a planned action for execution (planned → sending), counting the attempt.

    Commit this claim in its own transaction BEFORE performing the effect, and perform the effect only when
    it returned True: a crash after the commit leaves the action sending, which `recover` settles.

    Args:
        owner: Who holds the claim (a process or worker id), recorded with it.

    Returns:
        True when this caller took it; False when it was not planned (another executor took it, or it was
        cancelled or settled meanwhile).
    """
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
    """Mark a claimed action sent (sending → sent) with its result; commit after the effect.

    Args:
        result: What the effect returned (a message id, a ledger reference), kept on the action.
        history: (invoice id, level) of each reminder level the action sent, written to the reminder
            history in the same transaction (a pair already recorded is not written again).
        sent_on: The tenant's local day of sending (default: the UTC day of `now`).

    Returns:
        False when the action was not sending (`recover` settled it meanwhile); nothing is written then.
    """
    return _record_sent(conn, tenant_id, key, [State.SENDING], result, now, history, sent_on)


def _record_sent(
    conn: Connection,
    tenant_id: str,
    key: str,
    from_states: Sequence[State],
    result: str,
    now: datetime,
    history: Sequence[tuple[str, int]],
    sent_on: date | None,
) -> bool:
    """The one way an action becomes sent: the state and, with it, which level each invoice has had."""
    done = _set(conn, tenant_id, key, from_states, now, state=str(State.SENT), result=result)
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
    """Fail an action whose effect surely did not happen and will not on another try.

    For a refusal, or an action that could not even be prepared before its claim: it becomes failed with
    `reason` and waits for a person, who may `retry` it once the cause is fixed (or `dismiss` it).

    Returns:
        False when the action was neither sending nor planned; nothing is written then.
    """
    return _set(conn, tenant_id, key, [State.SENDING, State.PLANNED], now, state=str(State.FAILED),
                reason=reason, claimed_by=None, claimed_at=None)  # fmt: skip


def backoff(tries: int) -> timedelta:
    """How long an action tried `tries` times waits before the next try: 15 min, doubling, capped."""
    return min(RETRY_FIRST * 2 ** max(tries - 1, 0), RETRY_CAP)


def retry_later(
    conn: Connection, tenant_id: str, key: str, reason: str, now: datetime, at_least: datetime | None = None
) -> State | None:
    """Record a transient failure, nothing done: planned again after a backoff, or failed after MAX_ATTEMPTS.

    Takes a claimed action (its claim counted the try) or a planned one that failed before its claim (the try
    is counted here). Tries are counted since the action was planned or a person last retried it.

    Args:
        reason: The failure, kept with the attempt number and the next time in the action's reason.
        at_least: Not before this instant (a ledger's Retry-After), if later than the backoff.

    Returns:
        The new state, PLANNED or FAILED; None when the action was neither sending nor planned (nothing is
        written then).
    """
    row = conn.execute(
        select(outbox.c.state, outbox.c.attempts, outbox.c.payload).where(
            outbox.c.tenant_id == tenant_id, outbox.c.key == key
        )
    ).first()
    if row is None or row.state not in (State.SENDING, State.PLANNED):
        return None
    attempts = row.attempts + (1 if row.state == State.PLANNED else 0)
    tries = attempts - int((row.payload or {}).get(_RETRY_BASE, 0))
    unclaimed = {"attempts": attempts, "claimed_by": None, "claimed_at": None}
    if tries >= MAX_ATTEMPTS:
        why = f"{reason} (gave up after {tries} attempts)"
        _set(conn, tenant_id, key, [State(row.state)], now, state=str(State.FAILED), reason=why, **unclaimed)
        return State.FAILED
    when = max(now + backoff(tries), at_least or now)
    why = f"{reason} (attempt {tries} of {MAX_ATTEMPTS}; again after {when:%Y-%m-%d %H:%M} UTC)"
    _set(conn, tenant_id, key, [State(row.state)], now, state=str(State.PLANNED), send_after=when, reason=why,
         **unclaimed)  # fmt: skip
    return State.PLANNED


def mark_unknown(conn: Connection, tenant_id: str, key: str, reason: str, now: datetime) -> bool:
    """Mark a sending action unknown: its effect may or may not have happened.

    For a connection that dropped mid-send. An unknown action is shown to a person and never retried
    blindly; `resolve` settles it.

    Returns:
        False when the action was not sending; nothing is written then.
    """
    return _set(conn, tenant_id, key, [State.SENDING], now, state=str(State.UNKNOWN), reason=reason)


def defer(conn: Connection, tenant_id: str, key: str, until: datetime, reason: str, now: datetime) -> bool:
    """Move an open action's send time (outside the send window, customer already contacted today).

    Returns:
        False when the action was neither planned nor awaiting approval; nothing is written then.
    """
    return _set(conn, tenant_id, key, OPEN_STATES, now, send_after=until, reason=reason)


def release(
    conn: Connection, tenant_id: str, key: str, reason: str, now: datetime, counted: bool = True
) -> bool:
    """Give a claimed action back, nothing sent (sending → planned): it is tried again at its send time.

    Args:
        counted: False when the failure was the firm's (reconnect needed, the day's allowance spent), not
            the action's: the try then does not count towards MAX_ATTEMPTS.

    Returns:
        False when the action was not sending; nothing is written then.
    """
    extra = {} if counted else {"attempts": outbox.c.attempts - 1}
    return _set(conn, tenant_id, key, [State.SENDING], now, state=str(State.PLANNED), reason=reason,
                claimed_by=None, claimed_at=None, **extra)  # fmt: skip


def cancel(conn: Connection, tenant_id: str, key: str, reason: str, now: datetime) -> bool:
    """Drop an action that was not started (the customer paid, disputed, ...), with the reason.

    Returns:
        False when the action was neither planned nor awaiting approval (already claimed, sent, failed or
        cancelled); nothing is written then.
    """
    return _set(conn, tenant_id, key, OPEN_STATES, now, state=str(State.CANCELLED), reason=reason)


def recover(
    conn: Connection, tenant_id: str, now: datetime, older_than: timedelta = timedelta(0)
) -> list[str]:
    """Settle actions whose executor died mid-send: replay-safe ones are planned again, others become unknown.

    Call it only while holding the tenant's run lease (no other executor is working on it): every sending
    action claimed at least `older_than` ago is taken to be abandoned.

    Returns:
        The keys that became unknown (those replanned are not listed).
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


def resolve(
    conn: Connection, tenant_id: str, key: str, went_out: bool, now: datetime, sent_on: date | None = None
) -> Action | None:
    """A bookkeeper settles an unknown action: it went out (sent) or it did not (planned again).

    Resolving is recording: a reminder that went out gets its reminder history exactly as `complete` writes
    it (`sent_on`: the tenant's local day it went out), so the customer's sequence goes on from it. Its ledger
    notes are the caller's to plan (connector/run/execute.py `sent_notes`). Returns the action as it was
    (None: no unknown action with that key).
    """
    found = get(conn, tenant_id, key)
    if found is None or found.state is not State.UNKNOWN:
        return None
    if went_out:
        history = [(str(line["invoice_id"]), int(line["level"])) for line in lines_of(found.payload)]
        done = _record_sent(conn, tenant_id, key, [State.UNKNOWN], "confirmed by a person", now,
                            history if found.kind == Kind.REMINDER else (), sent_on)  # fmt: skip
    else:
        why = f"a person said it did not go out; planned again ({found.reason})"
        done = _set(conn, tenant_id, key, [State.UNKNOWN], now, state=str(State.PLANNED), claimed_by=None,
                    claimed_at=None, reason=why)  # fmt: skip
    return found if done else None


def retry(conn: Connection, tenant_id: str, keys: Sequence[str] | None, now: datetime) -> list[str]:
    """A person re-plans failed actions (all of the tenant's when `keys` is None) to go out at the next send.

    Same key, a new attempt: the attempts made are kept and the reason says what failed before, so the
    history stays visible; the attempt cap starts afresh. The send time stays the one it failed at (passed:
    due at once). Returns the keys planned again.
    """
    query = select(outbox).where(outbox.c.tenant_id == tenant_id, outbox.c.state == str(State.FAILED))
    if keys is not None:
        query = query.where(outbox.c.key.in_(list(keys)))
    planned: list[str] = []
    for row in conn.execute(query).all():
        payload = {**(row.payload or {}), _RETRY_BASE: row.attempts}  # the stored keys as they are
        if _set(conn, tenant_id, row.key, [State.FAILED], now, state=str(State.PLANNED), payload=payload,
                reason=f"retry of: {row.reason or 'a failed attempt'}"):  # fmt: skip
            planned.append(row.key)
    return planned


def dismiss(conn: Connection, tenant_id: str, keys: Sequence[str], now: datetime) -> list[str]:
    """A person drops failed actions for good (a note on an invoice deleted since): cancelled, reason kept."""
    query = select(outbox.c.key, outbox.c.reason).where(
        outbox.c.tenant_id == tenant_id, outbox.c.state == str(State.FAILED), outbox.c.key.in_(list(keys))
    )
    dropped: list[str] = []
    for key, reason in conn.execute(query).all():
        if _set(conn, tenant_id, key, [State.FAILED], now, state=str(State.CANCELLED),
                reason=f"dismissed by a person; it had failed: {reason}"):  # fmt: skip
            dropped.append(key)
    return dropped


def _action(row: Any) -> Action:
    raw = row.payload or {}
    return Action(
        tenant_id=row.tenant_id, key=row.key, kind=Kind(row.kind), channel=row.channel,
        customer_id=row.customer_id, payload=decode(row.kind, raw), state=State(row.state),
        replay_safe=row.replay_safe, planned_at=row.planned_at, send_after=row.send_after,
        attempts=row.attempts, result=row.result, reason=row.reason, updated_at=row.updated_at,
        claimed_at=row.claimed_at, retry_base=int(raw.get(_RETRY_BASE, 0)),
    )  # fmt: skip


def get(conn: Connection, tenant_id: str, key: str) -> Action | None:
    """The tenant's action with this key, in whatever state; None if there is none."""
    row = conn.execute(select(outbox).where(outbox.c.tenant_id == tenant_id, outbox.c.key == key)).first()
    return _action(row) if row is not None else None


def actions(conn: Connection, tenant_id: str, states: Sequence[State] | None = None) -> list[Action]:
    """The tenant's actions (only those in `states`, when given), by send time, then key."""
    query = select(outbox).where(outbox.c.tenant_id == tenant_id).order_by(outbox.c.send_after, outbox.c.key)
    if states is not None:
        query = query.where(outbox.c.state.in_([str(s) for s in states]))
    return [_action(r) for r in conn.execute(query)]


def due(conn: Connection, tenant_id: str, now: datetime) -> list[Action]:
    """The tenant's planned actions whose send time is at or before `now`, by send time, then key."""
    query = (
        select(outbox)
        .where(
            outbox.c.tenant_id == tenant_id, outbox.c.state == str(State.PLANNED), outbox.c.send_after <= now
        )
        .order_by(outbox.c.send_after, outbox.c.key)
    )
    return [_action(r) for r in conn.execute(query)]


def last_levels(conn: Connection, tenant_id: str) -> dict[str, tuple[int, date]]:
    """Per invoice of the tenant: the highest reminder level sent and the day it went out.

    Invoices never reminded are absent.
    """
    query = select(reminder_history.c.invoice_id, reminder_history.c.level, reminder_history.c.sent_on).where(
        reminder_history.c.tenant_id == tenant_id
    )
    found: dict[str, tuple[int, date]] = {}
    for invoice_id, level, sent_on in conn.execute(query):
        if invoice_id not in found or level > found[invoice_id][0]:
            found[invoice_id] = (level, sent_on)
    return found


def last_contacts(conn: Connection, tenant_id: str) -> dict[str, date]:
    """Per customer of the tenant: the last day a reminder went out (customers never reminded are absent)."""
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
    """How many planned actions of every tenant are due at `now`: the sends a server has waiting."""
    query = select(func.count()).where(outbox.c.state == str(State.PLANNED), outbox.c.send_after <= now)
    return int(conn.execute(query).scalar_one())


UNSETTLED = (State.UNKNOWN, State.FAILED)
_WHAT = {"note": "ledger note", "hold": "credit hold", "release": "credit hold release",
         "call_task": "call task", "notice": "notice to the firm",
         "statement": "monthly statement"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Unsettled:
    """An action waiting for a person (its outcome unknown, or failed), in the bookkeeper's words."""

    action: Action
    customer: str  # the customer's name (the firm's contact address, for a notice)
    invoices: tuple[str, ...]  # invoice numbers

    @property
    def what(self) -> str:
        """What the action is, in the bookkeeper's words: "reminder (final) by e-mail", "credit hold"."""
        a, p = self.action, self.action.payload
        if a.kind == Kind.REMINDER and isinstance(p, ReminderPayload):
            level = p.level_name or f"level {p.level or '?'}"
            how = "the ledger's invoice e-mail" if a.channel == "ledger_email" else "e-mail"
            return f"reminder ({level}) by {how}"
        return _WHAT.get(a.kind, a.kind)

    @property
    def todo(self) -> str:
        """The command that settles it: `resolve` when the outcome is unknown, else `retry` or `dismiss`."""
        key = self.action.key
        if self.action.state is State.UNKNOWN:
            return f"check whether it went out, then `ccm outbox resolve {key} --sent` or `--not-sent`"
        return f"fix the cause, then `ccm outbox retry {key}` (or drop it: `ccm outbox dismiss {key}`)"

    def line(self) -> str:
        """One line for a person: state, what, for whom, on which invoices, why, and what to do."""
        a = self.action
        on = f" on {', '.join(self.invoices)}" if self.invoices else ""
        why = a.reason or "no reason recorded"
        to = "to" if a.kind in (Kind.REMINDER, Kind.NOTICE) else "for"
        return f"{a.state.upper()} {self.what} {to} {self.customer}{on}: {why}; {self.todo}"


def unsettled(conn: Connection, tenant_id: str) -> list[Unsettled]:
    """Actions whose outcome is unknown or that failed: what a person must look at, oldest first."""
    return described(conn, tenant_id, actions(conn, tenant_id, UNSETTLED))


def retrying(conn: Connection, tenant_id: str) -> list[Unsettled]:
    """Planned actions that were tried and will be tried again (a transient failure, a firm-level stop)."""
    query = (
        select(outbox)
        .where(
            outbox.c.tenant_id == tenant_id,
            outbox.c.state == str(State.PLANNED),
            outbox.c.reason.is_not(None),
        )
        .order_by(outbox.c.send_after, outbox.c.key)
    )
    return described(conn, tenant_id, [_action(r) for r in conn.execute(query)])


def by_keys(conn: Connection, tenant_id: str, keys: Sequence[str]) -> list[Action]:
    """The tenant's actions with these keys, in the order of `keys`; keys with no action are left out."""
    found: dict[str, Action] = {}
    wanted = list(dict.fromkeys(keys))
    for start in range(0, len(wanted), 500):  # well under every driver's bound-parameter limit
        chunk = wanted[start : start + 500]
        query = select(outbox).where(outbox.c.tenant_id == tenant_id, outbox.c.key.in_(chunk))
        found.update((row.key, _action(row)) for row in conn.execute(query))
    return [found[k] for k in wanted if k in found]


def described(conn: Connection, tenant_id: str, found: Sequence[Action]) -> list[Unsettled]:
    """Each action with its customer's name and its invoices' numbers, as a bookkeeper reads them."""
    if not found:
        return []
    customer_ids = sorted({a.customer_id for a in found if a.customer_id})
    invoice_ids = sorted(
        {a.payload.ref for a in found if isinstance(a.payload, NotePayload) and a.payload.ref}
    )
    c, i = customers.c, invoices.c
    names: dict[str, str] = {}
    numbers: dict[str, str] = {}
    for start in range(0, len(customer_ids), 500):
        chunk = customer_ids[start : start + 500]
        query = select(c.id, c.name).where(c.tenant_id == tenant_id, c.id.in_(chunk))
        names.update((row.id, row.name) for row in conn.execute(query))
    for start in range(0, len(invoice_ids), 500):
        chunk = invoice_ids[start : start + 500]
        query = select(i.id, i.number).where(i.tenant_id == tenant_id, i.id.in_(chunk))
        numbers.update((row.id, row.number) for row in conn.execute(query))
    listed = []
    for a in found:
        p = a.payload
        if isinstance(p, NoticePayload | DigestPayload):
            who = f"the firm ({p.email or 'no address'})"
        else:
            who = str(customer_name(p) or names.get(a.customer_id) or a.customer_id)
        if isinstance(p, NotePayload):
            shown: tuple[str, ...] = (str(numbers.get(p.ref) or p.ref),) if p.ref else ()
        else:
            shown = p.invoice_numbers() if isinstance(p, ReminderPayload | StatementPayload) else ()
        listed.append(Unsettled(a, who, shown))
    return listed


def attention(found: Sequence[Unsettled]) -> str | None:
    """The one-line health message for unsettled actions (None: nothing waits for a person)."""
    if not found:
        return None
    unknown = sum(1 for u in found if u.action.state is State.UNKNOWN)
    failed = len(found) - unknown
    parts = [f"{n} {label}" for n, label in ((unknown, "with an unknown outcome"), (failed, "failed")) if n]
    customers_named = sorted({u.customer for u in found})
    more = f" and {len(customers_named) - 3} more" if len(customers_named) > 3 else ""
    who = ", ".join(customers_named[:3]) + more
    return (
        f"{len(found)} action(s) need a person ({', '.join(parts)}) for {who}: see `ccm outbox list "
        "--state unknown --state failed`, then `ccm outbox resolve` or `ccm outbox retry`"
    )
