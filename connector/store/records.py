"""Keyed bulk upserts of canonical records, with per-field change detection.

One page at a time: read the stored rows for the page's ids (one query), compare, then write only what
changed with INSERT ... ON CONFLICT DO UPDATE, and return the change rows. Re-reading an unchanged record
writes nothing, so overlap re-reads never duplicate change rows.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Table, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql import Insert

from connector.model import Allocation, CreditNote, Customer, Invoice, Payment, Record
from connector.store import bulk
from connector.store.schema import RECORD_TABLES, allocations
from connector.store.types import MONEY_SCALE, RATE_SCALE, ScaledDecimal

_MONEY = ScaledDecimal(MONEY_SCALE)
_RATE = ScaledDecimal(RATE_SCALE)
_CHUNK = 500  # ids per IN (...) query: well under every backend's parameter limit
_STREAM_BATCH = 5000  # rows fetched at a time by a streamed read
DELETED = "deleted"
# Bookkeeping, not content: a record whose only change is its timestamp is not rewritten or logged.
_QUIET = frozenset({"updated_at"})


@dataclass(frozen=True, slots=True)
class RowChange:
    """One record's change as the sync log keeps it.

    Attributes:
        op: insert, update, or delete (a record whose status became deleted, by the ledger or a full read).
        fields: Per changed field, [old, new] as text; empty for an insert. An allocations change is
            [old count, new count]; a deletion by a full read also has "reason": [None, why].
    """

    entity: str
    record_id: str
    op: str  # insert | update | delete
    fields: dict[str, list[str | None]]  # field -> [old, new]; empty for inserts


def _m(value: Decimal) -> Decimal:
    return _MONEY.quantize(value)


def _r(value: Decimal | None) -> Decimal | None:
    return None if value is None else _RATE.quantize(value)


def to_row(record: Record) -> dict[str, Any]:
    """The table row (without tenant_id) for a canonical record, rounded exactly as it will be stored."""
    if isinstance(record, Invoice):
        return {
            "id": record.id, "customer_id": record.customer_id, "number": record.number,
            "currency": record.currency, "total": _m(record.total.amount),
            "amount_due": _m(record.amount_due.amount), "status": str(record.status),
            "issue_date": record.issue_date, "due_date": record.due_date,
            "currency_rate": _r(record.currency_rate), "updated_at": record.updated_at,
        }  # fmt: skip
    if isinstance(record, Payment):
        return {
            "id": record.id, "customer_id": record.customer_id, "kind": str(record.kind),
            "status": str(record.status), "currency": record.currency, "amount": _m(record.amount.amount),
            "unapplied": _m(record.unapplied.amount), "date": record.date, "reference": record.reference,
            "currency_rate": _r(record.currency_rate), "updated_at": record.updated_at,
        }  # fmt: skip
    if isinstance(record, CreditNote):
        return {
            "id": record.id, "customer_id": record.customer_id, "number": record.number,
            "currency": record.currency, "total": _m(record.total.amount),
            "remaining": _m(record.remaining.amount), "status": str(record.status),
            "issue_date": record.issue_date, "currency_rate": _r(record.currency_rate),
            "updated_at": record.updated_at,
        }  # fmt: skip
    if isinstance(record, Customer):
        return {
            "id": record.id, "name": record.name, "status": str(record.status), "email": record.email,
            "currency": record.currency, "segments": list(record.segments),
            "merged_into": record.merged_into, "updated_at": record.updated_at,
            "ledger_balance": None if record.ledger_balance is None else _m(record.ledger_balance),
            "phone": record.phone,
        }  # fmt: skip
    raise TypeError(f"not a canonical record: {type(record).__name__}")


def _alloc_rows(record: Record) -> list[tuple[str, str, Decimal, date | None]]:
    allocs: Sequence[Allocation] = getattr(record, "allocations", ())
    return [(a.invoice_id, a.amount.currency, _m(a.amount.amount), a.date) for a in allocs]


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal | date):
        return str(value)
    return str(value)


def _upsert_statement(conn: Connection, table: Table) -> Insert:
    pk = [c.name for c in table.primary_key.columns]
    dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
    stmt = dialect.insert(table)
    updates = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in pk}
    return stmt.on_conflict_do_update(index_elements=pk, set_=updates)


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def _existing(
    conn: Connection, table: Table, tenant_id: str, ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    cols = [c for c in table.columns if c.name != "tenant_id"]
    for chunk in _chunks(ids):
        query = select(*cols).where(table.c.tenant_id == tenant_id, table.c.id.in_(chunk))
        for row in conn.execute(query).mappings():
            found[row["id"]] = dict(row)
    return found


def _existing_allocations(
    conn: Connection, tenant_id: str, source_kind: str, ids: Sequence[str]
) -> dict[str, list[tuple[str, str, Decimal, date | None]]]:
    found: dict[str, list[tuple[str, str, Decimal, date | None]]] = {}
    a = allocations.c
    for chunk in _chunks(ids):
        query = (
            select(a.source_id, a.invoice_id, a.currency, a.amount, a.date)
            .where(a.tenant_id == tenant_id, a.source_kind == source_kind, a.source_id.in_(chunk))
            .order_by(a.source_id, a.seq)
        )
        for sid, inv, cur, amount, when in conn.execute(query):
            found.setdefault(sid, []).append((inv, cur, amount, when))
    return found


def upsert(conn: Connection, tenant_id: str, entity: str, records: Sequence[Record]) -> list[RowChange]:
    """Insert or update `records` of one entity for one tenant; return what changed, field by field.

    Runs inside the caller's transaction. Duplicate ids in one page: the last one wins. A record equal to
    the stored one (its `updated_at` aside) writes nothing and yields no change, so re-reading is
    harmless. A payment's or credit note's allocations are replaced whole when they changed.

    Args:
        entity: invoice, payment, credit_note or customer.
        records: Canonical records of that entity.

    Returns:
        One RowChange per record inserted or changed, in the order of first appearance.
    """
    if not records:
        return []
    table = RECORD_TABLES[entity]
    latest: dict[str, Record] = {r.id: r for r in records}
    ids = list(latest)
    before = _existing(conn, table, tenant_id, ids)
    source_kind = entity if entity in ("payment", "credit_note") else None
    allocs_before = _existing_allocations(conn, tenant_id, source_kind, ids) if source_kind else {}

    writes: list[dict[str, Any]] = []
    realloc: list[tuple[str, list[tuple[str, str, Decimal, date | None]]]] = []
    changes: list[RowChange] = []
    for rid, record in latest.items():
        row = to_row(record)
        new_allocs = _alloc_rows(record) if source_kind else []
        old = before.get(rid)
        if old is None:
            op, diff = "insert", {}
        else:
            diff = {k: [_text(old[k]), _text(v)] for k, v in row.items() if old[k] != v and k not in _QUIET}
            old_allocs = allocs_before.get(rid, [])
            if source_kind and old_allocs != new_allocs:
                diff["allocations"] = [str(len(old_allocs)), str(len(new_allocs))]
            if not diff:
                continue
            op = "delete" if row.get("status") == DELETED and old.get("status") != DELETED else "update"
        changes.append(RowChange(entity, rid, op, diff))
        row["tenant_id"] = tenant_id
        writes.append(row)
        if source_kind and (old is None or "allocations" in diff):
            realloc.append((rid, new_allocs))

    if writes:
        bulk.executemany(conn, f"upsert:{table.name}", lambda: _upsert_statement(conn, table), table, writes)
    if realloc and source_kind:
        a = allocations.c
        replaced = [rid for rid, _ in realloc]
        for chunk in _chunks(replaced):
            conn.execute(
                delete(allocations).where(
                    a.tenant_id == tenant_id, a.source_kind == source_kind, a.source_id.in_(chunk)
                )
            )
        alloc_rows = [
            {"tenant_id": tenant_id, "source_kind": source_kind, "source_id": rid, "seq": seq,
             "invoice_id": inv, "currency": cur, "amount": amount, "date": when}
            for rid, rows in realloc
            for seq, (inv, cur, amount, when) in enumerate(rows)
        ]  # fmt: skip
        bulk.executemany(conn, "insert:allocations", allocations.insert, allocations, alloc_rows)
    return changes


def mark_deleted(conn: Connection, tenant_id: str, entity: str, ids: Sequence[str]) -> list[RowChange]:
    """The ledger says these records are gone: keep them marked deleted so history and notes resolve.

    Ids not stored, or already deleted, are skipped. Runs inside the caller's transaction.

    Returns:
        One "delete" RowChange per record marked.
    """
    if not ids:
        return []
    table = RECORD_TABLES[entity]
    unique = list(dict.fromkeys(ids))
    live: list[tuple[str, str]] = []
    for chunk in _chunks(unique):
        query = select(table.c.id, table.c.status).where(
            table.c.tenant_id == tenant_id, table.c.id.in_(chunk), table.c.status != DELETED
        )
        live.extend((rid, status) for rid, status in conn.execute(query))
    return _mark(conn, table, tenant_id, entity, live, {})


def mark_missing(
    conn: Connection, tenant_id: str, entity: str, seen: Container[str], reason: str
) -> list[RowChange]:
    """Mark deleted every live record of `entity` whose id is not in `seen` (what a full read returned).

    The same marking as `mark_deleted`, each change row also saying why. Reads ids and statuses only,
    streamed, so memory holds `seen` and the records to mark, never whole records.
    """
    table = RECORD_TABLES[entity]
    query = (
        select(table.c.id, table.c.status)
        .where(table.c.tenant_id == tenant_id, table.c.status != DELETED)
        .order_by(table.c.id)
        .execution_options(stream_results=True, yield_per=_STREAM_BATCH)  # this query only, not the update
    )
    missing = [(rid, status) for rid, status in conn.execute(query) if rid not in seen]
    return _mark(conn, table, tenant_id, entity, missing, {"reason": [None, reason]})


def _mark(
    conn: Connection,
    table: Table,
    tenant_id: str,
    entity: str,
    live: Sequence[tuple[str, str]],
    why: dict[str, list[str | None]],
) -> list[RowChange]:
    """Set `live` records' status to deleted, exactly as when the ledger itself reports a deletion.

    Their allocations stay but no longer count (their source is not live).
    """
    for chunk in _chunks([rid for rid, _ in live]):
        conn.execute(
            update(table).where(table.c.tenant_id == tenant_id, table.c.id.in_(chunk)).values(status=DELETED)
        )
    return [RowChange(entity, rid, "delete", {"status": [status, DELETED], **why}) for rid, status in live]


def load(
    conn: Connection, tenant_id: str, entity: str, ids: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """Stored rows of one entity for one tenant (all, or those with `ids`), ordered by id.

    Deleted records are included (their status says so); ids not stored are left out. Each row is a dict
    of the table's columns without tenant_id, money as Decimal.
    """
    table = RECORD_TABLES[entity]
    cols = [c for c in table.columns if c.name != "tenant_id"]
    query = select(*cols).where(table.c.tenant_id == tenant_id).order_by(table.c.id)
    if ids is not None:
        query = query.where(table.c.id.in_(list(ids)))
    return [dict(r) for r in conn.execute(query).mappings()]
