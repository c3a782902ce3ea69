"""The ledger's truth first (issue 12, points 2-4), over small books: what ccm leaves alone, and why.

- An invoice the ledger marks paid, or owes differently, is never chased and never counts toward a hold.
- A payment in another currency counts at the rate the ledger records for it.
- A customer whose balance in the ledger differs from ccm's is neither held nor chased; both figures listed.
- An archived or merged customer is never held or chased; a hold ccm's rules placed is released.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

from connector.model import Customer, CustomerStatus, Money, PaymentKind, Status
from connector.reconcile import Basis, Kind, Snapshot, reconcile
from connector.rules.calendar import SendCalendar
from connector.rules.credit import HOLD, RELEASE, Account, Decision
from connector.rules.dunning import Skip, evaluate
from connector.rules.ledger_truth import screen
from connector.rules.policy import load_policies
from connector.run.plan import debtors
from tests.reconcile import firm as base
from tests.reconcile.firm import d, invoice, payment

ANN = replace(base.ANN, email="accounts@ann.example.com")
BOB = replace(base.BOB, email="accounts@bob.example.com")
CHEN = replace(base.CHEN, email="accounts@chen.example.com")
TODAY = d("2026-03-02")


def books(*records: object, customers: tuple[Customer, ...] | None = None) -> Snapshot:
    return base.books(*records, customers=customers or (ANN, BOB, CHEN))


POLICIES = load_policies(None)
CALENDAR = SendCalendar("Europe/London", "GB")


def chased(basis: Basis) -> set[str]:
    """Invoice ids tonight's reminders would name."""
    found = debtors(basis, {}, {}, {})
    decided = evaluate("firm", found, POLICIES, CALENDAR, TODAY)
    return {line.item.invoice_id for r in decided.reminders for line in r.lines}


def skipped(basis: Basis) -> dict[str, tuple[Skip, str]]:
    decided = evaluate("firm", debtors(basis, {}, {}, {}), POLICIES, CALENDAR, TODAY)
    return {s.invoice_id: (s.reason, s.detail) for s in decided.skipped}


def test_an_invoice_the_ledger_marks_paid_is_never_chased_nor_counted_whatever_ccms_arithmetic_says():
    firm = books(
        invoice("1", ANN, "480.00", "2025-10-01", "2025-10-31", due_amount="0", status=Status.PAID),
        invoice("2", ANN, "120.00", "2026-01-01", "2026-01-31"),
    )
    basis = Basis.of(firm, TODAY)
    assert chased(basis) == {"2"}
    reason, detail = skipped(basis)["1"]
    assert reason is Skip.LEDGER_DIFFERS
    assert detail == (
        "Invoice INV-1 for Ann's Café: the ledger marks it paid, but ccm's payments and credits leave "
        "£480.00 outstanding: not chased and not counted toward a hold until they agree"
    )
    # Not counted toward a hold: ccm's open balance for Ann is the one invoice both agree on.
    assert basis.positions["C1"].base.open == Decimal("120.00")
    assert basis.positions["C1"].base.overdue == Decimal("120.00")
    # ... and the difference stays a discrepancy with its explanation.
    assert [x.kind for x in reconcile(firm, TODAY).discrepancies] == [Kind.PAID_WITHOUT_PAYMENT]


def test_an_invoice_whose_amount_due_differs_is_left_alone_until_ledger_and_ccm_agree():
    firm = books(
        invoice("3", BOB, "300.00", "2026-01-01", "2026-01-31", due_amount="100.00"),
        payment("P1", BOB, "2026-01-20", ("3", "100.00")),
    )
    basis = Basis.of(firm, TODAY)
    assert chased(basis) == set()
    assert skipped(basis)["3"][0] is Skip.LEDGER_DIFFERS
    assert "C2" not in basis.positions  # nothing counted toward a hold


def test_a_payment_in_another_currency_counts_at_the_rate_the_ledger_records_for_it():
    firm = books(
        invoice("4", BOB, "2400.00", "2026-01-01", "2026-01-31", due_amount="0", status=Status.PAID),
        payment("P2", BOB, "2026-01-30", ("4", "2760.00"), currency="EUR", rate="1.15"),
    )
    done = reconcile(firm, TODAY)
    state = done.invoices["4"]
    assert (state.applied, state.outstanding, state.paid_on) == (
        Decimal("2400.00"),
        Decimal(0),
        d("2026-01-30"),
    )
    assert chased(Basis.of(firm, TODAY)) == set()
    [finding] = done.discrepancies
    assert finding.explanation == (
        "The payment of €2,760.00 from Bob's Bikes on 30 January 2026 allocates €2,760.00 to Invoice INV-4, "
        "which is in GBP: applied as £2,400.00 at the rates the ledger records"
    )


