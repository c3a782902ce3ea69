"""Records that vanish from a sandbox's books behind its API, and the picking of which to remove.

A hard removal, not a delete through the API: the record simply stops being there. No deletion event, no
DELETED status, no CDC tombstone and no change time explain it, as when a tenant was re-pointed at another
organisation or a ledger lost a record without telling anyone. Only a full read can notice.

Ledgers keep their books differently, so the removal is per harness; the choice of records is made from what
ccm stored (canonical ids are the ledger's ids), so it is the same for every ledger.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from adapters.xero.sandbox.book import Collection
from connector.store import Store
from connector.store.schema import RECORD_TABLES, allocations
from tests.contract.harness import Harness
from tests.contract.quickbooks_harness import QuickBooksHarness
from tests.contract.xero_harness import XeroHarness

_QBO_TABLES = {
    "customer": "Customer",
    "invoice": "Invoice",
    "credit_note": "CreditMemo",
    "payment": "Payment",
}
_XERO_KINDS = {
    "customer": ("Contacts",),
    "invoice": ("Invoices",),
    "credit_note": ("CreditNotes",),
    "payment": ("Payments", "Overpayments", "Prepayments"),
}


def vanish(h: Harness, entity: str, record_id: str) -> None:
    """Remove one record (canonical `entity` and id) from the sandbox's books, telling no one.

    A Xero contact takes with it what ccm never stores (its bills and their payments): Xero cannot show
    those without it. Remove a customer's own records first.
    """
    if isinstance(h, XeroHarness):
        book = h.sandbox.book
        with book.lock:
            if any(_pop(book.collection(kind), record_id) for kind in _XERO_KINDS[entity]):
                if entity == "customer":
                    for kind in sorted({k for kinds in _XERO_KINDS.values() for k in kinds}):
                        coll = book.collection(kind)
                        for rid, rec in list(coll.by_id.items()):
                            if getattr(rec, "customer_id", None) == record_id:
                                _pop(coll, rid)
                return
    elif isinstance(h, QuickBooksHarness):
        company = h.sb.company
        with company.lock:
            table = company.tables[_QBO_TABLES[entity]]
            row = table.by_id.pop(int(record_id), None)
            if row is not None:
                table._ids.remove(row.id)
                table._updated.remove(row.order_key())
                table._version += 1  # paging resumes only over an unchanged table
                return
    else:
        raise NotImplementedError(f"no hard removal for the {h.name} sandbox yet: add it here")
    raise AssertionError(f"{h.name} has no {entity} {record_id} to remove")


def _pop(coll: Collection[Any], record_id: str) -> bool:
    if coll.by_id.pop(record_id, None) is None:
        return False
    coll.keys = [k for k in coll.keys if k[1] != record_id]
    return True


def _ids(store: Store, tenant_id: str, entity: str, customer_id: str) -> set[str]:
    table = RECORD_TABLES[entity]
    query = select(table.c.id).where(table.c.tenant_id == tenant_id, table.c.customer_id == customer_id)
    with store.read() as conn:
        return set(conn.execute(query).scalars())


def _allocated(store: Store, tenant_id: str) -> list[tuple[str, str, str]]:
    """(source kind, source id, invoice id) of every stored allocation."""
    a = allocations.c
    query = select(a.source_kind, a.source_id, a.invoice_id).where(a.tenant_id == tenant_id)
    with store.read() as conn:
        return [(kind, sid, iid) for kind, sid, iid in conn.execute(query)]


def a_customer_and_everything_it_has(store: Store, tenant_id: str) -> dict[str, set[str]]:
    """An active customer with invoices and payments, whose money touches no one else's: it and its records.

    Removing all of them leaves every other record exactly as it was, at the ledger and in ccm.
    """
    c = RECORD_TABLES["customer"].c
    query = (
        select(c.id)
        .where(c.tenant_id == tenant_id, c.status == "active", c.merged_into.is_(None))
        .order_by(c.id)
    )
    with store.read() as conn:
        candidates = list(conn.execute(query).scalars())
        merged = set(conn.execute(select(c.merged_into).where(c.tenant_id == tenant_id)).scalars())
    links = _allocated(store, tenant_id)
    for customer in candidates:
        if customer in merged:
            continue
        owned = {e: _ids(store, tenant_id, e, customer) for e in ("invoice", "credit_note", "payment")}
        if not owned["invoice"] or not owned["payment"]:
            continue
        sources = {("payment", rid) for rid in owned["payment"]}
        sources |= {("credit_note", rid) for rid in owned["credit_note"]}
        if all(((kind, sid) in sources) == (iid in owned["invoice"]) for kind, sid, iid in links):
            return {"customer": {customer}, **owned}
    raise AssertionError("the firm has no customer whose records stand alone")


def an_invoice_nothing_is_allocated_to(store: Store, tenant_id: str, skip: int = 0) -> str:
    """An open invoice no payment or credit note is applied to: removing it changes no other record."""
    t = RECORD_TABLES["invoice"].c
    query = select(t.id).where(t.tenant_id == tenant_id, t.status == "open").order_by(t.id)
    with store.read() as conn:
        open_ids = list(conn.execute(query).scalars())
    allocated = {iid for _, _, iid in _allocated(store, tenant_id)}
    return [iid for iid in open_ids if iid not in allocated][skip]


def a_payment_of_another_customer(store: Store, tenant_id: str, invoice_id: str) -> str:
    """A live payment whose allocations do not touch `invoice_id`'s customer."""
    inv, pay = RECORD_TABLES["invoice"].c, RECORD_TABLES["payment"].c
    with store.read() as conn:
        owner = conn.execute(select(inv.customer_id).where(inv.tenant_id == tenant_id, inv.id == invoice_id))
        customer = owner.scalar_one()
        query = (
            select(pay.id)
            .where(pay.tenant_id == tenant_id, pay.status == "live", pay.customer_id != customer)
            .order_by(pay.id)
        )
        return str(conn.execute(query).scalars().first())
