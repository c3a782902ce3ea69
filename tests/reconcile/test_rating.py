"""Payment timing from the money, and a rating a credit controller would sign, on small constructed books."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from connector.model import Customer, PaymentKind, Status
from connector.reconcile import Trend, allocate, behaviours
from connector.reconcile.behaviour import Behaviour
from connector.reconcile.explain import explain
from connector.reconcile.fx import Rates
from connector.reconcile.rating import DEFAULT_MODEL, RatingModel
from connector.rules.credit import CreditFileError, load_rating, load_rules
from tests.reconcile.firm import books, credit, d, invoice, payment

HARBOUR = Customer("H", "Harbour Roofing Supplies")
GOOD = Customer("G", "Granite Tiling Limited")
POOR = Customer("P", "Pike Interiors Supplies")
JUNIPER = Customer("J", "Juniper Software Services")
EVERYONE = (HARBOUR, GOOD, POOR, JUNIPER)
AS_OF = d("2026-11-30")


def rated(*records: object, model: RatingModel = DEFAULT_MODEL) -> dict[str, Behaviour]:
    firm = books(*records, customers=EVERYONE)
    return behaviours(firm, allocate(firm, AS_OF), Rates.from_snapshot(firm), AS_OF, model)


def on_time(iid: str, who: Customer, total: str, due: str) -> tuple[object, object]:
    return (
        invoice(iid, who, total, "2024-12-01", due, due_amount="0", status=Status.PAID),
        payment(f"P{iid}", who, due, (iid, total)),
    )


def history(who: Customer, count: int, each: str) -> list[object]:
    """`count` monthly invoices of `each`, every one paid on its due date, the last due in October 2026."""
    start = d("2026-10-01")
    found: list[object] = []
    for n in range(count):
        due = start - timedelta(days=30 * n)
        found.extend(on_time(f"{who.id}{n}", who, each, str(due)))
    return found


def test_an_overpayment_allocated_eleven_months_later_paid_the_invoice_the_day_the_money_arrived():
    # INV-h1, due 31 December 2025. Harbour sent 2,400.00 on 20 December 2025, before the invoice was due;
    # the bookkeeper kept it as an overpayment and allocated it on 20 November 2026.
    seen = rated(
        invoice("h1", HARBOUR, "2400.00", "2025-12-01", "2025-12-31", due_amount="0", status=Status.PAID),
        payment("O1", HARBOUR, "2025-12-20", ("h1", "2400.00", "2026-11-20"), kind=PaymentKind.OVERPAYMENT),
    )["H"]
    (obs,) = seen.observations
    assert (obs.paid_on, obs.days_late) == (d("2025-12-20"), -11)  # 11 days early, not 324 days late
    assert (seen.rating, seen.weighted_days_late, seen.on_time_share) == ("A", Decimal(0), Decimal(1))
    assert seen.days_to_pay == (-11,)  # the forecast learns from the money's date too
    assert "INV-h1 (£2,400.00) paid 2025-12-20, 11 days early" in " ".join(explain(seen, "GBP"))


def test_an_invoice_paid_in_two_parts_is_paid_when_the_part_that_completed_it_arrived():
    seen = rated(
        invoice("g1", GOOD, "1000.00", "2026-01-01", "2026-01-31", due_amount="0", status=Status.PAID),
        payment("P1", GOOD, "2026-01-20", ("g1", "400.00", "2026-01-20")),
        payment("P2", GOOD, "2026-02-10", ("g1", "600.00", "2026-03-15")),  # entered a month after it came
    )["G"]
    (obs,) = seen.observations
    assert (obs.paid_on, obs.days_late, obs.weight) == (d("2026-02-10"), 10, Decimal("1000.00"))


def test_the_part_cleared_by_a_credit_note_is_not_the_customers_lateness():
    # INV-g1 for 1,000.00: 600.00 paid on the due date; 400.00 credited (goods returned) 200 days later.
    # INV-g2 for 300.00: credited in full a year late. Neither is a late payment.
    seen = rated(
        invoice("g1", GOOD, "1000.00", "2025-12-01", "2026-01-31", due_amount="0", status=Status.PAID),
        payment("P1", GOOD, "2026-01-31", ("g1", "600.00")),
        credit("c1", GOOD, "400.00", "2026-08-19", ("g1", "400.00")),
        invoice("g2", GOOD, "300.00", "2025-10-01", "2025-10-31", due_amount="0", status=Status.PAID),
        credit("c2", GOOD, "300.00", "2026-10-31", ("g2", "300.00")),
    )["G"]
    assert [(o.number, o.days_late, o.weight) for o in seen.observations] == [
        ("INV-g1", 0, Decimal("600.00"))
    ]
    assert (seen.rating, seen.paid_count) == ("A", 1)
    lines = explain(seen, "GBP")
    assert "left out: INV-g1 (£400.00) cleared by credit note CN-c1: a credit, not a late payment" in lines
    assert "left out: INV-g2 (£300.00) cleared by credit note CN-c2: a credit, not a late payment" in lines


def test_one_small_old_invoice_does_not_undo_two_years_of_good_payment():
    # 24 invoices of 1,000.00 paid on the day; one of 120.00 forgotten for 200 days.
    seen = rated(*history(GOOD, 24, "1000.00"), invoice("old", GOOD, "120.00", "2026-04-01", "2026-05-14"))[
        "G"
    ]
    assert seen.severe_amount == Decimal("120.00")
    assert seen.rating == "B"  # no longer A, but not E: it is 0.5 % of what was rated, under 500.00
    lines = explain(seen, "GBP")
    assert any(
        line.startswith("small old debt, not enough for E") and "keeps the rating at B or below" in line
        and "INV-old (£120.00) unpaid 200 days past due" in line
        for line in lines
    )  # fmt: skip


def test_a_large_old_debt_rates_e_however_good_the_rest_was():
    seen = rated(*history(GOOD, 5, "1000.00"), invoice("big", GOOD, "2000.00", "2026-07-01", "2026-08-01"))[
        "G"
    ]
    # 2,000.00 unpaid 121 days: at least 500.00 and 10 % of the 7,000.00 rated.
    assert (seen.rating, seen.severe_amount, seen.weighed) == ("E", Decimal("2000.00"), Decimal("7000.00"))
    lines = explain(seen, "GBP")
    assert lines[2] == (
        "E: £2,000.00 unpaid more than 90 days past due is at least £500.00 and 10% of the £7,000.00 "
        "rated: INV-big (£2,000.00) unpaid 121 days past due"
    )


def test_a_customer_who_has_paid_nothing_has_no_trend():
    # Pike: one invoice unpaid 400 days, one 30 days: the recent one is "less late", yet nothing was paid.
    seen = rated(
        invoice("p1", POOR, "900.00", "2025-09-01", "2025-10-26"),
        invoice("p2", POOR, "500.00", "2026-10-01", "2026-10-31"),
    )["P"]
    assert (seen.trend, seen.rating, seen.paid_count) == (Trend.UNKNOWN, "E", 0)
    assert "trend unknown: nothing paid yet" in explain(seen, "GBP")


def test_a_customer_is_not_improving_on_the_strength_of_debts_that_are_merely_younger():
    seen = rated(
        *on_time("p0", POOR, "100.00", "2025-03-01"),  # paid, long ago
        invoice("p1", POOR, "900.00", "2025-09-01", "2025-10-26"),
        invoice("p2", POOR, "500.00", "2026-10-01", "2026-10-31"),
    )["P"]
    assert seen.trend is Trend.STEADY  # the recent side has nothing paid: not "improving"


def test_money_the_customer_sent_that_is_not_yet_allocated_pays_their_oldest_invoice_the_day_it_came():
    # Juniper paid 1,417.90 on 25 June 2026, before INV-j9 (663.00) was due; nobody has allocated it yet,
    # so the ledger still shows INV-j9 open and 152 days past due.
    seen = rated(
        *history(JUNIPER, 6, "500.00"),
        invoice("j9", JUNIPER, "663.00", "2026-06-01", "2026-07-01"),
        payment("U1", JUNIPER, "2026-06-25", amount="1417.90", unapplied="1417.90"),
    )["J"]
    j9 = [o for o in seen.observations if o.number == "INV-j9"]
    assert [(o.settled, o.paid_on, o.days_late) for o in j9] == [(True, d("2026-06-25"), -6)]
    assert (seen.rating, seen.severe_amount, seen.open_overdue_count) == ("A", Decimal(0), 0)
    assert (
        "note: INV-j9 (£663.00) counted as paid on 2026-06-25 by the customer's unallocated payment: "
        "allocate it"
    ) in explain(seen, "GBP")


def test_unallocated_money_that_came_late_is_late_and_what_it_does_not_cover_stays_open():
    seen = rated(
        invoice("j1", JUNIPER, "1000.00", "2026-01-01", "2026-01-31"),
        invoice("j2", JUNIPER, "800.00", "2026-02-01", "2026-02-28"),
        payment(
            "U1", JUNIPER, "2026-05-01", amount="1200.00", unapplied="1200.00"
        ),  # 90 days after j1 was due
        credit("c9", JUNIPER, "100.00", "2026-06-01", remaining="100.00"),
    )["J"]
    assert [(o.number, o.settled, o.days_late, o.amount) for o in seen.observations] == [
        ("INV-j1", True, 90, Decimal("1000.00")),
        ("INV-j2", False, 275, Decimal("500.00")),  # 800 - 200 paid - 100 credited: still owed
        ("INV-j2", True, 62, Decimal("200.00")),
    ]
    assert (
        "left out: INV-j2 (£100.00) covered by the customer's unallocated credit: a credit, not a late "
        "payment; allocate it" in explain(seen, "GBP")
    )


def test_every_rating_names_the_invoices_that_drove_it():
    late = [
        invoice("p1", POOR, "3000.00", "2026-01-01", "2026-01-31", due_amount="0", status=Status.PAID),
        payment("X1", POOR, "2026-04-01", ("p1", "3000.00")),
        invoice("p2", POOR, "200.00", "2026-02-01", "2026-03-03", due_amount="0", status=Status.PAID),
        payment("X2", POOR, "2026-03-13", ("p2", "200.00")),
    ]
    seen = rated(*late)["P"]
    assert seen.rating == "D"  # (3,000 x 60 + 200 x 10) / 3,200 = 56.9 days
    assert explain(seen, "GBP") == (
        "rating D: 2 paid and 0 unpaid past due; 56.9 days late on average weighted by amount (35.0 unweighted), "
        "0% on time or early",
        "56.9 weighted days late alone rates D (A: at most 3 and 80% on time; B: at most 10; C: at most 30; "
        "D: at most 60; E: more)",
        "the invoices that weigh most: INV-p1 (£3,000.00) paid 2026-04-01, 60 days late; "
        "INV-p2 (£200.00) paid 2026-03-13, 10 days late",
        "trend unknown: too little history",
    )
    assert explain(rated()["P"], "GBP") == ("unrated: no invoice has been paid or fallen due yet",)


# ---- the rating section of credit.yaml


def test_the_shipped_rules_file_states_the_thresholds_and_a_firm_can_change_them(tmp_path: Path):
    assert load_rating() == DEFAULT_MODEL
    shipped = (DEFAULT_MODEL.a_days, DEFAULT_MODEL.b_days, DEFAULT_MODEL.c_days, DEFAULT_MODEL.d_days)
    assert shipped == tuple(Decimal(n) for n in (3, 10, 30, 60))  # the thresholds ccm has always used
    own = tmp_path / "credit.yaml"
    own.write_text(
        "version: 1\nrules:\n  - {when: rating, in: [E]}\n"
        "rating:\n  d_max_days: 90\n  severe_min_amount: 5000\n  a_min_on_time_percent: 50\n"
    )
    model = load_rating(own)
    found = (model.d_days, model.severe_min_amount, model.a_on_time, model.c_days)
    assert found == (Decimal(90), Decimal(5000), Decimal("0.5"), Decimal(30))  # c_max_days: as shipped
    late = [
        invoice("p1", POOR, "3000.00", "2026-01-01", "2026-01-31", due_amount="0", status=Status.PAID),
        payment("X1", POOR, "2026-05-01", ("p1", "3000.00")),  # 90 days late
    ]
    assert rated(*late)["P"].rating == "E"
    assert rated(*late, model=model)["P"].rating == "D"


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("rating: [A, B]", "rating: must be a mapping of thresholds, got ['A', 'B']"),
        ("rating:\n  e_max_days: 90", "rating.e_max_days: unknown (allowed: a_max_days, "),
        ("rating:\n  b_max_days: -1", "rating.b_max_days: must be a number, at least 0, got -1"),
        ("rating:\n  severe_days: 90.5", "rating.severe_days: must be a whole number, at least 0, got 90.5"),
        (
            "rating:\n  severe_min_percent: 120",
            "rating.severe_min_percent: must be a percentage from 0 to 100",
        ),
        ("rating:\n  c_max_days: 5", "rating.c_max_days: must be at least b_max_days (10), got 5"),
        ("rating:\n  small_severe_cap: Z", "rating.small_severe_cap: must be one rating A-E, got 'Z'"),
    ],
)
def test_a_bad_rating_section_is_one_line_naming_file_and_key(tmp_path: Path, section: str, message: str):
    path = tmp_path / "credit.yaml"
    path.write_text(f"version: 1\nrules: []\n{section}\n")
    for load in (load_rating, load_rules):  # the night reads the rules first: a bad section stops it there
        with pytest.raises(CreditFileError) as exc:
            load(path)
        assert str(exc.value).startswith(f"{path}: {message}")
        assert "\n" not in str(exc.value)
