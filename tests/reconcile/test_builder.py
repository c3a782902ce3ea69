"""`builder`: the positional constructors planning uses for its hot records build what the classes' own do."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import pytest

from connector.model import Customer, CustomerStatus, Invoice, Money, Status
from connector.reconcile.ledger import InvoiceState
from connector.reconcile.snapshot import builder
from connector.rules.dunning import DueItem


def test_a_built_record_equals_and_hashes_as_the_constructors_and_stays_frozen():
    due = date(2026, 6, 30)
    owed = Money(Decimal("120.00"), "GBP")
    make = builder(
        DueItem,
        "invoice_id due_date outstanding number disputed last_level last_sent_on pay_url held_back"
        " promised_until",
    )
    built = make("I-1", due, owed, "INV-1", False, 2, date(2026, 6, 1), None, None, None)
    own = DueItem("I-1", due, owed, "INV-1", last_level=2, last_sent_on=date(2026, 6, 1))
    assert built == own
    assert hash(built) == hash(own)
    assert repr(built) == repr(own)
    with pytest.raises(AttributeError):
        built.last_level = 3  # type: ignore[misc]


def test_every_field_is_set_in_declaration_order():
    invoice = Invoice(
        "I-1", "C-1", Money(Decimal(5), "GBP"), Money(Decimal(5), "GBP"), Status.OPEN, date(2026, 1, 1)
    )
    state = builder(InvoiceState, "invoice applied outstanding paid_on allocations")(
        invoice, Decimal(1), Decimal(4), None, ()
    )
    assert (state.invoice, state.applied, state.outstanding, state.paid_on, state.allocations) == (
        invoice, Decimal(1), Decimal(4), None, (),
    )  # fmt: skip
    customer = builder(
        Customer, "id name status email currency segments merged_into updated_at ledger_balance phone"
    )("C-1", "Ann", CustomerStatus.ACTIVE, None, "GBP", (), None, None, None, None)
    assert customer == Customer("C-1", "Ann", currency="GBP")


def test_fields_named_out_of_order_or_missing_fail_at_import():
    with pytest.raises(ImportError, match="DueItem's fields are invoice_id due_date"):
        builder(DueItem, "due_date invoice_id outstanding")
    with pytest.raises(ImportError, match="InvoiceState's fields"):
        builder(InvoiceState, "invoice applied outstanding paid_on")


def test_a_class_without_slots_is_refused():
    @dataclass(frozen=True)
    class Loose:
        a: int

    with pytest.raises(ImportError, match="Loose is not a slotted dataclass"):
        builder(Loose, "a")
