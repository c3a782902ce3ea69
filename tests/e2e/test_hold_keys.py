"""A customer released from hold and over the limit again later the same day must be held again."""

from __future__ import annotations

from connector.run.night import run_night
from tests.scripted import invoice, payment
from tests.test_credit_control import MORNING, firm, set_limit, settings

__all__ = ["firm", "settings"]  # the credit-control fixtures, shared


def test_held_released_and_over_the_limit_again_the_same_day_is_held_again(store, settings, firm):
    set_limit(store, "1000")
    run_night(store, settings, "acme", now=MORNING, ledger=firm)
    assert firm.held == {"C1"}
    firm.put("payments", payment("P1", "I1", "1500.00", "C1"))
    released = run_night(store, settings, "acme", now=MORNING.replace(hour=11), ledger=firm)
    assert [h.action for h in released.holds] == ["release"]
    assert firm.held == set()
    firm.put("invoices", invoice("I2", "C1", total="2000.00", due="2026-12-24", Number="INV-0002"))

    again = run_night(store, settings, "acme", now=MORNING.replace(hour=14), ledger=firm)

    assert [h.action for h in again.holds] == ["hold"]  # the rules decide to hold...
    assert firm.held == {"C1"}  # ...and the ledger must show it
