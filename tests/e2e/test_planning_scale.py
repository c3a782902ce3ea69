"""Planning and sending must look each customer up once, not scan every customer for every reminder.

Timings are never asserted; what is asserted is how many customer records a step visits, which stays
proportional to the customers when a lookup is by id and grows with their square when it is a scan.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from connector.config import Settings
from connector.model import Customer, Invoice, Money, Status, Tenant
from connector.run.execute import view
from connector.run.plan import Context, actions_for, evaluate_tenant
from connector.store import Store, records
from connector.store.tenants import save_tenant

CUSTOMERS = 200
TODAY = date(2026, 6, 30)
NOW = datetime(2026, 6, 30, 9, 0, tzinfo=UTC)
TENANT = Tenant("scale", "Scale Ltd", "synthetic", "GBP", "Europe/London", "GB")


class Counted(tuple):
    """A tuple that counts the items handed out by every iteration over it."""

    visits = 0

    def __iter__(self):
        for item in super().__iter__():
            self.visits += 1
            yield item


@pytest.fixture
def planned(tmp_path: Path):
    store = Store.open(f"sqlite:///{tmp_path / 'ccm.db'}")
    with store.begin() as conn:
        save_tenant(conn, TENANT)
        records.upsert(conn, TENANT.id, "customer", [
            Customer(f"c{n:03d}", f"Customer {n}", email=f"ap@c{n:03d}.example") for n in range(CUSTOMERS)
        ])  # fmt: skip
        total = Money(Decimal("120.00"), "GBP")
        records.upsert(conn, TENANT.id, "invoice", [
            Invoice(f"i{n:03d}", f"c{n:03d}", total, total, Status.OPEN, TODAY - timedelta(days=40),
                    TODAY - timedelta(days=10), f"INV-{n:03d}")
            for n in range(CUSTOMERS)
        ])  # fmt: skip
    ctx = Context.load(Settings(data_dir=tmp_path / "data"), TENANT)
    evaluation, snapshot = evaluate_tenant(store, ctx, TODAY)
    store.close()
    assert len(evaluation.reminders) == CUSTOMERS  # one reminder per customer
    return ctx, evaluation, replace(snapshot, customers=Counted(snapshot.customers))


def test_planning_actions_looks_each_customer_up_once(planned):
    ctx, evaluation, snapshot = planned
    actions = actions_for(evaluation, snapshot, ctx, NOW)
    assert len(actions) == CUSTOMERS
    assert snapshot.customers.visits <= 2 * CUSTOMERS


def test_rendering_reminders_looks_each_customer_up_once(planned):
    ctx, evaluation, snapshot = planned
    shown = [view(r, snapshot, ctx, TODAY, {}) for r in evaluation.reminders]
    assert {s.customer for s in shown} == {f"Customer {n}" for n in range(CUSTOMERS)}
    assert snapshot.customers.visits <= 2 * CUSTOMERS
