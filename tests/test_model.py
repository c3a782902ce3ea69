from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from connector.model import Invoice, ModelError, Money, Status, Tenant


def test_money_adds_within_one_currency():
    assert Money(Decimal("0.10"), "GBP") + Money(Decimal("0.20"), "GBP") == Money(Decimal("0.30"), "GBP")


def test_money_never_sums_across_currencies():
    with pytest.raises(ModelError, match="currency mismatch: GBP and EUR"):
        _ = Money(Decimal(1), "GBP") + Money(Decimal(1), "EUR")


def test_money_refuses_floats_and_bad_currencies():
    with pytest.raises(ModelError, match="must be Decimal"):
        Money(0.1, "GBP")  # type: ignore[arg-type]
    with pytest.raises(ModelError, match="ISO currency"):
        Money(Decimal(1), "pounds")


def test_instants_must_be_utc():
    total = Money(Decimal(100), "GBP")
    with pytest.raises(ModelError, match="UTC"):
        Invoice("I1", "C1", total, total, Status.OPEN, date(2026, 1, 1), updated_at=datetime(2026, 1, 1))
    ok = Invoice(
        "I1", "C1", total, total, Status.OPEN, date(2026, 1, 1), updated_at=datetime(2026, 1, 1, tzinfo=UTC)
    )
    assert ok.currency == "GBP"


def test_invoice_amounts_share_one_currency():
    with pytest.raises(ModelError, match="different currencies"):
        Invoice("I1", "C1", Money(Decimal(1), "GBP"), Money(Decimal(1), "EUR"), Status.OPEN, date(2026, 1, 1))


def test_records_are_immutable():
    t = Tenant("acme", "Acme", "xero")
    with pytest.raises(AttributeError):
        t.name = "Other"  # type: ignore[misc]


def test_live_statuses():
    assert [s for s in Status if s.live] == [Status.OPEN, Status.PAID]
