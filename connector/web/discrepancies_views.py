"""What /t/{tenant}/discrepancies shows: `ccm discrepancies`' findings, each record named and linked.

The findings are the CLI's (`find_discrepancies` over the snapshot, as the ledger stands now), explanation
included. Each record ("invoice:ID", "payment:ID", ...) is named as the sync log names it (invoice number and
customer, payment amount, date and customer, customer name) and linked to its page in the ledger's own web
app through the adapter's `record_url` (no link where the ledger has no such page). The rows are computed
once per firm and records (connector/web/snapshots.py), shared by every request until the next sync.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from connector import ledger as registry
from connector.model import Tenant
from connector.reconcile import Discrepancy, Rates, Snapshot, allocate, find_discrepancies
from connector.store import Store, changewords
from connector.store.synclog import ChangeRow
from connector.web import snapshots

_KINDS = {
    "amount_due_mismatch": "amount due differs",
    "negative_outstanding": "paid more than its total",
    "paid_without_payment": "paid with no payment",
    "allocation_to_dead_invoice": "paid to a voided or deleted invoice",
    "allocation_to_unknown_invoice": "paid to an invoice not synced",
    "currency_mismatch": "paid in another currency",
    "unapplied_cash": "money not applied",
    "missing_rate": "no exchange rate",
    "balance_mismatch": "balance differs",
}
_GONE = "(no longer in the store)"
Linker = Callable[[str, str], str | None]  # (kind, ledger id) -> the record's page in the ledger's web app


@dataclass(frozen=True, slots=True)
class Record:
    label: str  # 'INV-000275 (Acme Joinery Trading)'
    url: str | None  # the record in the ledger's web app


@dataclass(frozen=True, slots=True)
class Row:
    kind: str  # in words
    customer: str
    customer_url: str | None  # the customer in the ledger's web app
    amounts: tuple[str, ...]  # 'ledger amount due 292.80 GBP'
    explanation: str
    records: tuple[Record, ...]


def kind_words(kind: str) -> str:
    return _KINDS.get(kind, kind.replace("_", " "))


def rows(store: Store, tenant: Tenant) -> list[Row]:
    """Every discrepancy of the firm, in the CLI's order (kept until its records change: do not modify)."""
    kept = snapshots.of(store)
    records, snapshot = kept.snapshot(tenant)
    return kept.once(
        tenant.id, "discrepancies", (records, tenant.ledger), lambda: _rows(store, tenant, snapshot)
    )


def _rows(store: Store, tenant: Tenant, snapshot: Snapshot) -> list[Row]:
    found = find_discrepancies(snapshot, allocate(snapshot), Rates.from_snapshot(snapshot))
    refs = sorted({r for d in found for r in d.records})
    parsed = [(ref, *ref.partition(":")[::2]) for ref in refs]
    with store.read() as conn:
        named = changewords.describe(
            conn, tenant.id, [ChangeRow("", entity, rid, "insert", {}) for _, entity, rid in parsed]
        )
    link = _linker(tenant.ledger)
    records = {
        ref: Record(_label(entity, rid, words.subject), link(entity, rid))
        for (ref, entity, rid), words in zip(parsed, named, strict=True)
    }
    return [_row(d, snapshot, records, link) for d in found]


def _row(d: Discrepancy, snapshot: Snapshot, records: dict[str, Record], link: Linker) -> Row:
    amounts = tuple(f"{label} {money}" for label, money in d.amounts)
    customer = snapshot.customer_name(d.customer_id) if d.customer_id else ""
    url = link("customer", d.customer_id) if d.customer_id else None
    return Row(
        kind_words(d.kind.value), customer, url, amounts, d.explanation, tuple(records[r] for r in d.records)
    )


def _label(entity: str, rid: str, subject: str) -> str:
    if subject.endswith(_GONE):
        return f"{entity.replace('_', ' ')} with ledger id {rid} (not among the synced records)"
    return subject


def _no_page(kind: str, ledger_id: str) -> str | None:
    return None


def _linker(ledger: str) -> Linker:
    try:
        url = registry.get(ledger).record_url
    except registry.UnknownLedger:
        url = None
    return url or _no_page
