"""End to end over the real store (SQLite, and PostgreSQL when configured): sync or upsert, load, reconcile."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from connector.model import Tenant
from connector.reconcile import Kind, load_snapshot, reconcile
from connector.store import records
from connector.store.tenants import save_tenant
from connector.sync import run_sync
from tests.reconcile.firm import ANN, BOB, CHEN, books, credit, d, invoice, payment
from tests.scripted import contact
from tests.scripted import invoice as raw_invoice
from tests.scripted import payment as raw_payment

AS_OF = d("2026-03-05")


def test_after_a_sync_aging_equals_the_ledgers_own_amounts_due_and_planted_errors_are_found(
    store, tenant, ledger, scripted_mapping
):
    ledger.put("contacts", contact("C1", "Ann's Café"))
    ledger.put("contacts", contact("C2", "Bob's Bikes"))
    ledger.put("invoices", raw_invoice("I1", "C1", total="120.00", AmountDue="20.00"))
    ledger.put("invoices", raw_invoice("I2", "C2", total="300.00", due="2026-03-20"))
    ledger.put("invoices", raw_invoice("I3", "C2", total="75.00", AmountDue="0", Status="PAID"))
    ledger.put("payments", raw_payment("P1", "I1", "100.00"))
    ledger.put("payments", raw_payment("P3", "I3", "75.00", contact_id="C2"))
    # Planted: the ledger still says 300 due on I2 though a payment of 50 is allocated to it, and a
    # payment points at an invoice that was voided.
    ledger.put("payments", raw_payment("P2", "I2", "50.00", contact_id="C2"))
    ledger.put("invoices", raw_invoice("I4", "C2", total="10.00", Status="VOIDED"))
    ledger.put("payments", raw_payment("P4", "I4", "10.00", contact_id="C2"))
    result = run_sync(
        store, tenant.id, ledger, scripted_mapping, clock=ledger.now, overlap=timedelta(seconds=2)
    )
    assert result.outcome == "ok", result

    snapshot = load_snapshot(store, tenant.id)
    done = reconcile(snapshot, AS_OF)
    ledger_due = sum(
        (i.amount_due.amount for i in snapshot.invoices if i.status.live and i.id != "I2"), Decimal(0)
    )
    assert done.aging.total.total == ledger_due + Decimal("250.00")
    assert [(x.kind, x.records) for x in done.discrepancies] == [
        (Kind.AMOUNT_DUE_MISMATCH, ("invoice:I2", "payment:P2")),
        (Kind.ALLOCATION_TO_DEAD_INVOICE, ("payment:P4", "invoice:I4")),
    ]
    # A bookkeeper's check once the planted error is fixed in the ledger: aging = the ledger's amounts due.
    ledger.put("invoices", raw_invoice("I2", "C2", total="300.00", due="2026-03-20", AmountDue="250.00"))
    run_sync(store, tenant.id, ledger, scripted_mapping, clock=ledger.now, overlap=timedelta(seconds=2))
    fixed = reconcile(load_snapshot(store, tenant.id), AS_OF)
    assert fixed.aging.total.total == sum(
        (i.amount_due.amount for i in load_snapshot(store, tenant.id).invoices if i.status.live), Decimal(0)
    )
    assert [x.kind for x in fixed.discrepancies] == [Kind.ALLOCATION_TO_DEAD_INVOICE]


def test_records_upserted_into_the_store_reconcile_exactly_as_in_memory(store):
    firm = books(
        invoice("1", ANN, "120.00", "2026-01-01", "2026-01-31", due_amount="20.00"),
        payment("P1", ANN, "2026-01-20", ("1", "100.00", "2026-01-21")),
        invoice("2", BOB, "300.00", "2026-01-01", "2026-01-31", due_amount="200.00"),
        credit("CN1", BOB, "100.00", "2026-01-10", ("2", "100.00")),
        invoice("U1", CHEN, "110.00", "2026-02-01", "2026-02-28", currency="USD", rate="1.1"),
        payment("PP", BOB, "2026-01-06", unapplied="25.00"),
    )
    tenant = replace(firm.tenant, ledger="scripted")
    with store.begin() as conn:
        save_tenant(conn, Tenant(tenant.id, tenant.name, "scripted"))
        records.upsert(conn, tenant.id, "customer", list(firm.customers))
        records.upsert(conn, tenant.id, "invoice", list(firm.invoices))
        records.upsert(conn, tenant.id, "credit_note", list(firm.credit_notes))
        records.upsert(conn, tenant.id, "payment", list(firm.payments))
    loaded = load_snapshot(store, tenant.id)
    assert sorted(loaded.invoices, key=lambda i: i.id) == sorted(firm.invoices, key=lambda i: i.id)
    mine, theirs = reconcile(loaded, AS_OF), reconcile(replace(firm, tenant=loaded.tenant), AS_OF)
    assert mine.aging == theirs.aging
    assert mine.discrepancies == theirs.discrepancies
    assert dict(mine.positions) == dict(theirs.positions)
    assert mine.aging.total.total == Decimal("20.00") + Decimal("200.00") + Decimal("100.0000")
