"""Every kind of discrepancy, found and explained, and nothing reported on clean books."""

from __future__ import annotations

from connector.model import PaymentKind, Status
from connector.reconcile import Kind, reconcile
from tests.reconcile.firm import ANN, BOB, CHEN, books, credit, d, invoice, payment


def test_a_small_firms_inconsistencies_are_each_reported_once_in_report_order():
    firm = books(
        invoice("42", ANN, "120.00", "2026-01-01", "2026-01-31", due_amount="120.00"),
        payment("P1", ANN, "2026-01-20", ("42", "100.00")),
        invoice("43", ANN, "50.00", "2026-01-01", "2026-01-31", due_amount="0", status=Status.PAID),
        payment("P2", ANN, "2026-01-21", ("43", "30.00")),
        payment("P3", ANN, "2026-01-22", ("43", "30.00")),
        invoice("44", BOB, "70.00", "2026-01-01", "2026-01-31", due_amount="0", status=Status.PAID),
        invoice("45", BOB, "90.00", "2026-01-01", "2026-01-31", status=Status.DELETED),
        payment("P4", BOB, "2026-01-05", ("45", "90.00"), ("nowhere", "5.00")),
        invoice("46", BOB, "10.00", "2026-01-01", "2026-03-31", due_amount="1.67"),
        payment("P5", BOB, "2026-01-05", ("46", "10.00"), currency="EUR", rate="1.2"),  # £8.33 at its rate
        payment("PP", BOB, "2026-01-06", unapplied="25.00", kind=PaymentKind.PREPAYMENT),
        credit("CN1", BOB, "15.00", "2026-01-07", remaining="15.00", status=Status.OPEN),
        payment("P6", CHEN, "2026-01-08", unapplied="9.00"),  # Chen owes nothing: nothing to apply it to
    )
    found = reconcile(firm, d("2026-02-15")).discrepancies
    assert [(x.kind, x.records) for x in found] == [
        (Kind.AMOUNT_DUE_MISMATCH, ("invoice:42", "payment:P1")),
        (Kind.NEGATIVE_OUTSTANDING, ("invoice:43", "payment:P2", "payment:P3")),
        (Kind.PAID_WITHOUT_PAYMENT, ("invoice:44",)),
        (Kind.ALLOCATION_TO_DEAD_INVOICE, ("payment:P4", "invoice:45")),
        (Kind.ALLOCATION_TO_UNKNOWN_INVOICE, ("payment:P4", "invoice:nowhere")),
        (Kind.CURRENCY_MISMATCH, ("payment:P5", "invoice:46")),
        (Kind.UNAPPLIED_CASH, ("credit_note:CN1", "invoice:44", "invoice:46")),
        (Kind.UNAPPLIED_CASH, ("payment:PP", "invoice:44", "invoice:46")),
    ]
    by_kind = {x.kind: x for x in found}
    assert by_kind[Kind.NEGATIVE_OUTSTANDING].explanation == (
        "Invoice INV-43 for Ann's Café: £60.00 was allocated against a total of £50.00, £10.00 too much"
    )
    assert by_kind[Kind.PAID_WITHOUT_PAYMENT].explanation == (
        "Invoice INV-44 for Bob's Bikes is marked paid, but no live payment or credit note is allocated to it: "
        "£70.00 is unaccounted for"
    )
    # a payment is named by what, whom, how much and when, never by its id (only `records` carries ids)
    assert by_kind[Kind.CURRENCY_MISMATCH].explanation == (
        "The payment of €10.00 from Bob's Bikes on 5 January 2026 allocates €10.00 to Invoice INV-46, "
        "which is in GBP: applied as £8.33 at the rates the ledger records"
    )
    assert by_kind[Kind.ALLOCATION_TO_UNKNOWN_INVOICE].explanation == (
        "The payment of £95.00 from Bob's Bikes on 5 January 2026 allocates £5.00 to invoice nowhere, "
        "which is not among the synced sales invoices"
    )
    assert by_kind[Kind.ALLOCATION_TO_DEAD_INVOICE].explanation == (
        "The payment of £95.00 from Bob's Bikes on 5 January 2026 allocates £90.00 to Invoice INV-45, "
        "which is deleted"
    )
    unapplied = [x for x in found if x.kind is Kind.UNAPPLIED_CASH]
    assert [x.explanation for x in unapplied] == [
        "Credit note CN-CN1 for Bob's Bikes leaves £15.00 unapplied on the account while 2 invoice(s) "
        "are open: apply it before chasing",
        "The prepayment of £25.00 from Bob's Bikes on 6 January 2026 leaves £25.00 unapplied on the "
        "account while 2 invoice(s) are open: apply it before chasing",
    ]
    for x in found:
        assert not any(f"P{n} " in x.explanation for n in range(1, 7)) and "PP " not in x.explanation
    assert [str(m) for _, m in by_kind[Kind.AMOUNT_DUE_MISMATCH].amounts] == ["£120.00", "£20.00"]


def test_clean_books_have_no_discrepancies():
    firm = books(
        invoice("1", ANN, "100.00", "2026-01-01", "2026-01-31", due_amount="0", status=Status.PAID),
        payment("P1", ANN, "2026-01-20", ("1", "60.00")),
        credit("CN1", ANN, "40.00", "2026-01-25", ("1", "40.00")),
        invoice("2", BOB, "80.00", "2026-01-01", "2026-01-31", due_amount="30.00"),
        payment("P2", BOB, "2026-01-20", ("2", "50.00")),
    )
    assert reconcile(firm, d("2026-02-15")).discrepancies == ()


def test_an_over_allocated_invoice_agrees_whether_the_ledger_says_zero_or_the_negative_figure():
    for ledger_says in ("0", "-10.00"):
        firm = books(
            invoice(
                "43", ANN, "50.00", "2026-01-01", "2026-01-31", due_amount=ledger_says, status=Status.PAID
            ),
            payment("P2", ANN, "2026-01-21", ("43", "60.00")),
        )
        assert [x.kind for x in reconcile(firm, d("2026-02-15")).discrepancies] == [Kind.NEGATIVE_OUTSTANDING]
    firm = books(
        invoice("43", ANN, "50.00", "2026-01-01", "2026-01-31", due_amount="5.00", status=Status.PAID),
        payment("P2", ANN, "2026-01-21", ("43", "60.00")),
    )
    assert [x.kind for x in reconcile(firm, d("2026-02-15")).discrepancies] == [
        Kind.AMOUNT_DUE_MISMATCH,
        Kind.NEGATIVE_OUTSTANDING,
    ]