def test_a_payment_in_another_currency_without_a_rate_is_not_applied_and_the_ledger_still_wins():
    firm = books(
        invoice("5", BOB, "100.00", "2026-01-01", "2026-01-31", due_amount="0", status=Status.PAID),
        payment("P3", BOB, "2026-01-30", ("5", "115.00"), currency="EUR"),
    )
    basis = Basis.of(firm, TODAY)
    assert reconcile(firm, TODAY).invoices["5"].outstanding == Decimal("100.00")
    assert chased(basis) == set() and "C2" not in basis.positions


def test_a_customer_whose_ledger_balance_differs_is_neither_chased_nor_held_and_both_figures_are_listed():
    ann = replace(ANN, ledger_balance=Decimal("950.00"))  # the ledger knows of an invoice ccm never received
    bob = replace(BOB, ledger_balance=Decimal("200.00"))
    firm = books(
        invoice("6", ANN, "700.00", "2025-11-01", "2025-12-01"),
        invoice("7", BOB, "200.00", "2025-11-01", "2025-12-01"),
        customers=(ann, bob, CHEN),
    )
    basis = Basis.of(firm, TODAY)
    assert chased(basis) == {"7"}
    reason, detail = skipped(basis)["6"]
    assert reason is Skip.LEDGER_BALANCE
    assert detail == (
        "Ann's Café: the ledger's balance is £950.00, but ccm's open balance is £700.00: neither held "
        "nor chased until they agree"
    )
    holds = [Decision("C1", HOLD, ("an invoice is 93 days overdue",)), Decision("C2", HOLD, ("overdue",))]
    accounts = [
        Account("C1", "Ann's Café", Money.zero("GBP")),
        Account("C2", "Bob's Bikes", Money.zero("GBP")),
    ]
    assert [x.customer_id for x in screen(holds, accounts, basis.agreement)] == ["C2"]
    [finding] = [x for x in reconcile(firm, TODAY).discrepancies if x.kind is Kind.BALANCE_MISMATCH]
    assert [(label, str(m)) for label, m in finding.amounts] == [
        ("ledger balance", "£950.00"), ("ccm open balance", "£700.00"), ("ccm unapplied", "£0.00"),
    ]  # fmt: skip


def test_balances_agree_with_or_without_unapplied_credit_netted_and_a_held_back_invoice_is_no_second_flag():
    nets = replace(ANN, ledger_balance=Decimal("150.00"))  # QuickBooks nets unapplied money off
    gross = replace(BOB, ledger_balance=Decimal("300.00"))  # Xero counts the invoices only
    chen = replace(
        CHEN, currency="GBP", ledger_balance=Decimal("0.00")
    )  # its one invoice the ledger calls paid
    firm = books(
        invoice("8", ANN, "200.00", "2026-02-01", "2026-03-01"),
        payment("P4", ANN, "2026-02-10", unapplied="50.00", kind=PaymentKind.OVERPAYMENT),
        invoice("9", BOB, "300.00", "2026-02-01", "2026-03-01"),
        payment("P5", BOB, "2026-02-10", unapplied="40.00", kind=PaymentKind.OVERPAYMENT),
        invoice("10", CHEN, "90.00", "2026-02-01", "2026-03-01", due_amount="0", status=Status.PAID),
        customers=(nets, gross, chen),
    )
    assert Basis.of(firm, TODAY).agreement.balances == {}


def test_archived_and_merged_customers_are_never_chased_or_held_and_a_rule_hold_on_them_is_released():
    archived = replace(ANN, status=CustomerStatus.ARCHIVED)
    merged = replace(BOB, merged_into="C3")
    firm = books(
        invoice("11", archived, "500.00", "2025-11-01", "2025-12-01"),
        invoice("12", merged, "500.00", "2025-11-01", "2025-12-01"),
        invoice("13", CHEN, "500.00", "2025-11-01", "2025-12-01", currency="USD", rate="1.25"),
        customers=(archived, merged, CHEN),
    )
    basis = Basis.of(firm, TODAY)
    assert chased(basis) == {"13"}
    zero = Money.zero("GBP")
    accounts = [
        Account("C1", "Ann's Café", zero, on_hold=True, held_by_rule=True),
        Account("C2", "Bob's Bikes", zero),
        Account("C3", "Chen Trading", zero),
    ]
    rules_said = [Decision("C2", HOLD, ("overdue",)), Decision("C3", HOLD, ("overdue",))]
    assert [(x.customer_id, x.action, x.reason) for x in screen(rules_said, accounts, basis.agreement)] == [
        (
            "C1",
            RELEASE,
            "Ann's Café is archived (inactive) in the ledger: ccm leaves inactive customers alone",
        ),
        ("C3", HOLD, "overdue"),
    ]


def test_a_manual_hold_on_an_archived_customer_stays_until_a_person_lifts_it():
    archived = replace(ANN, status=CustomerStatus.ARCHIVED)
    basis = Basis.of(books(customers=(archived,)), TODAY)
    held = [Account("C1", "Ann's Café", Money.zero("GBP"), manual="hold", on_hold=True)]
    assert screen([], held, basis.agreement) == []
    assert date(2026, 3, 2) == TODAY
