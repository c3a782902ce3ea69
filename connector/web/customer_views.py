"""What the customer pages show, read from the store: the list (searched, paginated) and one customer.

One customer's page is read as the night reads it (connector/run/plan.py: the reconciled Basis, the chasing
state, the reminder history, the backlog cutoff), so "next step" says what the next night would do with each
open invoice, in names and invoice numbers. Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Connection, func, or_, select

from connector import backlog, chasing, outbox
from connector import creditcontrol as credit
from connector.config import Settings
from connector.ledger import Ledger
from connector.model import Money, Tenant
from connector.outbox import Action, State
from connector.payloads import Kind, Payload, ReminderPayload, reason_of
from connector.reconcile import Basis, load_snapshot
from connector.reconcile.explain import explain
from connector.reconcile.ledger import InvoiceState
from connector.rules.dunning import Evaluation, Reminder, Skipped
from connector.rules.policy import Policy
from connector.run.plan import Context, actions_for, evaluate_with_backlog
from connector.store import Store
from connector.store.schema import customers, invoices, web_audit
from connector.store.schema import outbox as outbox_table
from connector.web import preview, snapshots
from connector.web.snapshots import Books
from connector.words.locale import money

PAGE_SIZE = 50
PREVIEW_DAYS = 120  # how far ahead "preview the next reminder" looks when none is due today


# ---- the list


@dataclass(frozen=True, slots=True)
class ListRow:
    customer_id: str
    name: str
    email: str
    open_invoices: int
    outstanding: str  # the ledger's amounts due, per currency
    ledger_balance: str


@dataclass(frozen=True, slots=True)
class ListPage:
    rows: list[ListRow]
    query: str
    page: int
    pages: int
    total: int


def search(conn: Connection, tenant_id: str, query: str, page: int, size: int = PAGE_SIZE) -> ListPage:
    """Customers whose name holds `query` (any case), or whose id or an invoice's number it is; by name."""
    c, i = customers.c, invoices.c
    where = [c.tenant_id == tenant_id, c.merged_into.is_(None)]
    text = query.strip()
    if text:
        owns = select(i.customer_id).where(i.tenant_id == tenant_id, func.lower(i.number) == text.lower())
        like = "%" + _escaped(text.lower()) + "%"
        where.append(or_(func.lower(c.name).like(like, escape="\\"), c.id == text, c.id.in_(owns)))
    total = int(conn.execute(select(func.count()).select_from(customers).where(*where)).scalar_one())
    pages = max(1, -(-total // size))
    page = min(max(page, 1), pages)
    found = conn.execute(
        select(c.id, c.name, c.email, c.ledger_balance, c.currency)
        .where(*where)
        .order_by(func.lower(c.name), c.id)
        .limit(size)
        .offset((page - 1) * size)
    ).all()
    ids = [r.id for r in found]
    due: dict[str, dict[str, Decimal]] = {}
    counts: dict[str, int] = {}
    if ids:
        rows = conn.execute(
            select(i.customer_id, i.currency, func.count(), func.sum(i.amount_due))
            .where(
                i.tenant_id == tenant_id,
                i.customer_id.in_(ids),
                i.status == "open",
                i.amount_due > Decimal(0),
            )
            .group_by(i.customer_id, i.currency)
        )
        for cid, currency, n, amount in rows:
            counts[cid] = counts.get(cid, 0) + int(n)
            due.setdefault(cid, {})[currency] = Decimal(amount)
    return ListPage([
        ListRow(r.id, r.name, r.email or "", counts.get(r.id, 0),
                ", ".join(money(v, k) for k, v in sorted(due.get(r.id, {}).items())) or "nothing due",
                money(Decimal(r.ledger_balance), r.currency or "") if r.ledger_balance is not None
                else "not reported")
        for r in found
    ], text, page, pages, total)  # fmt: skip


# ---- one customer


@dataclass(frozen=True, slots=True)
class InvoiceRow:
    invoice_id: str
    number: str
    due_date: date
    days_overdue: int
    outstanding: str
    level: str  # the last level sent, in words
    next_step: str
    promised: bool
    disputed: bool


@dataclass(frozen=True, slots=True)
class Moment:
    at: datetime
    kind: str  # reminder | call | hold | dispute | promise | plan | note | change | ...
    text: str


@dataclass(frozen=True, slots=True)
class CustomerPage:
    customer_id: str
    name: str
    email: str
    phone: str
    today: date
    currency: str
    position: dict[str, str]  # open, overdue, unapplied, net exposure (ccm's, in the base currency)
    ledger_balance: str
    balance_differs: str | None
    rating: str
    risk: str
    why_rating: tuple[str, ...]
    limit: str
    over_limit: bool
    hold: str
    chasing_words: tuple[str, ...]  # the customer-wide state in words ("paused until ...", "never held", ...)
    invoices: list[InvoiceRow]
    timeline: list[Moment]
    state: chasing.ChasingState
    later: tuple[date, ...]  # the days later reminder levels fall due (where the preview looks ahead)


class NoSuchCustomer(LookupError):
    pass


def customer_id_of(conn: Connection, tenant_id: str, customer_id: str) -> tuple[str, str]:
    """(id, name) of the customer; NoSuchCustomer when the firm has none by that id."""
    c = customers.c
    found = conn.execute(select(c.id, c.name).where(c.tenant_id == tenant_id, c.id == customer_id)).first()
    if found is None:
        raise NoSuchCustomer(customer_id)
    return str(found.id), str(found.name)


def _level_words(ctx: Context, number: int) -> str:
    names = {lv.name for p in ctx.policies.policies if (lv := p.level(number)) is not None}
    return f"{number} ({', '.join(sorted(names))})" if names else str(number)


def _next_steps(
    ctx: Context, evaluation: Evaluation, kept: Sequence[backlog.Kept], policy: Policy,
    last: dict[str, tuple[int, date]], cid: str, items: Sequence[InvoiceState], today: date,
) -> tuple[dict[str, str], list[date]]:  # fmt: skip
    """invoice id -> what the next night does with it, in words; and the days later levels fall due."""
    steps: dict[str, str] = {}
    later: list[date] = []
    for r in evaluation.reminders:
        if r.customer_id == cid:
            for line in r.lines:
                how = "by e-mail" if r.channel == "email" else r.channel.replace("_", " ")
                steps[line.item.invoice_id] = f"{line.level.name} due now ({how})"
    for s in evaluation.skipped:
        if s.customer_id == cid:
            steps[s.invoice_id] = f"level {s.level} due, not sent: {s.reason.value}" + (
                f" ({s.detail})" if s.detail else ""
            )
    for k in kept:
        if k.customer_id == cid:
            steps[k.invoice_id] = f"kept back: {k.days_at_connection} days overdue when ccm was connected"
    for state in items:
        iid = state.invoice.id
        if iid in steps:
            continue
        number = last.get(iid, (0, None))[0] + 1
        level = policy.level(number)
        while level is not None and level.offset < 0 and today >= state.due:
            number += 1
            level = policy.level(number)
        if level is None:
            steps[iid] = "every reminder level has been sent"
            continue
        on = ctx.calendar.add_days(state.due, level.offset, business=policy.days == "business")
        steps[iid] = f"{level.name} on {on}"
        later.append(on)
    return steps, later


@dataclass(frozen=True)
class _Firm:
    """What a customer's page reads of the whole firm: computed once per books and ccm's state of the firm
    (connector/web/snapshots.py), shared by every customer's page."""

    evaluation: dict[str, Evaluation]  # per customer: tonight's reminders and skips for it
    kept: dict[str, tuple[backlog.Kept, ...]]  # per customer: invoices the backlog cutoff keeps back
    states: dict[str, chasing.ChasingState]
    last: dict[str, tuple[int, date]]
    limits: dict[str, Money]  # with the segments' defaults
    held: dict[str, credit.Held]
    open_of: dict[str, tuple[InvoiceState, ...]]  # per customer: invoices with something outstanding, by due


def _firm(store: Store, settings: Settings, ctx: Context, books: Books) -> _Firm:
    kept = snapshots.of(store)
    key = (books.key, kept.ccm(books.tenant.id), settings)
    return kept.once(books.tenant.id, "customers.firm", key, lambda: _read_firm(store, settings, ctx, books))


def _read_firm(store: Store, settings: Settings, ctx: Context, books: Books) -> _Firm:
    tid = books.tenant.id
    evaluation, _, kept = evaluate_with_backlog(store, ctx, books.today, books.basis)
    with store.read() as conn:
        states = chasing.states(conn, tid)
        last = outbox.last_levels(conn, tid)
        limits = credit.with_segment_defaults(
            books.snapshot, credit.limits(conn, tid), settings.credit.segment_limits
        )
        held = credit.holds(conn, tid)
    open_of: dict[str, list[InvoiceState]] = {}
    for s in books.basis.ledger.invoices.values():
        if s.outstanding > 0:
            open_of.setdefault(s.invoice.customer_id, []).append(s)
    reminders: dict[str, list[Reminder]] = {}
    skipped: dict[str, list[Skipped]] = {}
    kept_of: dict[str, list[backlog.Kept]] = {}
    for r in evaluation.reminders:
        reminders.setdefault(r.customer_id, []).append(r)
    for k in evaluation.skipped:
        skipped.setdefault(k.customer_id, []).append(k)
    for b in kept:
        kept_of.setdefault(b.customer_id, []).append(b)
    of = {
        cid: Evaluation(tuple(reminders.get(cid, ())), tuple(skipped.get(cid, ())), ())
        for cid in reminders.keys() | skipped.keys()
    }
    return _Firm(
        of, {cid: tuple(found) for cid, found in kept_of.items()}, dict(states), dict(last), limits, held,
        {cid: tuple(sorted(found, key=lambda s: (s.due, s.invoice.id))) for cid, found in open_of.items()},
    )  # fmt: skip


def prepare(store: Store, settings: Settings, tenant: Tenant, today: date) -> None:
    """Compute what every customer's page reads of the firm (after its night: the first view is fast)."""
    kept = snapshots.of(store)
    _firm(store, settings, kept.context(settings, tenant), kept.books(settings, tenant, today))


def customer_page(store: Store, settings: Settings, tenant: Tenant, cid: str, today: date) -> CustomerPage:
    kept_books = snapshots.of(store)
    ctx = kept_books.context(settings, tenant)
    books = kept_books.books(settings, tenant, today)
    snapshot, basis = books.snapshot, books.basis
    customer = snapshot.customers_by_id.get(cid) if hasattr(snapshot, "customers_by_id") else None
    if customer is None:
        raise NoSuchCustomer(cid)
    firm = _firm(store, settings, ctx, books)
    evaluation = firm.evaluation.get(cid, Evaluation((), (), ()))  # the customer's part: all that is read
    kept = firm.kept.get(cid, ())
    base = tenant.base_currency
    state = firm.states.get(cid, chasing.ChasingState())
    last = firm.last
    limit = firm.limits.get(cid)
    held = firm.held.get(cid)
    with store.read() as conn:
        manual = manual_hold(conn, tenant.id, cid)
        history = chasing.events(conn, tenant.id, cid)
        actions = _actions_of(conn, tenant.id, cid)
        changes = _changes_of(conn, tenant.id, cid)
    behaviour = basis.behaviours.get(cid)
    position = basis.positions.get(cid)
    balance = position.base if position is not None else None
    net = balance.net if balance is not None else Decimal(0)
    mine = firm.open_of.get(cid, ())
    risk = behaviour.risk.value if behaviour is not None else None
    policy = ctx.policies.choose(customer.segments, risk, state.policy)
    steps, later = _next_steps(ctx, evaluation, kept, policy, last, cid, mine, today)
    rows = [
        InvoiceRow(
            s.invoice.id, s.invoice.number or s.invoice.id, s.due, max(s.days_past_due(today), 0),
            money(s.outstanding, s.invoice.currency),
            _level_words(ctx, last[s.invoice.id][0]) + f", sent {last[s.invoice.id][1]}"
            if s.invoice.id in last else "none sent yet",
            steps.get(s.invoice.id, ""), s.invoice.id in state.promised, s.invoice.id in state.disputed,
        )
        for s in mine
    ]  # fmt: skip
    words = []
    if state.do_not_chase:
        words.append("never chased (do-not-chase)")
    if state.paused_until:
        words.append(f"reminders paused until {state.paused_until}")
    if state.on_plan:
        words.append("on a payment plan: not chased")
    if state.promise_until:
        words.append(f"promised to pay everything by {state.promise_until}")
    if state.never_hold:
        words.append("never held automatically")
    if state.policy:
        words.append(f"own policy: {state.policy}")
    on_hold = held is not None and held.on_hold
    hold = f"on hold since {held.since:%Y-%m-%d}: {held.reason}" if on_hold and held else "not on hold"
    if manual is not None:
        hold += f" · manual hold asked ({manual}); it reaches the ledger with the next night"
    check = basis.agreement.balances.get(cid)
    return CustomerPage(
        cid, customer.name, customer.email or "", customer.phone or "", today, base,
        {"open": money(balance.open if balance else Decimal(0), base),
         "overdue": money(balance.overdue if balance else Decimal(0), base),
         "unapplied": money(balance.unapplied if balance else Decimal(0), base),
         "net exposure": money(net, base)},
        money(customer.ledger_balance, customer.currency or base) if customer.ledger_balance is not None
        else "not reported by the ledger",
        check.explanation if check is not None else None,
        (behaviour.rating or "unrated") if behaviour else "unrated", risk or "unknown",
        explain(behaviour, base) if behaviour else (), str(limit) if limit else "none",
        bool(limit and limit.currency == base and net > limit.amount), hold, tuple(words), rows,
        _timeline(history, actions, changes), state, tuple(sorted(set(later))),
    )  # fmt: skip


def manual_hold(conn: Connection, tenant_id: str, cid: str) -> str | None:
    from connector.store.schema import customer_settings

    s = customer_settings.c
    row = conn.execute(
        select(s.manual_hold, s.manual_hold_reason).where(s.tenant_id == tenant_id, s.customer_id == cid)
    ).first()
    return (row.manual_hold_reason or "no reason") if row is not None and row.manual_hold else None


def _actions_of(conn: Connection, tenant_id: str, cid: str) -> list[Action]:
    o = outbox_table.c
    keys = conn.execute(
        select(o.key)
        .where(o.tenant_id == tenant_id, o.customer_id == cid)
        .order_by(o.planned_at.desc())
        .limit(200)
    ).scalars()
    return outbox.by_keys(conn, tenant_id, list(keys))


def _changes_of(conn: Connection, tenant_id: str, cid: str) -> list[tuple[datetime, str, str]]:
    a = web_audit.c
    rows = conn.execute(
        select(a.at, a.who, a.what)
        .where(a.tenant_id == tenant_id, a.what.like(f"customer.% {_escaped(cid)} · %", escape="\\"))
        .order_by(a.at.desc())
        .limit(100)
    )
    return [(r.at, r.who, r.what) for r in rows]


def _escaped(text: str) -> str:
    """`text` matched literally by LIKE ... ESCAPE '\\'."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _numbers(action: Action) -> str:
    return ", ".join(action.payload.invoice_numbers() if isinstance(action.payload, ReminderPayload) else ())


_EVENTS = frozenset({"dispute", "resolve", "promise", "plan", "plan_end", "note"})
_CHANGES = {
    "pause": "paused reminders", "resume": "resumed reminders", "dnc": "marked do-not-chase",
    "dnc_off": "chased again", "hold": "asked for a manual hold", "release": "lifted the manual hold",
    "never_hold": "never hold automatically", "never_hold_off": "the rules may hold again",
    "limit": "set the credit limit",
}  # fmt: skip


def _timeline(
    history: list[chasing.Event], actions: list[Action], changes: list[tuple[datetime, str, str]]
) -> list[Moment]:
    found: list[Moment] = []
    for e in history:
        on = f" {e.invoice_number}" if e.invoice_number else ""
        text = {
            chasing.DISPUTE: f"invoice{on} disputed: {e.note or 'no reason given'}",
            chasing.PROMISE: f"promised to pay{' ' + str(e.amount) if e.amount else ''}"
            f"{' on' + on if on else ' everything'} by {e.until}",
            chasing.PLAN: "payment plan" + (f" until {e.until}" if e.until else ""),
            chasing.NOTE: f"note: {e.note}",
        }.get(e.kind, f"{e.kind}{on}")
        if e.kind != chasing.NOTE and e.note and e.kind != chasing.DISPUTE:
            text += f" ({e.note})"
        if e.closed_at is not None and e.kind != chasing.NOTE:
            text += f"; {e.outcome or 'closed'} {e.closed_at:%Y-%m-%d}"
        found.append(Moment(e.opened_at, e.kind, text))
    for a in actions:
        level = a.payload.level_name if isinstance(a.payload, ReminderPayload) else ""
        if a.kind == "reminder":
            what = f"reminder{' (' + str(level) + ')' if level else ''} on {_numbers(a)}"
            kind = "reminder"
        elif a.kind == "call_task":
            what, kind = f"call task on {_numbers(a)}", "call"
        else:
            what, kind = f"{a.kind.replace('_', ' ')}: {reason_of(a.payload) or a.reason or ''}", "hold"
        found.append(
            Moment(
                a.planned_at,
                kind,
                f"{what}: {a.state}"
                + (f" ({a.reason})" if a.reason and a.state in (State.CANCELLED, State.FAILED) else ""),
            )
        )
    for at, who, what in changes:
        done = what.split(" ", 1)[0].removeprefix("customer.")
        if done not in _EVENTS:  # those are in the timeline as the events they recorded
            found.append(Moment(at, "change", f"{who} on the customer page: {_CHANGES.get(done, done)}"))
    return sorted(found, key=lambda m: m.at, reverse=True)


# ---- the next reminder, as it would read


def _action(reminder: Reminder, payload: Payload, now: datetime, tenant_id: str) -> Action:
    return Action(tenant_id, reminder.key, Kind.REMINDER, reminder.channel, reminder.customer_id, payload,
                  State.PLANNED, False, now, now, 0, None, None, now)  # fmt: skip


def next_reminder(
    store: Store, settings: Settings, tenant: Tenant, page: CustomerPage, now: datetime,
    ledger: Ledger | None = None,
) -> tuple[date, preview.Preview] | None:  # fmt: skip
    """The next e-mail reminder the customer would get, drafted by the code that sends it (as the approvals
    page shows it, connector/web/preview.py): today's, else the one on the first day within PREVIEW_DAYS that
    a level falls due or a pause or promise ends; None when there is none in that time."""
    ctx = Context.load(settings, tenant)
    snapshot = load_snapshot(store, tenant.id)
    drafter = preview.executor(store, settings, ctx, ledger)
    st = page.state
    ends = [d + timedelta(days=1) for d in (st.paused_until, st.promise_until, *st.promised.values()) if d]
    horizon = page.today + timedelta(days=PREVIEW_DAYS)
    days = sorted({page.today, *(d for d in (*page.later, *ends) if page.today < d <= horizon)})
    for day in days[:6]:
        evaluation, _, _ = evaluate_with_backlog(store, ctx, day, Basis.of(snapshot, day, ctx.rating))
        mine = [r for r in evaluation.reminders if r.customer_id == page.customer_id and r.channel == "email"]
        if not mine:
            continue
        new = {n.key: n for n in actions_for(evaluation, snapshot, ctx, now)}
        reminder = mine[0]
        action = _action(reminder, new[reminder.key].payload, now, tenant.id)
        numbers = tuple(line.item.number or line.item.invoice_id for line in reminder.lines)
        what = "reminder by e-mail"
        return day, preview.drafted(drafter, action, reminder, snapshot, day, page.name, what, numbers)
    return None


def money_of(amount: Money) -> str:
    return money(amount.amount, amount.currency)
