"""Credit control over the store: limits, exposure, applied holds, planning holds and releases.

Limits are ccm's own (set by `ccm limit set`, imported from CSV, or defaulted per segment in ccm.toml).
Exposure = open balance - unapplied credit (optionally plus drafts), in the limit's currency. Hold decisions
come from the pure rules in connector/rules/credit.py and go through the outbox like every side effect.
Unapplied money while invoices are open is not a reason to hold: `unapplied_flags` asks the bookkeeper.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Connection, select, update

from connector import outbox
from connector.chasing import NotFound, find_customer, parse_amount
from connector.limits import peak_exposure, suggest
from connector.model import CustomerStatus, Money, Status, Tenant, parse_money
from connector.outbox import NewAction
from connector.reconcile import Basis, Snapshot
from connector.reconcile.snapshot import without_gc
from connector.rules import ledger_truth
from connector.rules.credit import HOLD, RELEASE, Account, Decision, Rule, evaluate
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
    return _csv_text(path, raw)


def _csv_text(path: Path | str, raw: bytes) -> str:
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


def _records(path: Path | str, text: str) -> Iterator[tuple[int, list[str]]]:
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
    return _import(conn, tenant, path, _read_csv_text(path), now)


def import_limits_upload(conn: Connection, tenant: Tenant, name: str, raw: bytes, now: datetime) -> int:
    """`import_limits` for a file's bytes (an upload); errors name it `name`, exactly as the CLI's would."""
    return _import(conn, tenant, name, _csv_text(name, raw), now)


def _import(conn: Connection, tenant: Tenant, path: Path | str, text: str, now: datetime) -> int:
    records = _records(path, text)
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
    numbers: dict[str, list[str]] = {}
    level: dict[str, int] = {}
    to_base, sent_level = rates.to_base, levels.get
    for state in basis.ledger.open():  # outstanding > 0
        inv = state.invoice
        if inv.status is not Status.OPEN:
            continue
        cid = inv.customer_id
        days = (today - (inv.due_date or inv.issue_date)).days  # state.days_past_due(today), without calls
        if days > 0:  # converted only when it counts: planning runs this for every customer each night
            in_base = to_base(state.outstanding, inv.total.currency, inv.currency_rate) or Decimal(0)
            if cid in overdue:
                overdue[cid].append((days, in_base))
                numbers[cid].append(inv.number or f"invoice {inv.id}")
            else:
                overdue[cid] = [(days, in_base)]
                numbers[cid] = [inv.number or f"invoice {inv.id}"]
        sent = sent_level(inv.id, 0)
        if sent and sent > level.get(cid, 0):
            level[cid] = sent
    drafts: dict[str, Decimal] = {}
    if include_drafts:
        for inv in snapshot.invoices:
            if inv.status is Status.DRAFT:
                value = rates.to_base(inv.total.amount, inv.currency, inv.currency_rate) or Decimal(0)
                drafts[inv.customer_id] = drafts.get(inv.customer_id, Decimal(0)) + value
    found = []
    base, one, cent, zero = snapshot.tenant.base_currency, Decimal(1), Decimal("0.01"), Decimal(0)
    for customer in snapshot.customers:
        if customer.status is CustomerStatus.DELETED:
            continue  # gone from the ledger: there is nothing there to hold or release
        position = basis.positions.get(customer.id)
        exposure_base = (position.base.net if position else zero) + drafts.get(customer.id, zero)
        limit = limit_of.get(customer.id)
        open_base = position.base.open if position else zero
        unapplied_base = position.base.unapplied if position else zero
        currency = limit.currency if limit else base
        rate = rates.rate_for(currency, None) if currency != base else one
        # Without a known rate the exposure stays in base currency, so an over-limit rule cannot fire on it.
        exposure = (
            Money((exposure_base * rate).quantize(cent), currency) if rate else Money(exposure_base, base)
        )
        mode, reason = manual.get(customer.id, (None, ""))
        current = held.get(customer.id)
        found.append(Account(
            customer_id=customer.id, name=customer.name, exposure=exposure, limit=limit,
            overdue=tuple(overdue.get(customer.id, ())), overdue_numbers=tuple(numbers.get(customer.id, ())),
            dunning_level=level.get(customer.id, 0), behaviour=basis.behaviours.get(customer.id),
            rating=rating.get(customer.id), manual=mode,  # type: ignore[arg-type]
            manual_reason=reason, on_hold=bool(current and current.on_hold),
            held_by_rule=bool(current and current.on_hold and current.source == "rule"),
            open=Money(open_base, base), unapplied=Money(unapplied_base, base),
            net=Money(exposure_base, base),
        ))  # fmt: skip
    return found


def held_after(held: Mapping[str, Held], decisions: Iterable[Decision]) -> frozenset[str]:
    """Who is on hold once tonight's decisions are carried out: the ledger's holds now, plus tonight's
    holds, less tonight's releases. Reminders are worded (or skipped) by this, so a customer put on hold
    tonight is never sent tonight's gentle reminder."""
    found = {cid for cid, h in held.items() if h.on_hold}
    for d in decisions:
        if d.action == HOLD:
            found.add(d.customer_id)
        elif d.action == RELEASE:
            found.discard(d.customer_id)
    return frozenset(found)


