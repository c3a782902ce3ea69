"""Tonight's hold decisions are computed once per basis: planning words reminders by them, the night writes
them, and both read the same store state. Different inputs are decided afresh, never taken from the memo."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest

from connector import creditcontrol
from connector.creditcontrol import Held, Standing, planning
from connector.model import Customer, Invoice, Money, Status, Tenant
from connector.reconcile import Basis, Snapshot
from connector.rules.credit import Rule

TODAY = date(2026, 11, 24)
TENANT = Tenant("t1", "Acme Ltd", "xero", "GBP", "Europe/London", "GB")
RULES = (Rule("overdue", days=60, min_amount=Decimal(500)),)


def gbp(amount: str) -> Money:
    return Money(Decimal(amount), "GBP")


def basis() -> Basis:
    customers = (Customer("c1", "Harbour Roofing Supplies"), Customer("c2", "Cedar Garden Centre LLP"))
    invoices = (
        Invoice("i1", "c1", gbp("900.00"), gbp("900.00"), Status.OPEN, date(2026, 7, 1), date(2026, 8, 1),
                "INV-0001"),
        Invoice("i2", "c2", gbp("120.00"), gbp("120.00"), Status.OPEN, date(2026, 11, 1), date(2026, 11, 30),
                "INV-0002"),
    )  # fmt: skip
    return Basis.of(Snapshot(TENANT, customers, invoices), TODAY)


def standing(held: dict[str, Held] | None = None) -> Standing:
    """What the store says, read afresh each time (equal content, new objects)."""
    return Standing({}, dict(held or {}), {}, {})


@pytest.fixture
def accounts_built(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many times `decide_on` built the customers' accounts."""
    calls: list[int] = []
    real = planning.accounts

    def counting(*args: Any, **kwargs: Any) -> list[creditcontrol.Account]:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(planning, "accounts", counting)
    return calls


def test_planning_and_writing_the_holds_share_one_decision(accounts_built: list[int]) -> None:
    tonight = basis()
    planned, seen = creditcontrol.decide_on(tonight, standing(), RULES)
    written, _ = creditcontrol.decide_on(tonight, standing(), RULES)
    assert accounts_built == [1]
    assert written == planned
    assert [(d.customer_id, d.action) for d in written] == [("c1", "hold")]
    assert "INV-0001 is 115 days overdue" in written[0].reason
    assert {a.customer_id for a in seen} == {"c1", "c2"}


def test_a_hold_recorded_in_between_is_decided_afresh(accounts_built: list[int]) -> None:
    tonight = basis()
    first, _ = creditcontrol.decide_on(tonight, standing(), RULES)
    since = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
    held = {"c1": Held(True, "rule", "INV-0001 overdue", since, "hold-1")}
    after, _ = creditcontrol.decide_on(tonight, standing(held), RULES)
    assert accounts_built == [1, 1]
    assert [d.action for d in first] == ["hold"]
    assert after == []  # already on hold: nothing to decide


def test_other_rules_or_another_basis_are_decided_afresh(accounts_built: list[int]) -> None:
    tonight = basis()
    creditcontrol.decide_on(tonight, standing(), RULES)
    stricter = (Rule("overdue", days=200, min_amount=Decimal(500)),)
    assert creditcontrol.decide_on(tonight, standing(), stricter)[0] == []
    fresh, _ = creditcontrol.decide_on(basis(), standing(), RULES)
    assert accounts_built == [1, 1, 1]
    assert [(d.customer_id, d.action) for d in fresh] == [("c1", "hold")]
