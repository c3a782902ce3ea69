"""Allocations, outstanding, positions and aging for a small firm's books."""

from __future__ import annotations

from decimal import Decimal

import pytest

from connector.model import PaymentKind, PaymentStatus, Status
from connector.reconcile import BoundsError, Kind, aging, allocate, reconcile
from connector.reconcile.aging import bucket, labels
from connector.reconcile.fx import Rates
from tests.reconcile.firm import ANN, BOB, CHEN, amounts, books, credit, d, invoice, payment


def outstanding(snapshot, as_of=None):
    return {iid: s.outstanding for iid, s in allocate(snapshot, d(as_of) if as_of else None).invoices.items()}


def kinds(result):
    return [x.kind for x in result.discrepancies]


def test_a_partial_payment_leaves_the_rest_outstanding_and_ages_it():
    firm = books(
        invoice("42", ANN, "120.00", "2026-01-01", "2026-01-31", due_amount="20.00"),
        payment("P1", ANN, "2026-01-20", ("42", "100.00")),
    )
    result = reconcile(firm, d("2026-03-05"))
    assert result.invoices["42"].outstanding == Decimal("20.00")
    assert result.discrepancies == ()
    # 33 days past due: the 31-60 bucket.
    assert result.aging.labels == ("current", "1-30", "31-60", "61-90", "90+")
    assert result.aging.total.buckets == amounts(0, 0, "20.00", 0, 0)
    assert [(r.name, r.total) for r in result.aging.rows] == [("Ann's Café", Decimal("20.00"))]
    position = result.positions["C1"]
    assert (position.base.open, position.base.overdue, position.base.net) == (
        Decimal(20),
        Decimal(20),
        Decimal(20),
    )


def test_a_credit_note_reduces_what_is_owed():
    firm = books(
        invoice("1", BOB, "300.00", "2026-01-01", "2026-01-31", due_amount="200.00"),
        credit("CN1", BOB, "100.00", "2026-01-10", ("1", "100.00")),
    )
    assert outstanding(firm) == {"1": Decimal("200.00")}
    assert reconcile(firm, d("2026-01-15")).discrepancies == ()


def test_a_voided_credit_note_applies_nothing():
    firm = books(
        invoice("1", BOB, "300.00", "2026-01-01", "2026-01-31"),
        credit("CN1", BOB, "100.00", "2026-01-10", ("1", "100.00"), status=Status.VOIDED),
    )
    assert outstanding(firm) == {"1": Decimal("300.00")}


def test_an_overpayment_applied_later_is_unapplied_credit_until_its_allocation_date():
    firm = books(
        invoice("1", ANN, "50.00", "2026-02-01", "2026-02-28", due_amount="0"),
        payment("OP1", ANN, "2026-01-15", ("1", "50.00", "2026-02-10"), kind=PaymentKind.OVERPAYMENT),
    )
    before = reconcile(firm, d("2026-02-05"))
    assert before.invoices["1"].outstanding == Decimal("50.00")
    assert before.positions["C1"].base.unapplied == Decimal("50.00")
    assert before.positions["C1"].base.net == Decimal(0)
    after = reconcile(firm, d("2026-02-20"))
    assert after.invoices["1"].outstanding == 0
    assert after.invoices["1"].paid_on == d("2026-02-10")
    assert "C1" not in after.positions
    assert after.discrepancies == ()


def test_a_deleted_payment_no_longer_counts_and_the_stale_ledger_figures_are_reported():
    firm = books(
        invoice("7", ANN, "80.00", "2026-01-01", "2026-01-31", due_amount="0", status=Status.PAID),
        payment("P9", ANN, "2026-01-10", ("7", "80.00"), status=PaymentStatus.DELETED),
        invoice("8", ANN, "80.00", "2026-01-01", "2026-01-31", due_amount="30.00"),
        payment("P10", ANN, "2026-01-10", ("8", "50.00"), status=PaymentStatus.DELETED),
    )
    result = reconcile(firm, d("2026-02-15"))
    assert outstanding(firm) == {"7": Decimal("80.00"), "8": Decimal("80.00")}
    assert result.aging.total.buckets[1] == Decimal("160.00")
    assert [(x.kind, x.records) for x in result.discrepancies] == [
        (Kind.AMOUNT_DUE_MISMATCH, ("invoice:8",)),
        (Kind.PAID_WITHOUT_PAYMENT, ("invoice:7",)),
    ]
    assert result.discrepancies[0].explanation == (
        "Invoice INV-8 for Ann's Café: the ledger says £30.00 is due, but its payments and credits leave "
        "£80.00 outstanding"
    )


