"""Credit control over the store: limits, exposure, applied holds, planning holds and releases.

Limits are ccm's own (set by `ccm limit set`, imported from CSV, or defaulted per segment in ccm.toml).
Exposure = open balance - unapplied credit (optionally plus drafts), in the limit's currency. Hold decisions
come from the pure rules in connector/rules/credit.py and go through the outbox like every side effect.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Connection, select, update

from connector import outbox
from connector.chasing import NotFound, find_customer, parse_amount
from connector.model import CustomerStatus, Money, Status, Tenant, parse_money
from connector.outbox import NewAction
from connector.reconcile import Basis, Snapshot
from connector.reconcile.snapshot import without_gc
from connector.rules.credit import HOLD, Account, Decision, Rule, evaluate
from connector.store.schema import credit_holds, credit_limits, customer_settings


class LimitFileError(ValueError):
    """A limits CSV has bad rows; the message lists each with its line number. Nothing was imported."""


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


def parse_limit(text: str, base_currency: str) -> Money:
    """A credit limit as typed ('5000', '5,000.00 EUR'): 0 or more (0: no credit at all), plain digits,
    at most 4 decimal places, under 10**14; else ValueError with a one-line reason."""
    return parse_amount(text, base_currency, zero=True)


def _read_csv_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise LimitFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise LimitFileError(
            f"{path}: line {line}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); save it as CSV UTF-8"
        ) from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise LimitFileError(f"{path}: line {line}: not a CSV text file (it holds NUL bytes)")
    return text


def _records(path: Path, text: str) -> Iterator[tuple[int, list[str]]]:
    """(line the record starts on, its fields) for every non-blank record; quoted newlines kept."""
    reader = csv.reader(io.StringIO(text, newline=""))
    while True:
        start = reader.line_num + 1
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise LimitFileError(f"{path}: line {start}: not valid CSV: {exc}") from None
        if any(field.strip() for field in record):
            yield start, record


def import_limits(conn: Connection, tenant: Tenant, path: Path, now: datetime) -> int:
    """Import `customer,amount[,currency]` rows (with a header) all or nothing; returns how many.

    Every bad row is reported with the line it starts on. A customer named twice with the same limit is
    fine; with different limits it is an error naming both lines (which one was meant is not ours to guess).
    """
    records = _records(path, _read_csv_text(path))
    first = next(records, None)
    header = [h.strip().lower() for h in first[1]] if first else []
    if "customer" not in header or "amount" not in header:
        raise LimitFileError(
            f"{path}: line {first[0] if first else 1}: the header must name the columns customer and amount "
            "(and currency)"
        )
    for name in ("customer", "amount", "currency"):
        if header.count(name) > 1:
            raise LimitFileError(f"{path}: line {first[0] if first else 1}: the header names {name} twice")
    column = {name: i for i, name in enumerate(header)}
    found: dict[str, tuple[int, Money, str]] = {}
    problems: list[str] = []
    for number, record in records:
        row = {name: (record[i].strip() if i < len(record) else "") for name, i in column.items()}
        try:
            if not row["customer"]:
                raise ValueError("no customer given")
            customer_id, name = find_customer(conn, tenant.id, row["customer"])
            amount = row["amount"] + (f" {row['currency']}" if row.get("currency") else "")
            limit = parse_limit(amount, tenant.base_currency)
        except (NotFound, ValueError) as exc:
            problems.append(f"line {number}: {exc}")
            continue
        earlier = found.get(customer_id)
        if earlier is None:
            found[customer_id] = (number, limit, name)
        elif earlier[1] != limit:
            problems.append(
                f"lines {earlier[0]} and {number}: two different limits for {name} ({earlier[1]} and {limit})"
            )
    if problems:
        shown = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise LimitFileError(f"{path}: nothing imported: {shown}")
    for customer_id, (_, limit, _) in found.items():
        set_limit(conn, tenant.id, customer_id, limit, now, "import")
    return len(found)


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


def _manual(conn: Connection, tenant_id: str) -> dict[str, tuple[str | None, str]]:
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


def accounts(
    basis: Basis,
    limit_of: Mapping[str, Money],
    held: Mapping[str, Held],
    manual: Mapping[str, tuple[str | None, str]],
    levels: Mapping[str, int],
    include_drafts: bool = False,
) -> list[Account]:
    """Every customer the ledger still has, as credit control sees them, exposure in the limit's currency."""
    snapshot, today, rates = basis.snapshot, basis.today, basis.rates
    rating = {cid: b.rating for cid, b in basis.behaviours.items()}
    overdue: dict[str, list[tuple[int, Decimal]]] = {}
    level: dict[str, int] = {}
    for state in basis.ledger.invoices.values():
        inv = state.invoice
        if inv.status is not Status.OPEN or state.outstanding <= 0:
            continue
        days = state.days_past_due(today)
        in_base = rates.to_base(state.outstanding, inv.currency, inv.currency_rate) or Decimal(0)
        if days > 0:
            overdue.setdefault(inv.customer_id, []).append((days, in_base))
        level[inv.customer_id] = max(level.get(inv.customer_id, 0), levels.get(inv.id, 0))
    drafts: dict[str, Decimal] = {}
    if include_drafts:
        for inv in snapshot.invoices:
            if inv.status is Status.DRAFT:
                value = rates.to_base(inv.total.amount, inv.currency, inv.currency_rate) or Decimal(0)
                drafts[inv.customer_id] = drafts.get(inv.customer_id, Decimal(0)) + value
    found = []
    for customer in snapshot.customers:
        if customer.status is CustomerStatus.DELETED:
            continue  # gone from the ledger: there is nothing there to hold or release
        position = basis.positions.get(customer.id)
        exposure_base = (position.base.net if position else Decimal(0)) + drafts.get(customer.id, Decimal(0))
        limit = limit_of.get(customer.id)
        base = snapshot.tenant.base_currency
        currency = limit.currency if limit else base
        rate = rates.rate_for(currency, None) if currency != base else Decimal(1)
        # Without a known rate the exposure stays in base currency, so an over-limit rule cannot fire on it.
        exposure = (
            Money((exposure_base * rate).quantize(Decimal("0.01")), currency)
            if rate
            else Money(exposure_base, base)
        )
        mode, reason = manual.get(customer.id, (None, ""))
        current = held.get(customer.id)
        found.append(Account(
            customer_id=customer.id, name=customer.name, exposure=exposure, limit=limit,
            overdue=tuple(overdue.get(customer.id, ())), dunning_level=level.get(customer.id, 0),
            rating=rating.get(customer.id), manual=mode,  # type: ignore[arg-type]
            manual_reason=reason, on_hold=bool(current and current.on_hold),
            held_by_rule=bool(current and current.on_hold and current.source == "rule"),
        ))  # fmt: skip
    return found


