"""Properties: outstanding adds up, aging adds up to the open balance, and order never matters."""

from __future__ import annotations

import functools
import random
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from connector.model import (
    Allocation,
    CreditNote,
    Invoice,
    Money,
    Payment,
    PaymentKind,
    PaymentStatus,
    SourceKind,
    Status,
)
from connector.reconcile import (
    Snapshot,
    allocate,
    behaviours,
    find_discrepancies,
    forecast,
    live_allocations,
    reconcile,
)
from connector.reconcile.fx import Rates
from tests.reconcile.firm import ANN, BOB, CHEN, FIRM

START = date(2026, 1, 1)
AS_OF = date(2026, 4, 1)
CUSTOMERS = (ANN, BOB, CHEN)
amounts = st.integers(min_value=1, max_value=500_000).map(lambda cents: Decimal(cents).scaleb(-2))
days = st.integers(min_value=0, max_value=150).map(lambda n: START + timedelta(days=n))
currencies = st.sampled_from(["GBP", "GBP", "USD"])


def _later(day: date, days_after: int) -> date:
    return day + timedelta(days=days_after)


@st.composite
def firms(draw: st.DrawFn) -> Snapshot:
    n_invoices = draw(st.integers(min_value=0, max_value=12))
    invoices = []
    for n in range(n_invoices):
        cur, total = draw(currencies), draw(amounts)
        issued = draw(days)
        invoices.append(Invoice(
            f"I{n}", draw(st.sampled_from(CUSTOMERS)).id, Money(total, cur), Money(draw(amounts), cur),
            draw(st.sampled_from(list(Status))), issued,
            draw(st.none() | st.integers(0, 60).map(functools.partial(_later, issued))),
            currency_rate=draw(st.sampled_from([None, Decimal("1.25"), Decimal("1.3")])) if cur != "GBP" else None,
        ))  # fmt: skip
    targets = st.sampled_from([i.id for i in invoices] + ["ghost"])

    def allocations(kind: SourceKind, sid: str) -> tuple[Allocation, ...]:
        return tuple(
            Allocation(
                kind, sid, draw(targets), Money(draw(amounts), draw(currencies)), draw(st.none() | days)
            )
            for _ in range(draw(st.integers(0, 3)))
        )

    payments = tuple(
        Payment(
            f"P{n}", draw(st.sampled_from(CUSTOMERS)).id, Money(draw(amounts), "GBP"), Money(draw(amounts), "GBP"),
            draw(days), draw(st.sampled_from(list(PaymentKind))), draw(st.sampled_from(list(PaymentStatus))),
            allocations=allocations(SourceKind.PAYMENT, f"P{n}"),
        )
        for n in range(draw(st.integers(0, 10)))
    )  # fmt: skip
    credits = tuple(
        CreditNote(
            f"N{n}", draw(st.sampled_from(CUSTOMERS)).id, Money(draw(amounts), "GBP"), Money(draw(amounts), "GBP"),
            draw(st.sampled_from(list(Status))), draw(days), allocations=allocations(SourceKind.CREDIT_NOTE, f"N{n}"),
        )
        for n in range(draw(st.integers(0, 4)))
    )  # fmt: skip
    return Snapshot(FIRM, CUSTOMERS, tuple(invoices), credits, payments)


def shuffled(snapshot: Snapshot, seed: int) -> Snapshot:
    rng = random.Random(seed)

    def mix(items):
        items = list(items)
        rng.shuffle(items)
        return tuple(items)

    return Snapshot(
        snapshot.tenant, mix(snapshot.customers), mix(snapshot.invoices),
        mix(replace(c, allocations=mix(c.allocations)) for c in snapshot.credit_notes),
        mix(replace(p, allocations=mix(p.allocations)) for p in snapshot.payments),
    )  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(firms(), st.sampled_from([None, AS_OF, START + timedelta(days=45)]))
def test_outstanding_is_total_invoiced_less_live_allocations(firm, as_of):
    ledger = allocate(firm, as_of)
    for cur in ("GBP", "USD"):
        counted = [s for s in ledger.invoices.values() if s.invoice.currency == cur]
        invoiced = sum((s.invoice.total.amount for s in counted), Decimal(0))
        live = sum(
            (
                a.amount
                for a in live_allocations(firm, as_of)
                if a.invoice_id in ledger.invoices
                and a.currency == cur == ledger.invoices[a.invoice_id].invoice.currency
            ),
            Decimal(0),
        )
        # Allocations in another currency count at the ledger's rates, in the invoice's currency.
        converted = sum(
            (
                c.applied
                for c in ledger.crossed
                if ledger.invoices[c.allocation.invoice_id].invoice.currency == cur
            ),
            Decimal(0),
        )
        assert sum((s.outstanding for s in counted), Decimal(0)) == invoiced - live - converted
    everything = sum((a.amount for a in live_allocations(firm, as_of)), Decimal(0))
    applied = sum((s.applied for s in ledger.invoices.values()), Decimal(0))
    applied -= sum((c.applied - c.allocation.amount for c in ledger.crossed), Decimal(0))  # as allocated
    stray = sum((a.amount for a in ledger.stray), Decimal(0))
    waiting = sum(  # allocations to live invoices not yet issued as of the date
        (
            a.amount
            for a in live_allocations(firm, as_of)
            if a.invoice_id not in ledger.invoices
            and a.invoice_id in firm.invoices_by_id
            and firm.invoices_by_id[a.invoice_id].status.live
        ),
        Decimal(0),
    )
    assert applied + stray + waiting == everything


@settings(max_examples=200, deadline=None)
@given(firms())
def test_aging_buckets_sum_to_the_open_balance(firm):
    result = reconcile(firm, AS_OF)
    rates = Rates.from_snapshot(firm)
    open_base = sum(
        (
            rates.to_base(s.outstanding, s.invoice.currency, s.invoice.currency_rate) or 0
            for s in result.ledger.open()
        ),
        Decimal(0),
    )
    assert result.aging.total.total == open_base
    assert result.aging.total.total == sum((p.base.open for p in result.positions.values()), Decimal(0))
    for row in result.aging.rows:
        assert row.customer_id is not None
        assert row.total == result.positions[row.customer_id].base.open


@settings(max_examples=150, deadline=None)
@given(firms(), st.integers(0, 2**32))
def test_reconciliation_is_deterministic_and_independent_of_record_order(firm, seed):
    other = shuffled(firm, seed)
    a, b = reconcile(firm, AS_OF), reconcile(other, AS_OF)
    assert dict(a.invoices) == dict(b.invoices)
    assert a.ledger.stray == b.ledger.stray
    assert a.discrepancies == b.discrepancies
    assert dict(a.positions) == dict(b.positions)
    assert a.aging == b.aging
    rates_a, rates_b = Rates.from_snapshot(firm), Rates.from_snapshot(other)
    seen_a = behaviours(firm, a.ledger, rates_a, AS_OF)
    seen_b = behaviours(other, b.ledger, rates_b, AS_OF)
    assert seen_a == seen_b
    assert forecast(a.ledger, rates_a, seen_a, AS_OF) == forecast(b.ledger, rates_b, seen_b, AS_OF)
    assert reconcile(firm, AS_OF).discrepancies == a.discrepancies


@settings(max_examples=150, deadline=None)
@given(firms(), st.sampled_from([START, AS_OF, START + timedelta(days=200)]))
def test_discrepancies_describe_the_ledger_now_whatever_the_report_date(firm, as_of):
    now = find_discrepancies(firm, allocate(firm), Rates.from_snapshot(firm))
    assert reconcile(firm, as_of).discrepancies == now
