"""What people decided about chasing: disputes, promises to pay, payment plans, pauses, do-not-chase.

Recorded by `ccm dispute|promise|plan|pause|do-not-chase`, shown by `ccm customer`, and read by the dunning
planner. A promise covers the invoices promised (one `promise` event per invoice, each with the amount
promised for them all): those invoices are not chased until its date, the customer's other invoices still
are; if unpaid by then, the sequence simply resumes at the next level after the last one sent (a broken
promise re-enters where it left). A promise recorded before per-invoice promises (no invoice) still covers
the whole customer. A dispute names its invoice; a note is ccm's own remark on the customer, kept in the
history. The CLI and the web pages record all of these through the functions here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Connection, func, or_, select, update

from connector.model import ModelError, Money, check_currency
from connector.store.schema import chasing_events, customer_settings, customers, invoices

DISPUTE = "dispute"
PROMISE = "promise"
PLAN = "plan"
NOTE = "note"

# Amounts people type (a promise, a credit limit): plain digits, at most the store's 4 decimal places, and
# small enough for its scaled 64-bit column (under 922,337,203,685,477) with room to spare.
AMOUNT_PLACES = 4
AMOUNT_MAX = Decimal(10) ** 14
_PLAIN = re.compile(r"\d+(\.\d*)?|\.\d+")
_EXPONENT = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)[eE][+-]?\d+")


class CustomerOrInvoiceNotFound(LookupError):
    """No one customer or invoice in the tenant's books answers to what was named (none, several, or not
    one the command can act on: not open, no open dispute); one line."""


@dataclass(frozen=True, slots=True)
class Event:
    event_id: int
    kind: str
    customer_id: str
    invoice_id: str | None
    until: date | None
    amount: Money | None
    note: str
    opened_at: datetime
    closed_at: datetime | None
    outcome: str | None
    invoice_number: str | None = None  # the invoice's number, for every output (its id when it has none)


@dataclass(frozen=True)
class ChasingState:
    """One customer's chasing state as the planner needs it."""

    policy: str | None = None
    do_not_chase: bool = False
    never_hold: bool = False
    paused_until: date | None = None
    promise_until: date | None = None
    on_plan: bool = False
    disputed: frozenset[str] = field(default_factory=frozenset)
    promised: dict[str, date] = field(default_factory=dict)  # invoice id -> promised to be paid by


# ---- what the person typed


def _quoted(text: str) -> str:
    return repr(text) if len(text) <= 40 else repr(text[:40]) + "…"


def parse_amount(text: str, default_currency: str, *, zero: bool = False) -> Money:
    """'250', '5,000.00' or '5000 EUR' as Money, or ValueError with a one-line reason.

    Refused: exponents (`1e17`), NaN and infinities, negatives, zero (unless `zero`), more than 4 decimal
    places (the store would round them silently) and amounts of 10**14 or more (it could not hold them).
    """
    parts = text.replace(",", "").split()
    if not parts or len(parts) > 2:
        raise ValueError(f"not an amount: {_quoted(text)}")
    number = parts[0]
    if number.startswith("-") and _PLAIN.fullmatch(number[1:]):
        raise ValueError(f"must be {'0 or more' if zero else 'more than 0'}: {_quoted(number)}")
    if not _PLAIN.fullmatch(number):
        if _EXPONENT.fullmatch(number):
            raise ValueError(f"not an amount (write it in plain digits, no exponent): {_quoted(number)}")
        raise ValueError(f"not an amount: {_quoted(number)}")
    amount = Decimal(number)
    if amount == 0 and not zero:
        raise ValueError(f"must be more than 0: {_quoted(number)}")
    if amount >= AMOUNT_MAX:
        raise ValueError(f"too large (at most {AMOUNT_MAX - 1:,}): {_quoted(number)}")
    if -int(amount.as_tuple().exponent) > AMOUNT_PLACES:
        raise ValueError(f"at most {AMOUNT_PLACES} decimal places: {_quoted(number)}")
    try:
        return Money(amount, check_currency(parts[1].upper() if len(parts) == 2 else default_currency))
    except ModelError as exc:
        raise ValueError(str(exc)) from None


