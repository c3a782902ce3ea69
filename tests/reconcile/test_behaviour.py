"""Payment behaviour, ratings and risk; DSO and CEI; the 13-week forecast."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from connector.model import Customer, Status
from connector.reconcile import Risk, Trend, allocate, behaviours, cei, dso, forecast
from connector.reconcile.behaviour import rate
from connector.reconcile.fx import Rates
from tests.reconcile.firm import ANN, BOB, CHEN, amounts, books, d, invoice, payment

DAN = Customer("C4", "Dan's Deli")
NEW = Customer("C5", "New Customer")
EVERYONE = (ANN, BOB, CHEN, DAN, NEW)
AS_OF = d("2026-06-30")


def paid(iid, who, total, due, days_late, issued="2026-01-01"):
    """An invoice and the payment that cleared it `days_late` days after its due date."""
    when = str(d(due) + timedelta(days=days_late))
    return (
        invoice(iid, who, total, issued, due, due_amount="0", status=Status.PAID),
        payment(f"P{iid}", who, when, (iid, total)),
    )


def study(*records):
    firm = books(*records, customers=EVERYONE)
    ledger = allocate(firm, AS_OF)
    rates = Rates.from_snapshot(firm)
    return firm, ledger, rates, behaviours(firm, ledger, rates, AS_OF)


def test_ratings_and_risk_follow_the_documented_rule():
    _, _, _, seen = study(
        *paid("a1", ANN, "100.00", "2026-02-01", 0), *paid("a2", ANN, "100.00", "2026-03-01", -5),
        *paid("a3", ANN, "100.00", "2026-04-01", 0),
        *paid("b1", BOB, "100.00", "2026-02-01", 20), *paid("b2", BOB, "100.00", "2026-03-01", 20),
        invoice("c1", CHEN, "50.00", "2026-01-01", "2026-03-01"),  # open, 121 days past due
        *paid("c2", CHEN, "500.00", "2026-04-01", 0),
        *paid("d1", DAN, "1000.00", "2025-11-01", 60), *paid("d2", DAN, "100.00", "2026-06-01", 0),
    )  # fmt: skip
    ann, bob, chen, dan, new = (seen[c.id] for c in EVERYONE)
    # Ann pays on time or early (early counts as 0 days late).
    assert (ann.rating, ann.risk, ann.on_time_share, ann.average_days_late) == ("A", Risk.LOW, 1, 0)
    assert (bob.rating, bob.risk, bob.weighted_days_late, bob.on_time_share) == (
        "C",
        Risk.MEDIUM,
        Decimal("20.0"),
        0,
    )
    # Chen: 50.00 unpaid 121 days past due is under the 500.00 that makes old debt an E by itself; it weighs
    # in the average instead: 50 x 121 / 550 = 11.0 days, C.
    assert (chen.rating, chen.risk, chen.open_overdue_count, chen.paid_count) == ("C", Risk.MEDIUM, 1, 1)
    assert chen.weighted_days_late == Decimal("11.0")
    # Dan: 60 days late on 1000, on time on 100: weighted 54.5, average 30, improving.
    assert (dan.weighted_days_late, dan.average_days_late, dan.trend) == (
        Decimal("54.5"),
        Decimal("30.0"),
        Trend.IMPROVING,
    )
    assert (dan.rating, dan.risk) == ("D", Risk.HIGH)
    assert (new.rating, new.risk, new.trend) == (None, Risk.MEDIUM, Trend.UNKNOWN)
    assert ann.days_to_pay == (-5, 0, 0)


def test_the_rating_letters():
    assert rate(Decimal(3), Decimal("0.8"), severe=False) == "A"
    assert rate(Decimal(3), Decimal("0.79"), severe=False) == "B"
    assert rate(Decimal(10), Decimal(0), severe=False) == "B"
    assert rate(Decimal("10.1"), Decimal(1), severe=False) == "C"
    assert rate(Decimal(30), Decimal(1), severe=False) == "C"
    assert rate(Decimal(60), Decimal(1), severe=False) == "D"
    assert rate(Decimal("60.1"), Decimal(1), severe=False) == "E"
    assert rate(Decimal(0), Decimal(1), severe=True) == "E"


def test_trend_compares_the_last_180_days_with_before():
    _, _, _, seen = study(
        *paid("b1", BOB, "100.00", "2025-10-01", 0), *paid("b2", BOB, "100.00", "2026-05-01", 12),
        *paid("a1", ANN, "100.00", "2025-10-01", 3), *paid("a2", ANN, "100.00", "2026-05-01", 6),
    )  # fmt: skip
    assert seen["C2"].trend is Trend.WORSENING
    assert seen["C1"].trend is Trend.STEADY


def test_dso_count_back_and_collection_effectiveness():
    firm = books(
        invoice("feb", ANN, "2800.00", "2026-02-10", "2026-03-12", due_amount="1400.00"),
        payment("P1", ANN, "2026-03-10", ("feb", "1400.00")),
        invoice("mar", BOB, "3100.00", "2026-03-15", "2026-04-14"),
    )
    rates = Rates.from_snapshot(firm)
    # Receivables 4,500: March's sales (3,100 over 31 days) absorb 3,100; the other 1,400 is half of
    # February's 2,800 over 28 days: 31 + 14 = 45 days.
    assert dso(firm, rates, d("2026-03-31")) == Decimal("45.0")
    # March: began 2,800, sold 3,100, ended 4,500 of which 3,100 not yet due: 1,400 / 2,800.
    assert cei(firm, rates, d("2026-03-01"), d("2026-03-31")) == Decimal("50.0")
    assert dso(books(), rates, d("2026-03-31")) == 0
    assert cei(books(), rates, d("2026-03-01"), d("2026-03-31")) is None


def test_forecast_places_each_invoice_by_its_customers_own_days_to_pay():
    history = [r for n in range(5) for r in paid(f"a{n}", ANN, "10.00", "2026-01-31", 10)]
    _, ledger, rates, seen = study(
        *history,
        invoice("soon", ANN, "100.00", "2026-06-01", str(AS_OF + timedelta(days=4))),
        invoice("late", BOB, "40.00", "2026-05-01", str(AS_OF - timedelta(days=20))),
        invoice("far", BOB, "30.00", "2026-06-01", str(AS_OF + timedelta(days=100))),
    )
    plan = forecast(ledger, rates, seen, AS_OF)
    assert len(plan.weeks) == 13
    assert plan.weeks[0].start == AS_OF and plan.weeks[0].end == AS_OF + timedelta(days=6)
    # Ann always pays 10 days late: due in 4 days, so collected 14 days from now, in week 3, surely.
    assert [w.expected for w in plan.weeks[:4]] == [0, 0, Decimal("100.00"), 0]
    assert (plan.weeks[2].low, plan.weeks[2].high) == (Decimal("100.00"), Decimal("100.00"))
    # Bob has no history: the tenant-wide prior (10 days late) puts one invoice past the horizon, and
    # the other is already later than anyone has ever paid.
    assert plan.later == Decimal("70.00")
    assert plan.on_prior == 2
    assert plan.open_total == Decimal("170.00")


def test_forecast_bands_come_from_the_spread_of_days_to_pay():
    lateness = (0, 0, 0, 7, 7)
    history = [r for n, late in enumerate(lateness) for r in paid(f"a{n}", ANN, "10.00", "2026-01-31", late)]
    _, ledger, rates, seen = study(*history, invoice("now", ANN, "100.00", "2026-06-01", str(AS_OF)))
    plan = forecast(ledger, rates, seen, AS_OF)
    week1, week2 = plan.weeks[:2]
    assert (week1.low, week1.expected, week1.high) == amounts(0, "60.00", "140.59")
    assert (week2.expected, plan.later) == amounts("40.00", 0)


def test_an_overdue_invoice_is_placed_by_the_history_of_invoices_that_were_at_least_as_late():
    lateness = (0, 0, 0, 20, 20)
    history = [r for n, late in enumerate(lateness) for r in paid(f"a{n}", ANN, "10.00", "2026-01-31", late)]
    _, ledger, rates, seen = study(
        *history, invoice("late", ANN, "100.00", "2026-05-01", str(AS_OF - timedelta(days=10)))
    )
    plan = forecast(ledger, rates, seen, AS_OF)
    # Already 10 days late, so not one of the on-time payers: 20 days late, 10 days from now, in week 2.
    assert [w.expected for w in plan.weeks[:3]] == list(amounts(0, "100.00", 0))


def test_an_invoice_not_yet_due_from_a_customer_who_always_pays_earlier_is_expected_on_its_due_date():
    history = [r for n in range(5) for r in paid(f"a{n}", ANN, "10.00", "2026-01-31", -10)]
    _, ledger, rates, seen = study(
        *history, invoice("soon", ANN, "100.00", "2026-06-20", str(AS_OF + timedelta(days=9)))
    )
    plan = forecast(ledger, rates, seen, AS_OF)
    assert [w.expected for w in plan.weeks[:3]] == list(amounts(0, "100.00", 0))
    assert plan.later == 0
