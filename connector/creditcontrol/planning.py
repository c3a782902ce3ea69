"""Planning credit holds and releases: every customer's account, tonight's decisions, their outbox actions.

Exposure = open balance - unapplied credit (optionally plus drafts), in the limit's currency. Hold decisions
come from the pure rules in connector/rules/credit.py, screened by the ledger's truth
(connector/rules/ledger_truth.py), and go through the outbox like every side effect. Unapplied money while
invoices are open is not a reason to hold: `unapplied_flags` asks the bookkeeper. `decide_on` is pure over a
Basis and what `store.standing` read, so the night computes it once and shares it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Connection

from connector.creditcontrol.store import Held, Standing, standing
from connector.model import CustomerStatus, Money, Status, check_currency, parse_money
from connector.outbox import NewAction
from connector.payloads import HoldPayload, Kind
from connector.reconcile import Basis, Snapshot
from connector.reconcile.snapshot import builder, without_gc
from connector.rules import ledger_truth
from connector.rules.credit import HOLD, RELEASE, Account, Decision, Rule, evaluate

# by position, unchecked (the caller's values are checked ones): one of each per customer, every night
_account = builder(
    Account,
    "customer_id name exposure limit overdue overdue_numbers dunning_level rating manual manual_reason"
    " on_hold held_by_rule open unapplied net behaviour",
)
_money = builder(Money, "amount currency")
_ZERO = Decimal(0)
_Overdue = dict[str, list[tuple[int, Decimal]]]
_Numbers = dict[str, list[str]]


def _overdue(basis: Basis, levels: Mapping[str, int]) -> tuple[_Overdue, _Numbers, dict[str, int]]:
    """Per customer: (days overdue, outstanding in base) of each overdue invoice, their numbers in the same
    order, and the highest reminder level sent on any open invoice. One pass over the open invoices."""
    today, to_base, sent_level = basis.today, basis.rates.to_base, levels.get
    overdue: _Overdue = {}
    numbers: _Numbers = {}
    level: dict[str, int] = {}
    is_open, zero = Status.OPEN, Decimal(0)
    for state in basis.ledger.open_states:  # outstanding > 0
        inv = state.invoice
        if inv.status is not is_open:
            continue
        cid = inv.customer_id
        days = (today - (inv.due_date or inv.issue_date)).days  # state.days_past_due(today), without calls
        if days > 0:  # converted only when it counts: planning runs this for every customer each night
            in_base = to_base(state.outstanding, inv.total.currency, inv.currency_rate) or zero
            found = overdue.get(cid)
            if found is None:
                overdue[cid] = [(days, in_base)]
                numbers[cid] = [inv.number or f"invoice {inv.id}"]
            else:
                found.append((days, in_base))
                numbers[cid].append(inv.number or f"invoice {inv.id}")
        if levels:
            sent = sent_level(inv.id, 0)
            if sent and sent > level.get(cid, 0):
                level[cid] = sent
    return overdue, numbers, level


def _drafts(basis: Basis) -> dict[str, Decimal]:
    """Per customer, the base-currency total of their draft invoices."""
    drafts: dict[str, Decimal] = {}
    zero, to_base = Decimal(0), basis.rates.to_base
    for inv in basis.snapshot.invoices:
        if inv.status is Status.DRAFT:
            value = to_base(inv.total.amount, inv.currency, inv.currency_rate) or zero
            drafts[inv.customer_id] = drafts.get(inv.customer_id, zero) + value
    return drafts


def accounts(
    basis: Basis,
    limit_of: Mapping[str, Money],
    held: Mapping[str, Held],
    manual: Mapping[str, tuple[str | None, str]],
    levels: Mapping[str, int],
    include_drafts: bool = False,
) -> list[Account]:
    """Every customer the ledger still has, as credit control sees them, exposure in the limit's currency."""
    snapshot, rates, behaviours = basis.snapshot, basis.rates, basis.behaviours
    overdue, numbers, level = _overdue(basis, levels)
    drafts = _drafts(basis) if include_drafts else {}
    found: list[Account] = []
    add = found.append
    base, one, cent, zero = check_currency(snapshot.tenant.base_currency), Decimal(1), Decimal("0.01"), _ZERO
    base_zero = _money(zero, base)  # shared by every customer without a position
    deleted, positions, limit_get, manual_get, held_get = (
        CustomerStatus.DELETED, basis.positions.get, limit_of.get, manual.get, held.get,
    )  # fmt: skip
    no_manual: tuple[str | None, str] = (None, "")
    for customer in snapshot.customers:
        if customer.status is deleted:
            continue  # gone from the ledger: there is nothing there to hold or release
        cid = customer.id
        position = positions(cid)
        if position is not None:
            balance = position.base
            exposure_base = balance.net + drafts.get(cid, zero)  # as ever: Decimal addition normalises -0
            open_money, unapplied_money = _money(balance.open, base), _money(balance.unapplied, base)
        else:
            exposure_base = zero + drafts.get(cid, zero)
            open_money = unapplied_money = base_zero
        limit = limit_get(cid)
        currency = limit.currency if limit else base
        rate = rates.rate_for(currency, None) if currency != base else one
        # Without a known rate the exposure stays in base currency, so an over-limit rule cannot fire on it.
        exposure = (
            _money((exposure_base * rate).quantize(cent), currency) if rate else _money(exposure_base, base)
        )
        mode, reason = manual_get(cid, no_manual)
        current = held_get(cid)
        on_hold = bool(current is not None and current.on_hold)
        behaviour = behaviours.get(cid)
        add(_account(
            cid, customer.name, exposure, limit, tuple(overdue.get(cid, ())), tuple(numbers.get(cid, ())),
            level.get(cid, 0), None if behaviour is None else behaviour.rating, mode, reason, on_hold,
            on_hold and current is not None and current.source == "rule", open_money, unapplied_money,
            _money(exposure_base, base), behaviour,
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
            kind=Kind(d.action),
            channel="ledger",
            customer_id=d.customer_id,
            payload=HoldPayload(
                names.get(d.customer_id, d.customer_id),
                d.reason,
                "manual" if d.reason.startswith("manual hold") else "rule",
            ),
            send_after=now,
            replay_safe=True,
        )
        for d in decisions
    ]
