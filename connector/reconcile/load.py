"""Reading one tenant's snapshot from the canonical store: one streamed query per table.

Built for 100,000s of records: money columns are read as their stored scaled integers and converted here,
and the values that repeat across records (customer ids, currencies, dates, zero amounts, rates) are shared
rather than held once per record, which roughly halves the snapshot's memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Column, Connection, Date, Integer, String, Table, select, type_coerce

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
)
from connector.reconcile.snapshot import Snapshot, without_gc
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


class _Shared:
    """Shares equal values between records: ids, currencies, dates, zero amounts and rates.

    Dicts with `__missing__`, because a plain subscript is the cheapest lookup Python has.
    """

    def __init__(self) -> None:
        self.text = _Strings()
        self.day = _Days()
        self.rate = _Rates()
        self.zero = _Zeros()

    def money(self, scaled: int, currency: str) -> Money:
        return Money(Decimal(scaled).scaleb(-MONEY_SCALE), currency) if scaled else self.zero[currency]


def _raw(column: Column[Any]) -> Any:
    """The column as stored: scaled integers for money and rates, ISO text or date for dates."""
    if isinstance(column.type, ScaledDecimal):
        return type_coerce(column, Integer)
    if isinstance(column.type, Date):
        return type_coerce(column, String)
    return column


def _rows(conn: Connection, table: Table, tenant_id: str, names: str) -> Iterator[Any]:
    query = select(*(_raw(table.c[n]) for n in names.split())).where(table.c.tenant_id == tenant_id)
    # Streamed: PostgreSQL uses a server-side cursor, so memory holds the records, not also the raw rows.
    yield from conn.execution_options(stream_results=True, yield_per=_BATCH).execute(query)


def _allocations(conn: Connection, tenant_id: str, s: _Shared) -> dict[tuple[str, str], list[Allocation]]:
    found: dict[tuple[str, str], list[Allocation]] = {}
    a = allocations.c
    query = (
        select(a.source_kind, a.source_id, a.invoice_id, a.currency, _raw(a.amount), _raw(a.date))
        .where(a.tenant_id == tenant_id)
        .order_by(a.source_kind, a.source_id, a.seq)
    )
    stream = conn.execution_options(stream_results=True, yield_per=_BATCH).execute(query)
    for kind, sid, iid, currency, amount, when in stream:
        money = s.money(amount, s.text[currency])
        allocation = Allocation(_SOURCE[kind], sid, s.text[iid], money, None if when is None else s.day[when])
        found.setdefault((kind, sid), []).append(allocation)
    return found


def _customers(conn: Connection, tenant_id: str, s: _Shared) -> tuple[Customer, ...]:
    names = "id name status email currency segments merged_into ledger_balance"
    return tuple(
        Customer(s.text[cid], name, CustomerStatus(status), email, currency and s.text[currency],
                 tuple(segments), merged, ledger_balance=None if balance is None
                 else Decimal(balance).scaleb(-MONEY_SCALE))
        for cid, name, status, email, currency, segments, merged, balance
        in _rows(conn, customers, tenant_id, names)
    )  # fmt: skip


def _invoices(conn: Connection, tenant_id: str, s: _Shared) -> tuple[Invoice, ...]:
    names = "id customer_id currency total amount_due status issue_date due_date number currency_rate"
    found = []
    for iid, cid, currency, total, due_amount, status, issued, due, number, rate in _rows(
        conn, invoices, tenant_id, names
    ):
        cur = s.text[currency]
        found.append(Invoice(
            s.text[iid], s.text[cid], s.money(total, cur), s.money(due_amount, cur), _STATUS[status],
            s.day[issued], None if due is None else s.day[due], number, s.rate[rate],
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
        found.append(Payment(
            pid, cid and s.text[cid], s.money(amount, cur), s.money(left, cur), s.day[when], _KIND[kind],
            _PAYMENT_STATUS[status], ref, s.rate[rate], tuple(allocs.pop(("payment", pid), ())),
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