def with_segment_defaults(
    snapshot: Snapshot, explicit: Mapping[str, Money], segment_limits: Mapping[str, str]
) -> dict[str, Money]:
    """Explicit limits, else the default of the customer's first segment that has one (ccm.toml)."""
    found = dict(explicit)
    base = snapshot.tenant.base_currency
    for customer in snapshot.customers:
        if customer.id in found:
            continue
        for segment in customer.segments:
            if segment in segment_limits:
                found[customer.id] = parse_money(segment_limits[segment], base)
                break
    return found


@dataclass(frozen=True, slots=True)
class Standing:
    """What credit control reads from the store besides the snapshot: limits, holds, manual ones, levels."""

    limits: Mapping[str, Money]
    held: Mapping[str, Held]
    manual: Mapping[str, tuple[str | None, str]]
    levels: Mapping[str, int]


def standing(conn: Connection, tenant_id: str) -> Standing:
    """Read what `decide_on` needs, in one (read) transaction."""
    levels = {iid: lv for iid, (lv, _) in outbox.last_levels(conn, tenant_id).items()}
    return Standing(limits(conn, tenant_id), holds(conn, tenant_id), _manual(conn, tenant_id), levels)


@without_gc
def decide_on(
    basis: Basis,
    found: Standing,
    rules: Sequence[Rule],
    include_drafts: bool = False,
    segment_limits: Mapping[str, str] | None = None,
) -> tuple[list[Decision], list[Account]]:
    """Hold decisions for every customer: pure over the basis and what was read from the store."""
    limit_of = with_segment_defaults(basis.snapshot, found.limits, segment_limits or {})
    seen = accounts(basis, limit_of, found.held, found.manual, found.levels, include_drafts)
    return evaluate(seen, rules), seen


def decide(
    conn: Connection,
    snapshot: Snapshot,
    today: date,
    rules: Sequence[Rule],
    include_drafts: bool = False,
    segment_limits: Mapping[str, str] | None = None,
    basis: Basis | None = None,
) -> tuple[list[Decision], list[Account]]:
    """Hold decisions for every customer (pass `basis` when the night already computed it)."""
    if basis is None or basis.today != today or basis.snapshot is not snapshot:
        basis = Basis.of(snapshot, today)
    return decide_on(basis, standing(conn, snapshot.tenant.id), rules, include_drafts, segment_limits)


