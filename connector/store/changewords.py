"""The sync log's changes in a bookkeeper's words, never ids where a name exists.

    INV-000275 (Acme Joinery Trading): amount due 292.80 → 0.00, status open → paid
    payment of £1,200.00 on 2026-11-03 from Acme Joinery Trading: new
    Cedar Garden Centre LLP: e-mail old@cedar.example → accounts@cedar.example
    Cedar Garden Centre LLP: phone none → +44 20 7946 0958

Records are named from the store as it is now (a record deleted since is still there, marked deleted); a
record the store no longer knows (its tenant's records replaced) keeps its ledger id, said as such.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from sqlalchemy import Connection, Table, select

from connector.store.schema import credit_notes, customers, invoices, payments
from connector.store.synclog import ChangeRow
from connector.words.locale import money, number

_CHUNK = 500
_MONEY_FIELDS = frozenset({"total", "amount_due", "amount", "unapplied", "remaining", "ledger_balance"})
_FIELD_WORDS = {
    "amount_due": "amount due", "due_date": "due date", "issue_date": "issue date", "currency_rate":
    "exchange rate", "remaining": "credit remaining", "unapplied": "unapplied", "email": "e-mail",
    "merged_into": "merged into", "segments": "groups", "ledger_balance": "balance in the ledger",
    "customer_id": "customer", "allocations": "allocations", "phone": "phone",
}  # fmt: skip
_OPS = {"insert": "new", "delete": "deleted", "update": "changed"}


@dataclass(frozen=True, slots=True)
class Described:
    """One change in words: the record named (`subject`) and what happened to it (`what`)."""

    subject: str  # 'INV-000275 (Acme Joinery Trading)'
    what: str  # 'new', 'deleted: not returned by a full read', 'amount due 292.80 → 0.00, status open → paid'

    def line(self) -> str:
        """The change as one line: "INV-000275 (Acme Joinery Trading): amount due 292.80 → 0.00"."""
        return f"{self.subject}: {self.what}"


def _money(text: str | None) -> str:
    if text is None:
        return "none"
    try:
        return number(Decimal(text))  # in the locale of the firm whose log is read
    except InvalidOperation:
        return text


def _with_currency(text: str, currency: str) -> str:
    try:
        return money(Decimal(text), currency)  # "£1,200.00", in the locale of the firm whose log is read
    except (InvalidOperation, ValueError):  # not a number, or not a currency babel knows: as stored
        return f"{text} {currency}"


def _value(field: str, text: str | None, names: dict[str, str]) -> str:
    if text is None:
        return "none"
    if field in _MONEY_FIELDS:
        return _money(text)
    if field == "status":
        return text.lower().replace("_", " ")
    if field in ("customer_id", "merged_into"):
        return names.get(text, text)
    return text


def _fields(change: ChangeRow, names: dict[str, str]) -> str:
    parts = []
    for field, (old, new) in change.fields.items():
        if field == "reason":
            continue
        word = _FIELD_WORDS.get(field, field.replace("_", " "))
        if field == "allocations":
            parts.append(f"allocated to {new} invoice(s), was {old}")
            continue
        parts.append(f"{word} {_value(field, old, names)} → {_value(field, new, names)}")
    return ", ".join(parts)


def _rows(conn: Connection, table: Table, tenant_id: str, ids: Sequence[str]) -> dict[str, dict[str, object]]:
    found: dict[str, dict[str, object]] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        query = select(table).where(table.c.tenant_id == tenant_id, table.c.id.in_(chunk))
        found.update((row["id"], dict(row)) for row in conn.execute(query).mappings())
    return found


def describe(conn: Connection, tenant_id: str, changes: Iterable[ChangeRow]) -> list[Described]:
    """Each change with its record named, in the order given.

    Invoices and credit notes by number and customer, payments by amount, date and customer, customers by
    name. Reads the named records in a few queries (not one per change); a record no longer stored keeps
    its ledger id, said as such.
    """
    listed = list(changes)
    wanted: dict[str, set[str]] = {}
    for ch in listed:
        wanted.setdefault(ch.entity, set()).add(ch.record_id)
    tables = {"invoice": invoices, "credit_note": credit_notes, "payment": payments, "customer": customers}
    rows = {e: _rows(conn, tables[e], tenant_id, sorted(ids)) for e, ids in wanted.items() if e in tables}
    customer_ids = {
        str(r["customer_id"])
        for e in ("invoice", "credit_note", "payment")
        for r in rows.get(e, {}).values()
        if r["customer_id"] is not None
    }
    for ch in listed:
        for f, pair in ch.fields.items():
            if f in ("customer_id", "merged_into"):
                customer_ids.update(str(v) for v in pair if v)
    names = {cid: str(r["name"]) for cid, r in rows.get("customer", {}).items()}
    missing = sorted(customer_ids - names.keys())
    names.update((cid, str(r["name"])) for cid, r in _rows(conn, customers, tenant_id, missing).items())
    found = []
    for ch in listed:
        subject = _subject(ch, rows.get(ch.entity, {}).get(ch.record_id), names)
        if ch.op == "update":
            what = _fields(ch, names) or "changed"
        else:
            what = _OPS.get(ch.op, ch.op)
            reason = ch.fields.get("reason", [None, None])[1]
            if reason:
                what += f": {reason}"
        found.append(Described(subject, what))
    return found


def _subject(ch: ChangeRow, row: dict[str, object] | None, names: dict[str, str]) -> str:
    kind = ch.entity.replace("_", " ")
    if row is None:
        return f"{kind} with ledger id {ch.record_id} (no longer in the store)"
    if ch.entity == "customer":
        return str(row["name"])
    who = names.get(str(row["customer_id"]), "an unknown customer")
    if ch.entity in ("invoice", "credit_note"):
        number = row.get("number") or f"{kind} with ledger id {ch.record_id}"
        return f"{number} ({who})"
    if ch.entity == "payment":
        amount = _with_currency(str(row["amount"]), str(row["currency"]))
        label = {"overpayment": "overpayment", "prepayment": "prepayment"}.get(
            str(row.get("kind")), "payment"
        )
        ref = f", ref {row['reference']}" if row.get("reference") else ""
        return f"{label} of {amount} on {row['date']} from {who}{ref}"
    return f"{kind} {ch.record_id}"