def test_a_voided_invoice_is_not_owed_and_an_allocation_to_it_is_a_discrepancy():
    firm = books(
        invoice("V1", BOB, "60.00", "2026-01-01", "2026-01-31", status=Status.VOIDED),
        invoice("D1", BOB, "10.00", "2026-01-01", "2026-01-31", status=Status.DRAFT),
        payment("P2", BOB, "2026-01-05", ("V1", "60.00")),
    )
    result = reconcile(firm, d("2026-03-01"))
    assert result.invoices == {}
    assert result.aging.total.total == 0
    [stray] = result.discrepancies
    assert stray.kind is Kind.ALLOCATION_TO_DEAD_INVOICE
    assert stray.records == ("payment:P2", "invoice:V1")
    assert stray.explanation == (
        "The payment of £60.00 from Bob's Bikes on 5 January 2026 allocates £60.00 to Invoice INV-V1, "
        "which is voided"
    )


def test_foreign_currency_is_aged_in_base_currency_at_the_ledgers_rate():
    firm = books(
        invoice(
            "U1", CHEN, "110.00", "2026-01-01", "2026-01-31", due_amount="55.00", currency="USD", rate="1.1"
        ),
        payment("P3", CHEN, "2026-01-20", ("U1", "55.00"), currency="USD", rate="1.1"),
        invoice("G1", ANN, "10.00", "2026-01-01", "2026-03-31"),
    )
    result = reconcile(firm, d("2026-02-10"))
    assert result.discrepancies == ()
    assert result.aging.total.buckets == amounts("10.00", "50.0000", 0, 0, 0)
    chen = result.positions["C3"]
    assert chen.by_currency[0][0] == "USD"
    assert chen.by_currency[0][1].open == Decimal("55.00")
    assert chen.base.open == Decimal("50.0000")


def test_a_foreign_invoice_without_a_rate_uses_the_latest_rate_in_that_currency():
    firm = books(
        invoice("U1", CHEN, "100.00", "2026-01-01", "2026-01-31", currency="USD", rate="1.25"),
        invoice("U2", CHEN, "100.00", "2026-02-01", "2026-02-28", currency="USD", rate="2"),
        invoice("U3", CHEN, "100.00", "2026-01-15", "2026-02-28", currency="USD"),
    )
    assert Rates.from_snapshot(firm).fallback == {"USD": Decimal(2)}
    assert reconcile(firm, d("2026-02-10")).aging.total.total == Decimal(80 + 50 + 50)


def test_a_foreign_invoice_no_rate_can_convert_is_left_out_of_base_totals_and_reported():
    firm = books(invoice("U1", CHEN, "100.00", "2026-01-01", "2026-01-31", currency="USD"))
    result = reconcile(firm, d("2026-02-10"))
    assert result.aging.total.total == 0
    assert result.positions["C3"].by_currency == (("USD", result.positions["C3"].by_currency[0][1]),)
    assert kinds(result) == [Kind.MISSING_RATE]


def test_a_payment_dated_before_its_invoice_counts_from_the_invoice_and_is_on_time():
    firm = books(
        invoice("1", ANN, "40.00", "2026-01-10", "2026-02-10", due_amount="0", status=Status.PAID),
        payment("P0", ANN, "2026-01-05", ("1", "40.00")),
    )
    between = reconcile(firm, d("2026-01-07"))
    assert between.invoices == {}  # not issued yet: neither owed nor stray
    assert between.discrepancies == ()
    later = reconcile(firm, d("2026-03-01"))
    assert later.invoices["1"].paid_on == d("2026-01-05")
    assert later.aging.total.total == 0


