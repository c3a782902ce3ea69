"""The seeded firm generator: deterministic, sized as asked, realistic, and every plant really planted."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime
from decimal import Decimal
from statistics import mean

import pytest

from adapters.sandbox.generator import (
    PLANT_KINDS,
    SIZES,
    Firm,
    FirmSize,
    generate,
    invoice_allocations,
    remaining_credit,
)

TODAY = date(2026, 11, 23)


@pytest.fixture(scope="module")
def demo() -> Firm:
    return generate(1, "demo", today=TODAY)


@pytest.fixture(scope="module")
def small() -> Firm:
    return generate(3, "small", today=TODAY)


def test_same_seed_gives_an_identical_firm_and_another_seed_does_not(demo):
    assert generate(1, "demo", today=TODAY) == demo
    other = generate(2, "demo", today=TODAY)
    assert other.invoices[0].id != demo.invoices[0].id
    assert [c.name for c in other.customers] != [c.name for c in demo.customers]


@pytest.mark.parametrize("size", ["demo", "small", FirmSize(20, 300, 100)])
def test_counts_match_the_size_exactly(size):
    firm = generate(5, size, today=TODAY)
    want = SIZES[size] if isinstance(size, str) else size
    assert (len(firm.customers), len(firm.invoices), len(firm.payments)) == (
        want.customers,
        want.invoices,
        want.payments,
    )


def test_unknown_or_tiny_sizes_are_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="unknown firm size 'huge'"):
        generate(1, "huge", today=TODAY)
    with pytest.raises(ValueError, match="too small"):
        generate(1, FirmSize(2, 10, 5), today=TODAY)


def test_ids_names_and_numbers_are_unique(small):
    ids = [
        r.id for group in (small.customers, small.invoices, small.payments, small.credit_notes) for r in group
    ]
    assert len(ids) == len(set(ids))
    assert len({c.name for c in small.customers}) == len(small.customers)
    assert len({i.number for i in small.invoices}) == len(small.invoices)


def test_history_ends_yesterday_in_utc_and_updates_follow_creation(small):
    midnight = datetime(2026, 11, 23, tzinfo=UTC)
    for rec in (*small.customers, *small.invoices, *small.payments, *small.credit_notes):
        assert rec.created.tzinfo is UTC
        assert rec.created <= rec.updated < midnight
    assert all(i.issue_date <= i.due_date for i in small.invoices)
    assert all(p.date < TODAY for p in small.payments)


def test_invoice_totals_add_up_from_their_lines(small):
    for inv in small.invoices[:500]:
        subtotal = sum((ln.quantity * ln.unit_amount for ln in inv.lines), Decimal(0))
        tax = sum((ln.tax_amount for ln in inv.lines), Decimal(0))
        assert (inv.subtotal, inv.tax, inv.total) == (subtotal, tax, subtotal + tax)
        assert inv.total.as_tuple().exponent == -2


def test_the_firm_has_every_kind_of_record_a_real_ledger_has(small):
    assert set(Counter(c.behaviour for c in small.customers)) == {
        "early",
        "on_time",
        "late",
        "chronic",
        "never",
    }
    assert set(Counter(i.status for i in small.invoices)) == {
        "draft",
        "submitted",
        "authorised",
        "voided",
        "deleted",
    }
    assert any(i.kind == "bill" for i in small.invoices)
    assert {"EUR", "USD", "GBP"} <= {c.currency for c in small.customers}
    foreign = [i for i in small.invoices if i.currency != "GBP"]
    assert foreign and all(i.currency_rate != 1 for i in foreign)
    assert any(c.archived and c.merged_into is None for c in small.customers)
    merged = [c for c in small.customers if c.merged_into]
    assert merged and all(c.archived for c in merged)
    kinds = Counter(p.kind for p in small.payments)
    assert kinds["overpayment"] and kinds["prepayment"]
    assert any(p.deleted for p in small.payments)
    assert any(p.kind != "payment" and p.allocations for p in small.payments)  # applied later
    assert any(n.allocations for n in small.credit_notes)
    assert any(not n.allocations and n.status == "authorised" for n in small.credit_notes)
    assert any(i.reference for i in small.invoices)


def test_partial_and_split_payments_exist(small):
    allocs = invoice_allocations(small)
    partial = [
        i for i in small.invoices
        if i.id in allocs and 0 < sum(a.amount for _, a in allocs[i.id]) < i.total
    ]  # fmt: skip
    split = [i for i, got in allocs.items() if sum(1 for kind, _ in got if kind == "payment") > 1]
    assert len(partial) > 10
    assert len(split) > 10


def test_behaviour_drives_how_late_customers_pay(small):
    behaviour = {c.id: c.behaviour for c in small.customers}
    invoices = {i.id: i for i in small.invoices}
    planted = {rid for plant in small.plants for rid in plant.record_ids}
    delays: dict[str, list[int]] = {}
    for pay in small.payments:
        if pay.kind == "payment" and pay.id not in planted:
            inv = invoices[pay.allocations[0].invoice_id]
            delays.setdefault(behaviour[inv.customer_id], []).append((pay.date - inv.due_date).days)
    assert "never" not in delays
    assert mean(delays["early"]) < mean(delays["on_time"]) < mean(delays["late"]) < mean(delays["chronic"])


def test_a_plain_payment_allocates_exactly_its_amount(small):
    for pay in small.payments:
        if pay.kind == "payment":
            assert len(pay.allocations) == 1
            assert pay.allocations[0].amount == pay.amount
        else:
            assert remaining_credit(pay.amount, pay.allocations) >= 0


def test_every_plant_is_present_and_really_true(demo):
    assert {p.kind for p in demo.plants} == set(PLANT_KINDS)
    invoices = {i.id: i for i in demo.invoices}
    payments = {p.id: p for p in demo.payments}
    allocs = invoice_allocations(demo)

    def allocated(inv_id):
        return sum((a.amount for _, a in allocs.get(inv_id, [])), Decimal(0))

    for plant in demo.plants:
        if plant.kind == "amount_due_mismatch":
            inv = invoices[plant.record_ids[0]]
            assert inv.amount_due_override is not None
            assert inv.amount_due_override != inv.total - allocated(inv.id)
        elif plant.kind == "allocation_to_void":
            inv, pay = invoices[plant.record_ids[0]], payments[plant.record_ids[1]]
            assert inv.status == "voided" and not pay.deleted
            assert pay.allocations[0].invoice_id == inv.id
        elif plant.kind == "unapplied_with_open_invoices":
            customer, inv_id, pay_id = plant.record_ids
            pay = payments[pay_id]
            assert pay.customer_id == customer and not pay.allocations and pay.kind == "overpayment"
            assert invoices[inv_id].customer_id == customer and allocated(inv_id) == 0
        elif plant.kind == "paid_without_payment":
            inv = invoices[plant.record_ids[0]]
            assert inv.amount_due_override == 0 and inv.id not in allocs and inv.status == "authorised"
        elif plant.kind == "currency_mismatch":
            inv, pay = invoices[plant.record_ids[0]], payments[plant.record_ids[1]]
            assert pay.currency != inv.currency and pay.allocations[0].invoice_id == inv.id
        else:
            assert plant.kind == "negative_outstanding"
            inv = invoices[plant.record_ids[0]]
            assert allocated(inv.id) > inv.total


def test_bigger_firms_carry_more_plants_of_every_kind():
    firm = generate(9, FirmSize(300, 21_000, 12_000), today=TODAY)
    assert Counter(p.kind for p in firm.plants) == dict.fromkeys(PLANT_KINDS, 2)


def test_even_the_demo_firm_has_archived_and_merged_customers(demo):
    assert any(c.archived and not c.merged_into for c in demo.customers)
    merged = [c for c in demo.customers if c.merged_into]
    ids = {c.id for c in demo.customers}
    assert merged and all(c.archived and c.merged_into in ids and c.merged_into != c.id for c in merged)
