"""mappings/xero.yaml on recorded, sandbox-shaped Xero JSON: every stream to its canonical records."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from adapters.xero.schema import raw_schema
from connector.mapping import CompiledMapping, load_mapping
from connector.mapping.loader import MappingFileError
from connector.model import (
    Customer,
    CustomerStatus,
    Invoice,
    Money,
    Payment,
    PaymentKind,
    PaymentStatus,
    SourceKind,
    Status,
)

MAPPING = Path(__file__).parents[2] / "mappings" / "xero.yaml"
PAGE = json.loads((Path(__file__).parent / "fixtures" / "page.json").read_text(), parse_float=Decimal)


@pytest.fixture(scope="module")
def mapping() -> CompiledMapping:
    return load_mapping(MAPPING, schema=raw_schema())


def mapped(mapping: CompiledMapping, stream: str) -> dict[str, Any]:
    records, errors = mapping.streams[stream].map_page(PAGE[stream])
    assert all(e.record_id == "i-bad" for e in errors), errors
    return {r.id: r for r in records}


def test_contacts_become_customers_with_groups_archive_and_merge(mapping: CompiledMapping) -> None:
    got = mapped(mapping, "contacts")
    assert got["c-1"] == Customer(
        "c-1", "Acme Ltd", CustomerStatus.ACTIVE, "ap@acme.test", "GBP", ("Trade",), None,
        datetime(2026, 1, 1, tzinfo=UTC),
    )  # fmt: skip
    assert got["c-2"].status is CustomerStatus.ARCHIVED
    assert got["c-2"].merged_into == "c-1"
    assert got["c-2"].segments == ()


def test_only_sales_invoices_with_mapped_status_and_msjson_dates(mapping: CompiledMapping) -> None:
    records, errors = mapping.streams["invoices"].map_page(PAGE["invoices"])
    got = {r.id: r for r in records}
    assert set(got) == {"i-1", "i-2"}  # the bill is left out, the unknown status is an error
    assert [(e.record_id, e.reason) for e in errors] == [("i-bad", "status: unmapped value 'ARCHIVED'")]
    inv = got["i-1"]
    assert isinstance(inv, Invoice)
    assert inv.total == Money(Decimal("120.00"), "EUR")
    assert inv.amount_due == Money(Decimal("70.10"), "EUR")
    assert (inv.status, inv.issue_date, inv.due_date) == (Status.OPEN, date(2025, 12, 1), date(2025, 12, 31))
    assert (inv.number, inv.currency_rate, inv.customer_id) == ("INV-000001", Decimal("1.1734"), "c-1")
    assert got["i-2"].status is Status.VOIDED


def test_credit_notes_carry_their_allocations(mapping: CompiledMapping) -> None:
    note = mapped(mapping, "credit_notes")["cn-1"]
    assert (note.status, note.remaining) == (Status.PAID, Money(Decimal("0.00"), "GBP"))
    (alloc,) = note.allocations
    assert (alloc.source_kind, alloc.source_id, alloc.invoice_id) == (SourceKind.CREDIT_NOTE, "cn-1", "i-1")
    assert (alloc.amount, alloc.date) == (Money(Decimal("30.00"), "GBP"), date(2025, 12, 3))


def test_a_payment_is_its_own_allocation_and_bill_payments_are_left_out(mapping: CompiledMapping) -> None:
    got = mapped(mapping, "payments")
    assert set(got) == {"p-1", "p-2"}
    pay = got["p-1"]
    assert isinstance(pay, Payment)
    assert (pay.customer_id, pay.amount, pay.unapplied) == ("c-1", Money(Decimal("49.90"), "EUR"),
                                                           Money(Decimal(0), "EUR"))  # fmt: skip
    assert (pay.kind, pay.status, pay.reference) == (PaymentKind.PAYMENT, PaymentStatus.LIVE, "BACS")
    (alloc,) = pay.allocations
    assert (alloc.invoice_id, alloc.amount, alloc.source_kind) == ("i-1", pay.amount, SourceKind.PAYMENT)
    assert got["p-2"].status is PaymentStatus.DELETED


@pytest.mark.parametrize(("stream", "rid", "kind"), [("overpayments", "o-1", PaymentKind.OVERPAYMENT),
                                                     ("prepayments", "pp-1", PaymentKind.PREPAYMENT)])  # fmt: skip
def test_over_and_prepayments_keep_unapplied_credit(
    mapping: CompiledMapping, stream: str, rid: str, kind: PaymentKind
) -> None:
    got = mapped(mapping, stream)
    assert set(got) == {rid}  # spend-side (supplier) records are left out
    pay = got[rid]
    assert pay.kind is kind
    assert pay.status is PaymentStatus.LIVE
    assert pay.amount.amount - sum(a.amount.amount for a in pay.allocations) == pay.unapplied.amount


def test_a_mapping_naming_a_path_xero_does_not_have_fails_in_one_line(tmp_path: Path) -> None:
    override = tmp_path / "mapping.yaml"
    override.write_text("invoices:\n  fields:\n    due_date: DueDateX\n")
    with pytest.raises(MappingFileError) as caught:
        load_mapping(MAPPING, override, raw_schema())
    assert str(caught.value) == f"{override}: invoices.fields.due_date: unknown source path 'DueDateX'"