def test_aging_as_of_a_past_date_counts_only_payments_dated_by_then():
    firm = books(
        invoice("1", ANN, "100.00", "2026-01-01", "2026-01-31", due_amount="0", status=Status.PAID),
        payment("P1", ANN, "2026-03-10", ("1", "100.00")),
    )
    assert reconcile(firm, d("2026-03-05")).aging.total.buckets == amounts(0, 0, "100.00", 0, 0)
    assert reconcile(firm, d("2026-03-10")).aging.total.total == 0


def test_bucket_bounds_are_configurable_and_checked():
    firm = books(
        invoice("1", ANN, "5.00", "2026-01-01", "2026-01-20"),
        invoice("2", ANN, "7.00", "2026-01-01", "2026-02-20"),
    )
    ledger = allocate(firm, d("2026-03-01"))
    report = aging(firm, ledger, Rates.from_snapshot(firm), d("2026-03-01"), bounds=(14, 45))
    assert report.labels == ("current", "1-14", "15-45", "45+")
    assert report.total.buckets == amounts(0, "7.00", "5.00", 0)
    assert labels((30,)) == ("current", "1-30", "30+")
    assert [bucket(n, (30, 60, 90)) for n in (-3, 0, 1, 30, 31, 90, 91)] == [0, 0, 1, 1, 2, 3, 4]
    for bad in ((), (30, 30), (0, 10), (60, 30)):
        with pytest.raises(BoundsError, match="aging bounds must be increasing positive day counts"):
            reconcile(firm, d("2026-03-01"), bounds=bad)


def test_the_cycle_collector_is_paused_while_reconciling_and_restored_after():
    import gc

    from connector.reconcile.snapshot import without_gc

    seen = []

    @without_gc
    def work(fail: bool) -> None:
        seen.append(gc.isenabled())
        if fail:
            raise ValueError("boom")

    assert gc.isenabled()
    work(False)
    with pytest.raises(ValueError, match="boom"):
        work(True)
    assert seen == [False, False]
    assert gc.isenabled()
    gc.disable()
    try:
        work(False)
        assert not gc.isenabled()  # left as the caller had it
    finally:
        gc.enable()


def test_a_position_nets_unapplied_payments_and_open_credit_notes_against_what_is_owed():
    firm = books(
        invoice("1", BOB, "100.00", "2026-01-01", "2026-01-31"),
        invoice("2", BOB, "50.00", "2026-02-01", "2026-03-31"),
        invoice("3", BOB, "5.00", "2026-02-01", "2026-02-15"),  # due today: not overdue yet
        payment("PP", BOB, "2026-01-06", unapplied="25.00", kind=PaymentKind.PREPAYMENT),
        credit("CN1", BOB, "15.00", "2026-01-07", remaining="15.00", status=Status.OPEN),
        credit("CN2", BOB, "99.00", "2026-01-07", remaining="99.00", status=Status.VOIDED),
        payment("PX", BOB, "2026-01-06", unapplied="70.00", status=PaymentStatus.DELETED),
    )
    bob = reconcile(firm, d("2026-02-15")).positions["C2"]
    assert (bob.base.open, bob.base.overdue, bob.base.unapplied, bob.base.net) == amounts(
        "155.00", "100.00", "40.00", "115.00"
    )
    assert [cur for cur, _ in bob.by_currency] == ["GBP"]


def test_the_paid_date_is_when_the_invoice_was_first_cleared_even_if_more_arrives_later():
    firm = books(
        invoice("1", ANN, "100.00", "2026-01-01", "2026-01-31", due_amount="0", status=Status.PAID),
        payment("P1", ANN, "2026-01-10", ("1", "60.00")),
        payment("P2", ANN, "2026-01-20", ("1", "40.00")),
        payment("P3", ANN, "2026-01-25", ("1", "20.00")),
    )
    state = allocate(firm).invoices["1"]
    assert (state.paid_on, state.outstanding) == (d("2026-01-20"), Decimal("-20.00"))
