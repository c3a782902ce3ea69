"""Reading one tenant's snapshot from the canonical store: one streamed query per table.

Built for 100,000s of records: money columns are read as their stored scaled integers and converted here,
and the values that repeat across records (customer ids, currencies, dates, zero amounts, rates) are shared
rather than held once per record, which roughly halves the snapshot's memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import fields
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Column, Connection, Date, Integer, Select, String, Table, select, type_coerce

from connector.model import (
    Allocation,
    CreditNote,
    Customer,
    CustomerStatus,
    Invoice,
    Money,
    Payment,
    PaymentKind,
    PaymentStatus,
    SourceKind,
    Status,
    check_currency,
)
from connector.reconcile.snapshot import Snapshot, builder, without_gc
from connector.store import Store
from connector.store.schema import allocations, credit_notes, customers, invoices, payments
from connector.store.tenants import get_tenant
from connector.store.types import MONEY_SCALE, RATE_SCALE, ScaledDecimal

_BATCH = 5000
_STATUS = {s.value: s for s in Status}
_PAYMENT_STATUS = {s.value: s for s in PaymentStatus}
_KIND = {k.value: k for k in PaymentKind}
_SOURCE = {k.value: k for k in SourceKind}
_Allocs = dict[tuple[str, str], list[Allocation]]


class _Strings(dict[str, str]):
    def __missing__(self, key: str) -> str:
        self[key] = key
        return key


class _Days(dict[Any, date]):
    def __missing__(self, key: Any) -> date:
        value = key if isinstance(key, date) else date.fromisoformat(key)
        self[key] = value
        return value


class _Rates(dict[int | None, Decimal | None]):
    def __missing__(self, key: int | None) -> Decimal | None:
        value = None if key is None else Decimal(key).scaleb(-RATE_SCALE)
        self[key] = value
        return value


class _Zeros(dict[str, Money]):
    def __missing__(self, key: str) -> Money:
        value = self[key] = Money.zero(key)
        return value


class _Currencies(dict[str, str]):
    """Currency codes, each checked once (as Money checks it) and shared."""

    def __missing__(self, key: str) -> str:
        value = self[key] = check_currency(key)
        return value


_new = object.__new__
_set_amount: Callable[[Money, Decimal], None] = Money.__dict__["amount"].__set__
_set_currency: Callable[[Money, str], None] = Money.__dict__["currency"].__set__


def _money(amount: Decimal, currency: str) -> Money:
    """`Money(amount, currency)` for a Decimal made here and a currency `_Currencies` checked: Money's own
    checks, once per distinct currency instead of once per amount (a snapshot builds 100,000s of them)."""
    money: Money = _new(Money)
    _set_amount(money, amount)
    _set_currency(money, currency)
    return money


_INVOICE_FIELDS = ("id", "customer_id", "total", "amount_due", "status", "issue_date", "due_date", "number",
                   "currency_rate", "updated_at")  # fmt: skip
if tuple(f.name for f in fields(Invoice)) != _INVOICE_FIELDS:  # pragma: no cover - a changed model
    raise ImportError("connector.reconcile.load: Invoice's fields changed; update _invoice")
(_SET_ID, _SET_CUSTOMER, _SET_TOTAL, _SET_DUE_AMOUNT, _SET_STATUS, _SET_ISSUED, _SET_DUE, _SET_NUMBER,
 _SET_RATE, _SET_UPDATED) = (Invoice.__dict__[name].__set__ for name in _INVOICE_FIELDS)  # fmt: skip


def _invoice(
    iid: str, cid: str, total: Money, due_amount: Money, status: Status, issued: date, due: date | None,
    number: str | None, rate: Decimal | None,
) -> Invoice:  # fmt: skip
    """`Invoice(...)` without its checks, for values built here: both amounts in the row's one currency, and
    no `updated_at` (None, the constructor's default). Half the constructor's cost, 100,000s of times per
    snapshot."""
    invoice: Invoice = _new(Invoice)
    _SET_ID(invoice, iid)
    _SET_CUSTOMER(invoice, cid)
    _SET_TOTAL(invoice, total)
    _SET_DUE_AMOUNT(invoice, due_amount)
    _SET_STATUS(invoice, status)
    _SET_ISSUED(invoice, issued)
    _SET_DUE(invoice, due)
    _SET_NUMBER(invoice, number)
    _SET_RATE(invoice, rate)
    _SET_UPDATED(invoice, None)
    return invoice


class _Shared:
    """Shares equal values between records: ids, currencies, dates, zero amounts and rates.

    Dicts with `__missing__`, because a plain subscript is the cheapest lookup Python has.
    """

    def __init__(self) -> None:
        self.text = _Strings()
        self.currency = _Currencies()
        self.day = _Days()
        self.rate = _Rates()
        self.zero = _Zeros()

    def money(self, scaled: int, currency: str) -> Money:
        if not scaled:
            return self.zero[currency]
        return _money(Decimal(scaled).scaleb(-MONEY_SCALE), self.currency[currency])


def _raw(column: Column[Any]) -> Any:
    """The column as stored: scaled integers for money and rates, ISO text or date for dates."""
    if isinstance(column.type, ScaledDecimal):
        return type_coerce(column, Integer)
    if isinstance(column.type, Date):
        return type_coerce(column, String)
    return column


def _rows(conn: Connection, table: Table, tenant_id: str, names: str) -> Iterator[Sequence[Any]]:
    """The tenant's rows in id order (the primary key's: no sort step on either backend). Records built in
    the order every later pass visits them lie in memory in that order: reconciliation walks 100,000s of
    invoices in id order several times a night, and records made in another order (SQLite's own is the
    customer index's) cost each pass cache misses worth more than its arithmetic."""
    columns = table.c
    query = select(*(_raw(columns[n]) for n in names.split())).where(columns.tenant_id == tenant_id)
    return _stream(conn, query.order_by(columns.id))


def _stream(conn: Connection, query: Select[Any]) -> Iterator[Sequence[Any]]:
    """The query's rows, streamed: PostgreSQL uses a server-side cursor, so memory holds the records, not
    also the raw rows. On SQLite, when no column converts its values on the way out (money, rates and dates
    are read raw here), the driver's own tuples, as SQLAlchemy would return them, without a Row apiece
    (inside the transaction SQLAlchemy began: the snapshot's queries all see the same data)."""
    dialect = conn.dialect
    compiled = query.compile(dialect=dialect)
    if (
        dialect.name != "sqlite"
        or not conn.in_transaction()
        or any(c.type.result_processor(dialect, None) is not None for c in query.selected_columns)
        or any(b.type.bind_processor(dialect) is not None for b in compiled.binds.values())
    ):
        yield from conn.execution_options(stream_results=True, yield_per=_BATCH).execute(query)
        return
    params = compiled.construct_params()
    driver = conn.connection.driver_connection  # the transaction's own connection
    assert driver is not None
    cursor = driver.cursor()
    try:
        cursor.execute(compiled.string, tuple(params[name] for name in compiled.positiontup or ()))
        while batch := cursor.fetchmany(_BATCH):
            yield from batch
    finally:
        cursor.close()


# The records' own constructors, without their checks, for values built here (currencies checked by
# `_Currencies`, no `updated_at`): 100,000s of records per snapshot. Every field by position.
_allocation = builder(Allocation, "source_kind source_id invoice_id amount date")
_customer = builder(
    Customer, "id name status email currency segments merged_into updated_at ledger_balance phone"
)
_payment = builder(
    Payment,
    "id customer_id amount unapplied date kind status reference currency_rate allocations updated_at",
)


def _allocations(conn: Connection, tenant_id: str, s: _Shared) -> dict[tuple[str, str], list[Allocation]]:
    found: dict[tuple[str, str], list[Allocation]] = {}
    a = allocations.c
    query = (
        select(a.source_kind, a.source_id, a.invoice_id, a.currency, _raw(a.amount), _raw(a.date))
        .where(a.tenant_id == tenant_id)
        .order_by(a.source_kind, a.source_id, a.seq)
    )
    for kind, sid, iid, currency, amount, when in _stream(conn, query):
        money = s.money(amount, s.text[currency])
        allocation = _allocation(
            _SOURCE[kind], sid, s.text[iid], money, None if when is None else s.day[when]
        )
        found.setdefault((kind, sid), []).append(allocation)
    return found


def _customers(conn: Connection, tenant_id: str, s: _Shared) -> tuple[Customer, ...]:
    names = "id name status email currency segments merged_into ledger_balance phone"
    checked = s.currency  # Customer's own currency check, once per currency
    return tuple(
        _customer(s.text[cid], name, CustomerStatus(status), email, currency and checked[s.text[currency]],
                  tuple(segments), merged, None,
                  None if balance is None else Decimal(balance).scaleb(-MONEY_SCALE), phone)
        for cid, name, status, email, currency, segments, merged, balance, phone
        in _rows(conn, customers, tenant_id, names)
    )  # fmt: skip


def _invoices(conn: Connection, tenant_id: str, s: _Shared) -> tuple[Invoice, ...]:
    names = "id customer_id currency total amount_due status issue_date due_date number currency_rate"
    found: list[Invoice] = []
    add, text, day, rates, money = found.append, s.text, s.day, s.rate, s.money
    checked, zero, unique = s.currency, s.zero, s.text.setdefault  # an invoice id is new to `text`
    for iid, cid, currency, total, due_amount, status, issued, due, number, rate in _rows(
        conn, invoices, tenant_id, names
    ):
        cur = text[currency]
        # s.money(total, cur), inlined: it runs once per invoice
        whole = _money(Decimal(total).scaleb(-MONEY_SCALE), checked[cur]) if total else zero[cur]
        add(_invoice(  # nothing paid yet (most open invoices): amount due is the total, shared
            unique(iid, iid), text[cid], whole, whole if due_amount == total else money(due_amount, cur),
            _STATUS[status], day[issued], None if due is None else day[due], number, rates[rate],
        ))  # fmt: skip
    return tuple(found)


def _credit_notes(conn: Connection, tenant_id: str, s: _Shared, allocs: _Allocs) -> tuple[CreditNote, ...]:
    names = "id customer_id currency total remaining status issue_date number currency_rate"
    found = []
    for cnid, cid, currency, total, left, status, issued, number, rate in _rows(
        conn, credit_notes, tenant_id, names
    ):
        cur = s.text[currency]
        found.append(CreditNote(
            cnid, s.text[cid], s.money(total, cur), s.money(left, cur), _STATUS[status], s.day[issued],
            number, s.rate[rate], tuple(allocs.pop(("credit_note", cnid), ())),
        ))  # fmt: skip
    return tuple(found)


def _payments(conn: Connection, tenant_id: str, s: _Shared, allocs: _Allocs) -> tuple[Payment, ...]:
    names = "id customer_id currency amount unapplied date kind status reference currency_rate"
    found = []
    for pid, cid, currency, amount, left, when, kind, status, ref, rate in _rows(
        conn, payments, tenant_id, names
    ):
        cur = s.text[currency]
        found.append(_payment(
            pid, cid and s.text[cid], s.money(amount, cur), s.money(left, cur), s.day[when], _KIND[kind],
            _PAYMENT_STATUS[status], ref, s.rate[rate], tuple(allocs.pop(("payment", pid), ())), None,
        ))  # fmt: skip
    return tuple(found)


@without_gc
def read_snapshot(conn: Connection, tenant_id: str) -> Snapshot:
    """The tenant's canonical records as a Snapshot (raises UnknownTenant)."""
    tenant = get_tenant(conn, tenant_id)
    shared = _Shared()
    custs = _customers(conn, tenant_id, shared)
    invs = _invoices(conn, tenant_id, shared)
    allocs = _allocations(conn, tenant_id, shared)
    credits = _credit_notes(conn, tenant_id, shared, allocs)
    pays = _payments(conn, tenant_id, shared, allocs)
    return Snapshot(tenant, custs, invs, credits, pays)


def load_snapshot(store: Store, tenant_id: str) -> Snapshot:
    """Read the tenant's snapshot in one read transaction (a consistent view on both backends)."""
    with store.read() as conn:
        return read_snapshot(conn, tenant_id)
