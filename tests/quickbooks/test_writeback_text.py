"""The pure parts of write-back: references, markers, and ccm's line in Customer.Notes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.quickbooks.writeback import HOLD_MARKER, Target, marker, target, with_hold
from connector.ledger import Fatal

TODAY = datetime(2026, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("ref", "expected"),
    [("invoice:130", Target("Invoice", "130")), ("customer:58", Target("Customer", "58")),
     ("customers:58", Target("Customer", "58")), ("130", Target("Invoice", "130"))],
)  # fmt: skip
def test_references_name_an_invoice_or_a_customer(ref, expected):
    assert target(ref) == expected


@pytest.mark.parametrize("ref", ["vendor:3", "invoice:abc", "invoice:", ""])
def test_a_bad_reference_is_fatal_and_named(ref):
    with pytest.raises(Fatal, match="not a QuickBooks invoice or customer reference"):
        target(ref)


def test_a_marker_refuses_a_key_that_would_break_it():
    assert marker("r1:c58:l2") == "[ccm:r1:c58:l2]"
    with pytest.raises(Fatal):
        marker("bad]key")


def test_a_hold_line_is_added_after_the_customers_own_text():
    notes = "Prefers calls after 2pm\nAP contact: Jo"
    held = with_hold(notes, True, "90 days overdue", TODAY)
    assert held == f"{notes}\n{HOLD_MARKER} since 2026-01-10: 90 days overdue"


def test_holding_twice_changes_nothing_and_release_restores_the_text_exactly():
    notes = "Prefers calls after 2pm\n\nAP contact: Jo\n"
    held = with_hold(notes, True, "over limit", TODAY)
    assert with_hold(held, True, "another reason", TODAY) == held
    assert with_hold(held, False, "paid", TODAY) == notes


def test_release_without_a_hold_leaves_notes_alone():
    assert with_hold("just text", False, "paid", TODAY) == "just text"
    assert with_hold("", True, "x", TODAY) == f"{HOLD_MARKER} since 2026-01-10: x"