def find_customer(conn: Connection, tenant_id: str, text: str) -> tuple[str, str]:
    """(id, name) of the customer whose id or name is `text` (names case-insensitively, or a unique part)."""
    c = customers.c
    base = select(c.id, c.name).where(c.tenant_id == tenant_id)
    exact = conn.execute(base.where(or_(c.id == text, func.lower(c.name) == text.lower()))).all()
    if len(exact) == 1:
        return exact[0].id, exact[0].name
    if not exact:
        pattern = f"%{text.lower()}%"
        exact = conn.execute(base.where(func.lower(c.name).like(pattern)).limit(6)).all()
        if len(exact) == 1:
            return exact[0].id, exact[0].name
    if not exact:
        raise CustomerOrInvoiceNotFound(f"no customer {text!r} in tenant {tenant_id!r}")
    names = ", ".join(sorted(r.name for r in exact[:5]))
    raise CustomerOrInvoiceNotFound(
        f"{text!r} matches several customers ({names}); give the id or the full name"
    )


def find_invoice(conn: Connection, tenant_id: str, text: str) -> tuple[str, str, str | None]:
    """(id, customer id, number) of the invoice whose id or number is `text`."""
    i = invoices.c
    rows = conn.execute(
        select(i.id, i.customer_id, i.number).where(
            i.tenant_id == tenant_id, or_(i.id == text, i.number == text)
        )
    ).all()
    if not rows:
        raise CustomerOrInvoiceNotFound(f"no invoice {text!r} in tenant {tenant_id!r}")
    if len(rows) > 1:
        raise CustomerOrInvoiceNotFound(f"{text!r} matches {len(rows)} invoices; give the invoice id")
    return rows[0].id, rows[0].customer_id, rows[0].number


UNTIL_YEARS = 5  # a promise further ahead is a typo (20226-01-01), not a plan


def until_problem(day: date, today: date) -> str | None:
    """Why `day` cannot be a date a person promises something by (None: it can): before `today` (the firm's
    today) or more than UNTIL_YEARS ahead."""
    try:
        latest = today.replace(year=today.year + UNTIL_YEARS)
    except ValueError:  # 29 February
        latest = today.replace(year=today.year + UNTIL_YEARS, day=28)
    if day < today:
        return f"{day} is in the past (today is {today})"
    if day > latest:
        return f"{day} is more than {UNTIL_YEARS} years ahead (at most {latest})"
    return None


# ---- settings


def _settings_row(conn: Connection, tenant_id: str, customer_id: str, now: datetime) -> None:
    s = customer_settings.c
    found = conn.execute(
        select(s.customer_id).where(s.tenant_id == tenant_id, s.customer_id == customer_id)
    ).first()
    if found is None:
        conn.execute(customer_settings.insert().values(
            tenant_id=tenant_id, customer_id=customer_id, do_not_chase=False, never_hold=False,
            updated_at=now,
        ))  # fmt: skip


def update_settings(
    conn: Connection, tenant_id: str, customer_id: str, now: datetime, **values: object
) -> None:
    """Set any of policy, do_not_chase, never_hold, paused_until for a customer."""
    _settings_row(conn, tenant_id, customer_id, now)
    s = customer_settings.c
    conn.execute(
        update(customer_settings)
        .where(s.tenant_id == tenant_id, s.customer_id == customer_id)
        .values(updated_at=now, **values)
    )


def is_business(conn: Connection, tenant_id: str, customer_id: str) -> bool:
    """Business-to-business unless someone marked the customer otherwise (statutory interest is B2B only)."""
    s = customer_settings.c
    row = conn.execute(
        select(s.business).where(s.tenant_id == tenant_id, s.customer_id == customer_id)
    ).first()
    return True if row is None else bool(row.business)


# ---- events


