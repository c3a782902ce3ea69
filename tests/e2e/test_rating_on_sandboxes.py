"""Payment ratings and limit suggestions on a generated firm, pulled from each sandbox over its real API.

The firm is generated for a pinned day; what the generator made (its ground truth: which payment cleared
which invoice and when the money came) is compared with what ccm computed from the ledger's API.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.quickbooks import sandbox as qbo_sandbox
from adapters.sandbox.generator import Firm, generate, invoice_allocations
from adapters.xero import sandbox as xero_sandbox
from connector.creditcontrol import suggest
from connector.model import CustomerStatus, Money
from connector.reconcile import Snapshot, Trend, allocate, behaviours, load_snapshot
from connector.reconcile.explain import explain
from connector.reconcile.fx import Rates
from connector.store import Store
from connector.sync import run_sync
from connector.wiring import ledger_for, mapping_for
from tests.e2e.sandboxes import QuickBooksSide, Side, XeroSide, connected, settings_for
from tests.smtp import Inbox

TODAY = date(2026, 6, 30)


@pytest.fixture(scope="module")
def firm() -> Firm:
    return generate(seed=3, size="demo", today=TODAY)


@pytest.fixture(params=["xero", "quickbooks"])
def side(request: pytest.FixtureRequest, firm: Firm) -> Iterator[Side]:
    if request.param == "xero":
        running: Side = XeroSide(xero_sandbox.start(firm, limits=False))
    else:
        running = QuickBooksSide(qbo_sandbox.start(firm, limits=False))
    yield running
    running.handle.stop()


@pytest.fixture
def pulled(side: Side, tmp_path: Path, inbox: Inbox, store: Store) -> Snapshot:
    settings = settings_for(side, tmp_path / "data", inbox)
    tenant = connected(side, settings, store)
    result = run_sync(store, tenant.id, ledger_for(settings, store, tenant), mapping_for(settings, tenant))
    assert result.error is None
    return load_snapshot(store, tenant.id)


def late_allocated_overpayments(firm: Firm) -> list[tuple[str, date, date, date]]:
    """(invoice number, due date, the day the money came, the day it was allocated) for each invoice the
    generator cleared wholly with one over/prepayment allocated after the money arrived."""
    planted = {r for p in firm.plants for r in p.record_ids}
    allocations = invoice_allocations(firm)
    invoices = {i.id: i for i in firm.invoices}
    found = []
    for pay in firm.payments:
        if pay.kind == "payment" or pay.deleted or pay.id in planted:
            continue
        for a in pay.allocations:
            inv = invoices[a.invoice_id]
            whole = len(allocations[inv.id]) == 1 and a.amount == inv.total and inv.status == "authorised"
            if whole and a.date > pay.date and inv.id not in planted:
                found.append((inv.number, inv.due_date, pay.date, a.date))
    return found


def test_an_invoice_paid_ahead_by_an_overpayment_allocated_later_is_dated_by_the_money(firm, pulled):
    cases = late_allocated_overpayments(firm)
    assert cases, "the generated firm has an invoice cleared by an overpayment allocated later"
    rated = behaviours(pulled, allocate(pulled, TODAY), Rates.from_snapshot(pulled), TODAY)
    by_number = {o.number: o for b in rated.values() for o in b.observations}
    for number, due, money_came, allocated in cases:
        seen = by_number[number]
        assert (seen.paid_on, seen.days_late) == (money_came, (money_came - due).days), (number, allocated)


def test_every_rating_on_the_firm_is_explained_by_its_invoices_and_none_improves_without_paying(pulled):
    rated = behaviours(pulled, allocate(pulled, TODAY), Rates.from_snapshot(pulled), TODAY)
    numbers: dict[str, set[str]] = {}
    for i in pulled.invoices:
        numbers.setdefault(i.customer_id, set()).add(i.number or i.id)
    explained = 0
    for b in rated.values():
        if b.paid_count == 0:
            assert b.trend is Trend.UNKNOWN, b.name
        if b.rating is None:
            continue
        text = " ".join(explain(b, pulled.tenant.base_currency))
        assert text.startswith(f"rating {b.rating}: ")
        named = [n for n in numbers[b.customer_id] if n and f"{n} (" in text]
        if b.weighted_days_late > 0 or b.set_aside or b.paid_count:
            assert named, f"{b.name}: {text}"
            explained += 1
    assert explained >= 20


def test_limit_suggestions_on_the_firm_skip_inactive_customers_and_never_raise_a_poor_payer(pulled):
    base = pulled.tenant.base_currency
    everyone = {c.id: Money(Decimal(50_000), base) for c in pulled.customers}
    found = suggest(pulled, TODAY, everyone)
    inactive = {c.id for c in pulled.customers if c.status is not CustomerStatus.ACTIVE or c.merged_into}
    assert inactive, "the generated firm has archived or merged customers"
    assert found
    for s in found:
        assert s.customer_id not in inactive, s.name
        assert not (s.rating in ("D", "E") and s.suggested.amount > everyone[s.customer_id].amount)
        assert s.kind in ("idle", "lower") and str(everyone[s.customer_id]) in s.reason
    assert {s.kind for s in found} == {"idle", "lower"}
