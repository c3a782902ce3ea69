"""Call tasks as a bookkeeper works them: whom to call, on which number, about what, and what came of it.

Guarantees:
- `tasks` lists the firm's call tasks that are still to do (planned, awaiting approval or listed by a night),
  each with the customer's name and phone number, the invoices with their amounts and days overdue, the
  total, and a sentence to say; a task whose outcome is recorded leaves the list (`done=True` shows those).
- `record` stores one outcome per task (`call_outcomes`; recording again replaces it) in the caller's
  transaction, and feeds chasing: a promise opens a promise to pay (until a date, for an amount), a dispute
  disputes the task's invoices, "paid" and "no answer" are kept as history. A task not yet listed by a night
  is cancelled with the outcome as its reason, so it is not listed again.
- Bad input is a one-line `CallProblem` naming the option (`--until`, `--amount`) or the key; nothing stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Connection, delete, select

from connector import chasing, outbox
from connector.model import Money, Tenant
from connector.outbox import State
from connector.payloads import ReminderPayload, lines_of
from connector.store.schema import call_outcomes, customers

OUTCOMES = ("promise", "dispute", "no-answer", "paid")
TO_DO = (State.AWAITING_APPROVAL, State.PLANNED, State.SENDING, State.SENT)


class CallProblem(ValueError):
    """The outcome cannot be recorded; one line naming the option or key that was wrong."""


@dataclass(frozen=True, slots=True)
class Line:
    number: str
    amount: Money
    due_date: str
    days_overdue: int

    def words(self) -> str:
        return (
            f"{self.number} for {money(self.amount)}, due {self.due_date} ({self.days_overdue} days overdue)"
        )


@dataclass(frozen=True, slots=True)
class Outcome:
    outcome: str
    note: str
    until: date | None
    amount: Money | None
    by: str
    at: datetime

    def words(self) -> str:
        parts = {"promise": "promised to pay", "dispute": "disputed", "no-answer": "no answer",
                 "paid": "says it is paid"}  # fmt: skip
        text = parts[self.outcome]
        if self.amount is not None:
            text += f" {money(self.amount)}"
        if self.until is not None:
            text += f" by {self.until}"
        return text + (f": {self.note}" if self.note else "")


@dataclass(frozen=True, slots=True)
class CallTask:
    key: str
    customer_id: str
    customer: str
    phone: str | None
    lines: tuple[Line, ...]
    level_name: str
    due: datetime  # from when the call is due (UTC)
    state: State
    outcome: Outcome | None

    @property
    def invoices(self) -> tuple[str, ...]:
        return tuple(line.number for line in self.lines)

    @property
    def totals(self) -> tuple[Money, ...]:
        by_currency: dict[str, Decimal] = {}
        for line in self.lines:
            by_currency[line.amount.currency] = by_currency.get(line.amount.currency, Decimal(0)) + (
                line.amount.amount
            )
        return tuple(Money(amount, currency) for currency, amount in sorted(by_currency.items()))

    @property
    def total(self) -> str:
        return " + ".join(money(m) for m in self.totals) or "nothing"

    def script(self, firm: str) -> str:
        """What to say, in one paragraph."""
        n = len(self.lines)
        which = "; ".join(line.words() for line in self.lines)
        return (
            f"Ask {self.customer} for whoever pays their suppliers. Say you are calling from {firm} "
            f"about {n} overdue invoice{'s' if n != 1 else ''} totalling {self.total}: {which}. Ask when it "
            "will be paid and for how much; if they dispute an invoice, ask which one and why."
        )


def money(m: Money) -> str:
    return str(m)


def _phones(conn: Connection, tenant_id: str, ids: Sequence[str]) -> dict[str, str]:
    """The customers' phone numbers as the ledger holds them now (read at the last sync)."""
    if not ids:
        return {}
    c = customers.c
    query = select(c.id, c.phone).where(c.tenant_id == tenant_id, c.id.in_(list(ids)))
    return {row[0]: str(row[1]) for row in conn.execute(query) if row[1]}


def outcomes(conn: Connection, tenant_id: str) -> dict[str, Outcome]:
    """Every recorded outcome of the firm's call tasks, by the task's key."""
    o = call_outcomes.c
    found = {}
    for r in conn.execute(select(call_outcomes).where(o.tenant_id == tenant_id)):
        amount = Money(Decimal(r.amount), r.currency) if r.amount is not None and r.currency else None
        found[r.key] = Outcome(r.outcome, r.note, r.until, amount, r.recorded_by, r.recorded_at)
    return found


def _task(action: outbox.Action, name: str, phone: str | None, outcome: Outcome | None) -> CallTask:
    p = action.payload if isinstance(action.payload, ReminderPayload) else None
    lines = tuple(
        Line(
            str(line.get("number") or line.get("invoice_id")),
            Money(Decimal(str(line.get("amount", "0"))), str(line.get("currency") or "")),
            str(line.get("due_date", "")),
            int(line.get("days_overdue", 0)),
        )
        for line in lines_of(action.payload)
    )
    level = (p.level_name or f"level {p.level or '?'}") if p is not None else "level ?"
    return CallTask(action.key, action.customer_id, name, phone, lines, level,
                    action.send_after, action.state, outcome)  # fmt: skip