def unapplied_flags(accounts: Iterable[Account]) -> list[tuple[str, str]]:
    """(customer id, flag) for every customer with money unapplied while invoices are open: a question for
    the bookkeeper (apply it, or refund it), never a reason to hold."""
    found = []
    for a in sorted(accounts, key=lambda a: a.customer_id):
        if a.open is None or a.unapplied is None or a.open.amount <= 0 or a.unapplied.amount <= 0:
            continue
        net = a.owed
        found.append((a.customer_id, (
            f"{a.name}: {a.unapplied} unapplied while {a.open} is open (net exposure {net}); apply it to "
            "the open invoices in the ledger or refund it"
            + ("; not held, as nothing is owed net" if net.amount <= 0 else "")
        )))  # fmt: skip
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


def standing(
    conn: Connection, tenant_id: str, last_levels: Mapping[str, tuple[int, date]] | None = None
) -> Standing:
    """Read what `decide_on` needs, in one (read) transaction (`last_levels`: already read by the caller)."""
    if last_levels is None:
        last_levels = outbox.last_levels(conn, tenant_id)
    levels = {iid: lv for iid, (lv, _) in last_levels.items()}
    return Standing(limits(conn, tenant_id), holds(conn, tenant_id), _manual(conn, tenant_id), levels)


_DECIDED = "credit.decide_on"  # the key of `decide_on`'s result in `Basis.memo`


@without_gc
def decide_on(
    basis: Basis,
    found: Standing,
    rules: Sequence[Rule],
    include_drafts: bool = False,
    segment_limits: Mapping[str, str] | None = None,
) -> tuple[list[Decision], list[Account]]:
    """Hold decisions for every customer: pure over the basis and what was read from the store.

    Pure, so computed once per basis for the same inputs: the night's planning (`holds_tonight`) and its
    writing of the holds (`plan_holds`) read the same store state and share the result.
    """
    asked = (found, tuple(rules), include_drafts, dict(segment_limits or {}))
    earlier = basis.memo.get(_DECIDED)
    if earlier is not None and earlier[0] == asked:
        return list(earlier[1]), list(earlier[2])
    limit_of = with_segment_defaults(basis.snapshot, found.limits, segment_limits or {})
    seen = accounts(basis, limit_of, found.held, found.manual, found.levels, include_drafts)
    decisions = ledger_truth.screen(evaluate(seen, rules), seen, basis.agreement)
    basis.memo[_DECIDED] = (asked, tuple(decisions), tuple(seen))
    return decisions, seen


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


__all__ = ["HOLD", "Held", "LimitFileError", "Standing", "accounts", "decide", "decide_on", "held_after",
           "hold_actions", "holds", "import_limits", "import_limits_upload", "limits", "parse_limit",
           "parse_money", "peak_exposure", "record_hold", "set_limit", "standing", "suggest",
           "unapplied_flags", "with_segment_defaults"]  # fmt: skip