def hold_key(tenant_id: str, customer_id: str, action: str, today: date, after: str = "") -> str:
    """One key per customer, direction, day and the state it changes (`after`: the key of the action that
    made the current hold state): planning twice in a night yields one action, while a customer released
    and held again on the same day gets a new one."""
    text = f"{tenant_id}|{customer_id}|{action}|{today.isoformat()}|{after}"
    return f"{action}-" + hashlib.sha256(text.encode()).hexdigest()[:32]


def hold_actions(
    decisions: Sequence[Decision],
    snapshot: Snapshot,
    today: date,
    now: datetime,
    held: Mapping[str, Held] | None = None,
) -> list[NewAction]:
    names = snapshot.customer_names
    previous = {cid: h.action_key for cid, h in (held or {}).items()}
    return [
        NewAction(
            key=hold_key(snapshot.tenant.id, d.customer_id, d.action, today, previous.get(d.customer_id, "")),
            kind=d.action,
            channel="ledger",
            customer_id=d.customer_id,
            payload={
                "customer_name": names.get(d.customer_id, d.customer_id),
                "reason": d.reason,
                "source": "manual" if d.reason.startswith("manual hold") else "rule",
            },
            send_after=now,
            replay_safe=True,
        )
        for d in decisions
    ]


@dataclass(frozen=True, slots=True)
class Suggestion:
    customer_id: str
    name: str
    rating: str | None
    limit: Money | None
    suggested: Money
    reason: str


def _nice(amount: Decimal) -> Decimal:
    """Round up to a figure a person would set: the next 500 (100 under 1,000)."""
    step = Decimal(100) if amount < 1000 else Decimal(500)
    return ((amount / step).to_integral_value(rounding="ROUND_CEILING")) * step


def peak_exposure(basis: Basis) -> dict[str, Decimal]:
    """Per customer, the highest total of open invoices (base currency) on any day of the past year."""
    today, rates = basis.today, basis.rates
    since = date(today.year - 1, today.month, min(today.day, 28))
    events: dict[str, list[tuple[date, Decimal]]] = {}
    for state in basis.ledger.invoices.values():
        inv = state.invoice
        total = rates.to_base(inv.total.amount, inv.currency, inv.currency_rate) or Decimal(0)
        end = state.paid_on or today
        if end < since:
            continue
        events.setdefault(inv.customer_id, []).extend([(max(inv.issue_date, since), total), (end, -total)])
    peaks: dict[str, Decimal] = {}
    for customer_id, changes in events.items():
        level = peak = Decimal(0)
        for _, change in sorted(changes, key=lambda e: (e[0], e[1] < 0)):
            level += change
            peak = max(peak, level)
        peaks[customer_id] = peak
    return peaks


def suggest(snapshot: Snapshot, today: date, limit_of: Mapping[str, Money]) -> list[Suggestion]:
    """Idle credit lines worth raising (A/B payers whose limit is well below what they reliably pay) and
    limits too high for a D/E rating (well above anything they paid)."""
    basis = Basis.of(snapshot, today)
    rated = basis.behaviours
    peaks = peak_exposure(basis)
    base = snapshot.tenant.base_currency
    found = []
    for customer_id, peak in sorted(peaks.items()):
        behaviour = rated.get(customer_id)
        rating = behaviour.rating if behaviour else None
        limit = limit_of.get(customer_id)
        name = snapshot.customer_name(customer_id)
        current = limit.amount if limit and limit.currency == base else None
        if rating in ("A", "B") and peak > 0 and (current is None or current < peak * Decimal("0.8")):
            target = _nice(peak * Decimal("1.25"))
            why = f"rating {rating}: paid reliably with up to {peak:,.2f} {base} open"
            found.append(Suggestion(customer_id, name, rating, limit, Money(target, base), why))
        elif rating in ("D", "E") and current is not None and current > max(peak, Decimal(1)) * 2:
            target = _nice(peak) if peak > 0 else Decimal(0)
            why = f"rating {rating}: the limit is over twice the most they have had open ({peak:,.2f} {base})"
            found.append(Suggestion(customer_id, name, rating, limit, Money(target, base), why))
    return found


__all__ = ["HOLD", "Held", "LimitFileError", "Standing", "accounts", "decide", "decide_on", "hold_actions",
           "holds", "import_limits", "limits", "parse_limit", "parse_money", "peak_exposure", "record_hold",
           "set_limit", "standing", "suggest", "with_segment_defaults"]  # fmt: skip