def tasks(conn: Connection, tenant_id: str, done: bool = False) -> list[CallTask]:
    """The firm's call tasks still to do (with `done`: also those whose outcome is recorded), oldest first."""
    states = [*TO_DO, State.CANCELLED]  # a call recorded before a night listed it was cancelled by `record`
    recorded = outcomes(conn, tenant_id)
    found = [
        a
        for a in outbox.actions(conn, tenant_id, states)
        if a.kind == "call_task"
        and ((a.state in TO_DO and a.key not in recorded) or (done and a.key in recorded))
    ]
    named = {d.action.key: d.customer for d in outbox.described(conn, tenant_id, found)}
    phones = _phones(conn, tenant_id, sorted({a.customer_id for a in found}))
    return [_task(a, named[a.key], phones.get(a.customer_id), recorded.get(a.key)) for a in found]


def find(conn: Connection, tenant_id: str, text: str) -> outbox.Action:
    """The call task with key `text`, or the only one whose key starts with it."""
    exact = outbox.get(conn, tenant_id, text)
    if exact is not None and exact.kind == "call_task":
        return exact
    matches = [a for a in outbox.actions(conn, tenant_id) if a.kind == "call_task" and a.key.startswith(text)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise CallProblem(f"no call task {text!r} in tenant {tenant_id!r} (`ccm calls` lists them)")
    raise CallProblem(f"{text!r} starts {len(matches)} call tasks' keys; give more of the key")


def _feed_chasing(
    conn: Connection,
    tenant_id: str,
    action: outbox.Action,
    outcome: str,
    note: str,
    until: date | None,
    promised: Money | None,
    now: datetime,
) -> int | None:
    """What the call changes in chasing (connector/chasing.py); returns the first event it opened.

    A promise covers the call's invoices still open (none still open: the oldest the amount pays, as `ccm
    promise` chooses); a dispute disputes each invoice of the call; no answer and paid are kept as notes.
    """
    cid = action.customer_id
    said = f"call: {note}" if note else "call"
    ids = [str(line["invoice_id"]) for line in lines_of(action.payload) if line.get("invoice_id")]
    try:
        if outcome == "promise":
            assert until is not None
            covered = [i for i in chasing.open_invoices(conn, tenant_id, cid) if i.invoice_id in ids]
            if not covered:
                covered = chasing.promised_invoices(conn, tenant_id, cid, [], promised)
            opened = chasing.record_promise(conn, tenant_id, cid, covered, until, promised, said, now)
            return opened[0] if opened else None
        if outcome == "dispute":
            for invoice_id in ids:
                chasing.record_dispute(conn, tenant_id, invoice_id, said, now)
            return None
    except chasing.CustomerOrInvoiceNotFound as exc:
        raise CallProblem(f"{outcome}: {exc}") from None
    words = {"no-answer": "no answer", "paid": "they say it is paid"}[outcome]
    return chasing.add_note(conn, tenant_id, cid, f"call: {words}" + (f": {note}" if note else ""), now)


def check(
    outcome: str, until: date | None, amount: str | None, currency: str, today: date
) -> tuple[date | None, Money | None]:
    """The outcome's date and amount as typed, checked; CallProblem naming the option otherwise."""
    if outcome not in OUTCOMES:
        raise CallProblem(f"--outcome: choose one of {', '.join(OUTCOMES)}, not {outcome!r}")
    if outcome != "promise" and (until is not None or amount is not None):
        raise CallProblem("--until and --amount go with --outcome promise only")
    if outcome != "promise":
        return None, None
    if until is None:
        raise CallProblem("--until: a promise needs the date they will pay by (YYYY-MM-DD)")
    problem = chasing.until_problem(until, today)
    if problem is not None:
        raise CallProblem(f"--until: {problem}")
    promised = None
    if amount is not None:
        try:
            promised = chasing.parse_amount(amount, currency)
        except ValueError as exc:
            raise CallProblem(f"--amount: {exc}") from None
    return until, promised


def record(
    conn: Connection,
    tenant: Tenant,
    key: str,
    outcome: str,
    *,
    note: str = "",
    until: date | None = None,
    amount: str | None = None,
    by: str,
    today: date,
    now: datetime,
) -> CallTask:
    """Record what came of a call (see the module's guarantees); returns the task as it now stands."""
    action = find(conn, tenant.id, key)
    if action.state not in TO_DO:
        raise CallProblem(f"call task {action.key} was {action.state}: there is no call to record")
    task = _task(action, "", None, None)
    currency = task.totals[0].currency if len(task.totals) == 1 else tenant.base_currency
    day, promised = check(outcome, until, amount, currency, today)
    note = note.strip()
    event_id = _feed_chasing(conn, tenant.id, action, outcome, note, day, promised, now)
    o = call_outcomes.c
    conn.execute(delete(call_outcomes).where(o.tenant_id == tenant.id, o.key == action.key))
    conn.execute(call_outcomes.insert().values(
        tenant_id=tenant.id, key=action.key, customer_id=action.customer_id, outcome=outcome, note=note,
        until=day, amount=promised.amount if promised else None,
        currency=promised.currency if promised else None, event_id=event_id, recorded_by=by, recorded_at=now,
    ))  # fmt: skip
    if action.state in outbox.OPEN_STATES:
        outbox.cancel(conn, tenant.id, action.key, f"called: {outcome} (recorded by {by})", now)
    result = Outcome(outcome, note, day, promised, by, now)
    named = outbox.described(conn, tenant.id, [action])[0].customer
    return _task(
        action, named, _phones(conn, tenant.id, [action.customer_id]).get(action.customer_id), result
    )
