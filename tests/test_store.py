"""The store on SQLite and PostgreSQL: migrations, exact money, keyed upserts with field changes, tenant scope."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select

from connector.model import (
    Allocation,
    Customer,
    Invoice,
    Money,
    Payment,
    SourceKind,
    Status,
    Tenant,
)
from connector.store import Store, engine, records
from connector.store.schema import allocations, invoices, metadata
from connector.store.tenants import get_tenant, list_tenants, save_tenant


def gbp(amount: str) -> Money:
    return Money(Decimal(amount), "GBP")


def inv(iid: str, due: str = "100.00", status: Status = Status.OPEN, total: str = "100.00") -> Invoice:
    return Invoice(iid, "C1", gbp(total), gbp(due), status, date(2026, 1, 1), date(2026, 2, 1), f"INV-{iid}")


def test_migrations_run_on_first_use_and_match_the_tables(store: Store):
    assert engine.current_revisions(store.engine) == engine.head_revisions()
    with store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": _ccm_own})
        diff = compare_metadata(context, metadata)
    assert diff == []


def _ccm_own(name: str | None, kind: str, _parent: object) -> bool:
    """ccm's tables, not the job queue's (procrastinate_*, migration 0017) nor the shared limits' (ccm_limit_*,
    made by connector/ratelimits/pgstore.py at first use)."""
    return not (kind == "table" and name is not None and name.startswith(("procrastinate_", "ccm_limit_")))


def test_upgrading_twice_is_harmless(store: Store):
    before, after = engine.upgrade(store.engine)
    assert before == after == engine.head_revisions()


def test_sqlite_runs_in_wal_mode(tmp_path):
    s = Store.open(f"sqlite:///{tmp_path / 'x.db'}")
    with s.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_money_is_exact(store: Store):
    with store.begin() as conn:
        records.upsert(conn, "acme", "invoice", [inv(f"I{i}", due="0.10") for i in range(3)])
    with store.read() as conn:
        total = conn.execute(select(func.sum(invoices.c.amount_due))).scalar()
        [row] = records.load(conn, "acme", "invoice", ["I0"])
    assert total == Decimal("0.30")  # SQL sums come back through the exact type too
    assert row["amount_due"] == Decimal("0.10")


def test_insert_then_update_reports_the_fields_that_changed(store: Store):
    with store.begin() as conn:
        first = records.upsert(conn, "acme", "invoice", [inv("I1")])
    with store.begin() as conn:
        second = records.upsert(conn, "acme", "invoice", [inv("I1", due="40.00")])
    with store.begin() as conn:
        third = records.upsert(conn, "acme", "invoice", [inv("I1", due="40.00")])
    assert [(c.op, c.fields) for c in first] == [("insert", {})]
    assert [(c.op, c.fields) for c in second] == [("update", {"amount_due": ["100.0000", "40.0000"]})]
    assert third == []  # an unchanged re-read writes nothing


def test_an_invoice_turning_deleted_is_a_delete(store: Store):
    with store.begin() as conn:
        records.upsert(conn, "acme", "invoice", [inv("I1")])
        [change] = records.upsert(conn, "acme", "invoice", [inv("I1", status=Status.DELETED)])
    assert change.op == "delete"


def test_mark_deleted_keeps_the_record_and_reports_once(store: Store):
    with store.begin() as conn:
        records.upsert(conn, "acme", "invoice", [inv("I1"), inv("I2")])
        first = records.mark_deleted(conn, "acme", "invoice", ["I1", "I1", "missing"])
        again = records.mark_deleted(conn, "acme", "invoice", ["I1"])
        rows = records.load(conn, "acme", "invoice")
    assert [(c.record_id, c.op) for c in first] == [("I1", "delete")]
    assert again == []
    assert [(r["id"], r["status"]) for r in rows] == [("I1", "deleted"), ("I2", "open")]


def test_allocations_are_replaced_with_their_source(store: Store):
    def pay(*allocs: tuple[str, str]) -> Payment:
        return Payment(
            "P1", "C1", gbp("100"), gbp("0"), date(2026, 1, 5),
            allocations=tuple(Allocation(SourceKind.PAYMENT, "P1", i, gbp(a)) for i, a in allocs),
        )  # fmt: skip

    with store.begin() as conn:
        records.upsert(conn, "acme", "payment", [pay(("I1", "60"), ("I2", "40"))])
        [change] = records.upsert(conn, "acme", "payment", [pay(("I1", "100"))])
        unchanged = records.upsert(conn, "acme", "payment", [pay(("I1", "100"))])
        rows = conn.execute(select(allocations.c.invoice_id, allocations.c.amount)).all()
    assert change.fields == {"allocations": ["2", "1"]}
    assert unchanged == []
    assert rows == [("I1", Decimal("100"))]


def test_every_query_is_scoped_by_tenant(store: Store):
    with store.begin() as conn:
        records.upsert(conn, "acme", "invoice", [inv("I1")])
        changes = records.upsert(conn, "zeta", "invoice", [inv("I1", due="5.00")])
        acme = records.load(conn, "acme", "invoice")
        zeta = records.load(conn, "zeta", "invoice")
    assert [c.op for c in changes] == ["insert"]  # same id, other tenant: a new record
    assert acme[0]["amount_due"] == Decimal("100")
    assert zeta[0]["amount_due"] == Decimal("5")


def test_customers_and_instants_round_trip(store: Store):
    at = datetime(2026, 3, 29, 1, 30, 15, 123000, tzinfo=UTC)
    c = Customer("C1", "Ann's Café", email="ann@example.com", segments=("Retail",), updated_at=at)
    with store.begin() as conn:
        records.upsert(conn, "acme", "customer", [c])
        again = records.upsert(conn, "acme", "customer", [c])
        [row] = records.load(conn, "acme", "customer")
    assert again == []
    assert row["updated_at"] == at
    assert row["segments"] == ["Retail"]
    assert row["name"] == "Ann's Café"


def test_tenants(store: Store):
    with store.begin() as conn:
        save_tenant(conn, Tenant("b", "Bee", "xero", "EUR", "Europe/Dublin", "IE"))
        save_tenant(conn, Tenant("a", "Ay", "quickbooks"))
        save_tenant(conn, Tenant("b", "Bee Ltd", "xero", "EUR", "Europe/Dublin", "IE"))
    with store.read() as conn:
        assert [t.id for t in list_tenants(conn)] == ["a", "b"]
        assert get_tenant(conn, "b").name == "Bee Ltd"