def open_event(
    conn: Connection,
    tenant_id: str,
    customer_id: str,
    kind: str,
    now: datetime,
    *,
    note: str = "",
    invoice_id: str | None = None,
    until: date | None = None,
    amount: Money | None = None,
) -> int:
    """Record a dispute, promise or plan. An open one of the same kind (and invoice) is closed as replaced."""
    e = chasing_events.c
    same = [e.tenant_id == tenant_id, e.customer_id == customer_id, e.kind == kind, e.closed_at.is_(None)]
    if invoice_id is not None:
        same.append(e.invoice_id == invoice_id)
    conn.execute(update(chasing_events).where(*same).values(closed_at=now, outcome="replaced"))
    result = conn.execute(chasing_events.insert().values(
        tenant_id=tenant_id, customer_id=customer_id, invoice_id=invoice_id, kind=kind, until=until,
        amount=amount.amount if amount else None, currency=amount.currency if amount else None, note=note,
        opened_at=now,
    ))  # fmt: skip
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def close_events(
    conn: Connection,
    tenant_id: str,
    customer_id: str,
    kind: str,
    outcome: str,
    now: datetime,
    invoice_id: str | None = None,
) -> int:
    """Close the open events of a kind (resolve a dispute, end a plan); returns how many were open."""
    e = chasing_events.c
    query = update(chasing_events).where(
        e.tenant_id == tenant_id, e.customer_id == customer_id, e.kind == kind, e.closed_at.is_(None)
    )
    if invoice_id is not None:
        query = query.where(e.invoice_id == invoice_id)
    return conn.execute(query.values(closed_at=now, outcome=outcome)).rowcount


def events(conn: Connection, tenant_id: str, customer_id: str) -> list[Event]:
    """Every event of a customer, newest first, each with its invoice's number (for `ccm customer`)."""
    e, i = chasing_events.c, invoices.c
    query = (
        select(chasing_events, i.number)
        .select_from(chasing_events.outerjoin(
            invoices, (i.tenant_id == e.tenant_id) & (i.id == e.invoice_id)
        ))
        .where(e.tenant_id == tenant_id, e.customer_id == customer_id)
        .order_by(e.opened_at.desc(), e.event_id.desc())
    )  # fmt: skip
    return [
        Event(r.event_id, r.kind, r.customer_id, r.invoice_id, r.until,
              Money(Decimal(r.amount), r.currency) if r.amount is not None and r.currency else None,
              r.note, r.opened_at, r.closed_at, r.outcome,
              (r.number or r.invoice_id) if r.invoice_id else None)
        for r in conn.execute(query)
    ]  # fmt: skip


def states(conn: Connection, tenant_id: str) -> dict[str, ChasingState]:
    """Every customer's chasing state that differs from the default, in two queries."""
    found: dict[str, dict[str, object]] = {}
    s = customer_settings.c
    for row in conn.execute(select(customer_settings).where(s.tenant_id == tenant_id)):
        found[row.customer_id] = {
            "policy": row.policy, "do_not_chase": row.do_not_chase, "never_hold": row.never_hold,
            "paused_until": row.paused_until,
        }  # fmt: skip
    e = chasing_events.c
    open_events = select(e.customer_id, e.kind, e.invoice_id, e.until).where(
        e.tenant_id == tenant_id, e.closed_at.is_(None)
    )
    disputed: dict[str, set[str]] = {}
    for customer_id, kind, invoice_id, until in conn.execute(open_events):
        state = found.setdefault(customer_id, {})
        if kind == DISPUTE and invoice_id:
            disputed.setdefault(customer_id, set()).add(invoice_id)
        elif kind == PROMISE and invoice_id:
            promised = state.setdefault("promised", {})
            assert isinstance(promised, dict)
            if until is not None and (invoice_id not in promised or until > promised[invoice_id]):
                promised[invoice_id] = until
        elif kind == PROMISE:
            current = state.get("promise_until")
            state["promise_until"] = (
                until if not isinstance(current, date) or (until and until > current) else current
            )
        elif kind == PLAN:
            state["on_plan"] = True
    for customer_id, ids in disputed.items():
        found.setdefault(customer_id, {})["disputed"] = frozenset(ids)
    return {cid: ChasingState(**values) for cid, values in found.items()}  # type: ignore[arg-type]


# ---- what a person records (the CLI and the web pages call these, in the caller's transaction)


