"""`ccm limits suggest`: raise for reliable payers, idle credit lines, poor payers' limits cut to what they repay."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from connector.creditcontrol import suggest
from connector.creditcontrol.suggestions import Suggestion
from connector.model import Customer, CustomerStatus, Money, PaymentKind, Status
from tests.reconcile.firm import FIRM, books, invoice, payment

TODAY = date(2026, 11, 30)
ANN = Customer("A", "Ann's Café")  # pays every invoice on the day
IDLE = Customer("I", "Ivy Fitness Group")  # pays on the day, small invoices, a large limit
PIKE = Customer("P", "Pike Interiors Supplies")  # has paid nothing in 15 months
DRAKE = Customer("D", "Drake Cleaning & Co", status=CustomerStatus.ARCHIVED)  # pays on the day, but archived
GONE = Customer("X", "Yew Plumbing Supplies (deleted)", status=CustomerStatus.DELETED)
MERGED = Customer("M", "Marlow Signs", merged_into="A")
SLOW = Customer("S", "Sterling Tiling Group")  # pays, three months late
EVERYONE = (ANN, IDLE, PIKE, DRAKE, GONE, MERGED, SLOW)


def gbp(amount: str) -> Money:
    return Money(Decimal(amount), "GBP")


def monthly(who: Customer, each: str, months: int = 12, late: int = 0) -> list[object]:
    """An invoice of `each` every 30 days, the last due on 1 November 2026, each issued 28 days before it is
    due and paid `late` days after (still open when that day is after TODAY)."""
    found: list[object] = []
    for n in range(months):
        due = date(2026, 11, 1) - timedelta(days=30 * n)
        iid, issued, paid = f"{who.id}{n}", str(due - timedelta(days=28)), due + timedelta(days=late)
        if paid > TODAY:
            found.append(invoice(iid, who, each, issued, str(due)))
            continue
        found.append(invoice(iid, who, each, issued, str(due), due_amount="0", status=Status.PAID))
        found.append(payment(f"P{iid}", who, str(paid), (iid, each)))
    return found


def suggestions(limits: dict[str, str], *records: object) -> dict[str, Suggestion]:
    firm = books(*records, customers=EVERYONE)
    assert firm.tenant == FIRM
    return {s.name: s for s in suggest(firm, TODAY, {k: gbp(v) for k, v in limits.items()})}


def test_a_reliable_payer_whose_limit_is_below_what_they_run_gets_a_raise_with_the_figures():
    found = suggestions({"A": "500"}, *monthly(ANN, "2000.00"))
    ann = found["Ann's Café"]
    assert (ann.kind, ann.rating, ann.suggested, ann.peak) == ("raise", "A", gbp("2500"), Decimal("2000.00"))
    assert ann.reason == (
        "rating A, pays reliably: up to £2,000.00 open at once in the past year, £0.00 open now, "
        "£24,000.00 received in the past year; the limit £500.00 is below 80% of that peak"
    )


def test_a_large_unused_limit_of_a_reliable_payer_is_listed_as_an_idle_credit_line():
    found = suggestions({"I": "50000"}, *monthly(IDLE, "400.00"))
    ivy = found["Ivy Fitness Group"]
    assert (ivy.kind, ivy.rating, ivy.suggested) == ("idle", "A", gbp("500"))
    assert ivy.reason.startswith("idle credit line: rating A, up to £400.00 open at once in the past year")
    assert ivy.reason.endswith("£49,600.00 of the £50,000.00 limit was never used")


def test_an_e_payer_who_has_paid_nothing_in_15_months_is_cut_to_nothing_not_to_their_peak():
    old = [
        invoice(f"p{n}", PIKE, "4000.00", "2025-07-01", "2025-08-15")
        for n in range(5)  # 20,000.00 open, unpaid since August 2025
    ]
    paid_once = [
        invoice("p9", PIKE, "100.00", "2025-06-01", "2025-07-01", due_amount="0", status=Status.PAID),
        payment("PP9", PIKE, "2025-08-20", ("p9", "100.00")),
    ]
    pike = suggestions({"P": "50000"}, *old, *paid_once)["Pike Interiors Supplies"]
    assert (pike.rating, pike.kind, pike.suggested) == ("E", "lower", gbp("0"))  # not 20,000
    assert (pike.peak, pike.received, pike.last_paid) == (Decimal("20000.00"), Decimal(0), date(2025, 8, 20))
    assert pike.reason == (
        "rating E: the limit £50,000.00 is far above what they have shown they repay: up to £20,000.00 "
        "open at once in the past year, £20,000.00 open now, £0.00 received in the past year; nothing "
        "received in the past year (last payment 2025-08-20): no further credit until they pay"
    )


def test_a_poor_payer_is_never_raised_and_is_cut_to_a_quarter_of_a_years_receipts():
    # Sterling is sent 3,000.00 a month and pays each 90 days late: up to four invoices (12,000.00) open at
    # once, 27,000.00 received in the past year, 9,000.00 open now.
    slow = monthly(SLOW, "3000.00", late=90)
    assert "Sterling Tiling Group" not in suggestions(
        {"S": "5000"}, *slow
    )  # under their peak, yet not raised
    cut = suggestions({"S": "40000"}, *slow)["Sterling Tiling Group"]
    assert (cut.rating, cut.kind, cut.suggested) == ("E", "lower", gbp("7000"))
    assert (cut.peak, cut.received) == (Decimal("12000.00"), Decimal("27000.00"))
    assert cut.reason.endswith(
        "£27,000.00 received in the past year; a quarter of a year's receipts is £6,750.00"
    )
    unlimited = suggestions({}, *slow)["Sterling Tiling Group"]
    assert (unlimited.kind, unlimited.suggested) == ("set", gbp("7000"))


def test_archived_deleted_and_merged_customers_get_no_suggestion():
    records = [*monthly(DRAKE, "2000.00"), *monthly(GONE, "2000.00"), *monthly(MERGED, "2000.00")]
    found = suggestions({"D": "500", "X": "500", "M": "500"}, *records)
    assert found == {}


def test_an_overpayment_allocated_late_does_not_keep_an_invoice_open_in_the_peak():
    # One 5,000.00 invoice a month since January, each paid on the day; and one in December 2025, paid in
    # advance by an overpayment only allocated ten months later. The most open at once is one invoice.
    records = monthly(ANN, "5000.00", months=10)
    records += [
        invoice("early", ANN, "5000.00", "2025-12-01", "2025-12-31", due_amount="0", status=Status.PAID),
        payment("O1", ANN, "2025-12-20", ("early", "5000.00", "2026-10-20"), kind=PaymentKind.OVERPAYMENT),
    ]
    ann = suggestions({"A": "1000"}, *records)["Ann's Café"]
    assert (ann.peak, ann.suggested) == (Decimal("5000.00"), gbp("6500"))


def test_limits_suggest_lists_idle_lines_and_poor_payers_with_their_figures(capsys, home, monkeypatch):
    from datetime import UTC, datetime

    from connector import creditcontrol
    from connector.model import Tenant
    from connector.store import Store, records
    from connector.store.tenants import save_tenant
    from tests.test_cli import ccm

    firm = books(
        *monthly(IDLE, "400.00"),
        *[invoice(f"p{n}", PIKE, "4000.00", "2025-07-01", "2025-08-15") for n in range(5)],
        *monthly(DRAKE, "2000.00"),
        customers=EVERYONE,
    )
    store = Store.open(f"sqlite:///{home / 'ccm.db'}")
    with store.begin() as conn:
        save_tenant(conn, Tenant("acme", "Acme Ltd", "scripted"))
        for entity, items in (
            ("customer", firm.customers),
            ("invoice", firm.invoices),
            ("payment", firm.payments),
        ):
            records.upsert(conn, "acme", entity, list(items))
        for cid in ("I", "P", "D"):
            creditcontrol.set_limit(conn, "acme", cid, gbp("50000"), datetime(2026, 11, 1, tzinfo=UTC), "set")
    store.close()
    monkeypatch.setattr("connector.cli.commands.credit._now", lambda: datetime(2026, 11, 30, 12, tzinfo=UTC))
    code, out, err = ccm(capsys, "limits", "suggest")
    assert code == 0, err
    text = " ".join(out.replace("│", " ").split())  # a reason wrapped over rows reads on across them
    assert "Ivy Fitness Group" in text and "idle credit line" in text
    assert "Pike Interiors Supplies" in text and "no further credit until they pay" in text
    assert "Drake Cleaning" not in text  # archived