@dataclass(frozen=True, slots=True)
class OpenInvoice:
    invoice_id: str
    number: str  # its id when it has no number
    due_date: date | None
    amount_due: Money


def open_invoices(conn: Connection, tenant_id: str, customer_id: str) -> list[OpenInvoice]:
    """The customer's open invoices with something due, oldest due date first (as the ledger states them)."""
    i = invoices.c
    rows = conn.execute(
        select(i.id, i.number, i.due_date, i.amount_due, i.currency)
        .where(
            i.tenant_id == tenant_id,
            i.customer_id == customer_id,
            i.status == "open",
            i.amount_due > Decimal(0),
        )
        .order_by(i.due_date, i.issue_date, i.id)
    )
    return [
        OpenInvoice(r.id, r.number or r.id, r.due_date, Money(Decimal(r.amount_due), r.currency))
        for r in rows
    ]


def promised_invoices(
    conn: Connection, tenant_id: str, customer_id: str, named: list[str], amount: Money | None
) -> list[OpenInvoice]:
    """The invoices a promise covers: those `named` (numbers or ids, each the customer's and open); else the
    oldest open invoices the amount pays (the last one perhaps in part); else every open invoice."""
    found = open_invoices(conn, tenant_id, customer_id)
    if named:
        chosen: list[OpenInvoice] = []
        for text in named:
            invoice_id, owner, number = find_invoice(conn, tenant_id, text)
            if owner != customer_id:
                raise CustomerOrInvoiceNotFound(f"invoice {number or text} is another customer's")
            match = next((f for f in found if f.invoice_id == invoice_id), None)
            if match is None:
                raise CustomerOrInvoiceNotFound(f"invoice {number or text} is not open (nothing to promise)")
            if match not in chosen:
                chosen.append(match)
        return chosen
    if not found:
        raise CustomerOrInvoiceNotFound("the customer has no open invoice")
    if amount is None:
        return found
    chosen, left = [], amount.amount
    for invoice in found:
        if left <= 0:
            break
        if invoice.amount_due.currency == amount.currency:
            chosen.append(invoice)
            left -= invoice.amount_due.amount
    if not chosen:
        raise CustomerOrInvoiceNotFound(f"the customer has no open invoice in {amount.currency}")
    return chosen


def record_promise(
    conn: Connection,
    tenant_id: str,
    customer_id: str,
    covered: list[OpenInvoice],
    until: date,
    amount: Money | None,
    note: str,
    now: datetime,
) -> list[int]:
    """A promise to pay `amount` (if said) by `until`, on exactly the invoices `covered`: each gets its own
    `promise` event (a new promise on an invoice replaces its open one); other invoices are still chased."""
    return [
        open_event(conn, tenant_id, customer_id, PROMISE, now, note=note, invoice_id=inv.invoice_id,
                   until=until, amount=amount)
        for inv in covered
    ]  # fmt: skip


def record_dispute(
    conn: Connection, tenant_id: str, invoice: str, reason: str, now: datetime, *, resolve: bool = False
) -> tuple[str, str]:
    """Dispute (or, with `resolve`, settle the dispute on) the invoice whose number or id is `invoice`.

    Returns (customer id, invoice number). CustomerOrInvoiceNotFound: no such invoice, or (resolve) no open
    dispute on it."""
    invoice_id, customer_id, number = find_invoice(conn, tenant_id, invoice)
    shown = number or invoice_id
    if resolve:
        if not close_events(conn, tenant_id, customer_id, DISPUTE, "resolved", now, invoice_id):
            raise CustomerOrInvoiceNotFound(f"invoice {shown} has no open dispute")
    else:
        open_event(conn, tenant_id, customer_id, DISPUTE, now, note=reason, invoice_id=invoice_id)
    return customer_id, shown


def add_note(conn: Connection, tenant_id: str, customer_id: str, text: str, now: datetime) -> int:
    """ccm's own note on a customer, kept in its history (never replaces an earlier note)."""
    result = conn.execute(chasing_events.insert().values(
        tenant_id=tenant_id, customer_id=customer_id, kind=NOTE, note=text, opened_at=now, closed_at=now,
        outcome="noted",
    ))  # fmt: skip
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])
