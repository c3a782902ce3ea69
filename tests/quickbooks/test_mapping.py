"""mappings/quickbooks.yaml on QBO-shaped JSON: every canonical field, status rules, allocations, errors."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from adapters.quickbooks.records import split
from adapters.quickbooks.schema import ENTITIES
from connector import ledger as registry
from connector.mapping import MappingFileError, load_mapping
from connector.model import CustomerStatus, Money, PaymentStatus, SourceKind, Status
from tests.quickbooks import samples


@pytest.fixture(scope="module")
def mapping():
    spec = registry.get("quickbooks")
    return load_mapping(spec.mapping, schema=spec.schema)


def one(mapping, stream, raw):
    live, _ = split(ENTITIES[stream], [raw])
    records, errors = mapping.streams[stream].map_page(live)
    assert errors == []
    assert len(records) == 1
    return records[0]


def test_the_adapter_registers_its_mapping_and_schema():
    spec = registry.get("quickbooks")
    assert spec.name == "quickbooks"
    assert spec.mapping.name == "quickbooks.yaml"
    assert spec.schema is not None
    assert set(spec.schema) == {"customers", "invoices", "payments", "credit_memos"}
    assert "Line[].LinkedTxn[].TxnType" in spec.schema["payments"]
    assert "Line[]" in spec.schema["payments"]  # parents of every listed path are known too


def test_an_active_customer_maps_with_its_type_as_segment(mapping):
    c = one(mapping, "customers", samples.customer("7"))
    assert c.id == "7"
    assert c.name == "Customer 7"
    assert c.email == "ap7@example.com"
    assert c.status is CustomerStatus.ACTIVE
    assert c.segments == ("Trade",)
    assert c.currency == "GBP"
    assert c.updated_at == datetime(2026, 1, 10, 17, 30, tzinfo=UTC)  # -08:00 read as UTC


def test_an_inactive_customer_is_archived_and_a_nameless_type_falls_back_to_its_id(mapping):
    raw = samples.customer("8", Active=False, CustomerTypeRef={"value": "3"}, DisplayName=None)
    c = one(mapping, "customers", raw)
    assert c.status is CustomerStatus.ARCHIVED
    assert c.segments == ("3",)
    assert c.name == "Customer 8 Ltd"


def test_an_open_invoice_maps_amounts_as_decimal_money(mapping):
    inv = one(mapping, "invoices", samples.invoice("130", total=150.1, balance=75.05))
    assert inv.total == Money(Decimal("150.1"), "GBP")
    assert inv.amount_due == Money(Decimal("75.05"), "GBP")
    assert inv.status is Status.OPEN
    assert inv.customer_id == "1"
    assert inv.number == "INV-130"
    assert inv.issue_date == date(2026, 1, 5)
    assert inv.due_date == date(2026, 2, 4)
    assert inv.currency_rate == Decimal(1)


@pytest.mark.parametrize(
    ("extra", "status"),
    [
        ({"Balance": 0}, Status.PAID),
        ({"Balance": 0.0, "TotalAmt": 0, "PrivateNote": "Voided"}, Status.VOIDED),
        ({"Balance": 0.01}, Status.OPEN),
    ],
)
def test_invoice_status_comes_from_balance_and_the_void_note(mapping, extra, status):
    assert one(mapping, "invoices", samples.invoice(**extra)).status is status


def test_a_payment_allocates_only_its_invoice_lines(mapping):
    raw = samples.payment(
        "140", total=90.0, unapplied=10.0,
        links=[("130", "Invoice", 60.0), ("131", "Invoice", 20.0), ("150", "CreditMemo", 15.0)],
    )  # fmt: skip
    p = one(mapping, "payments", raw)
    assert p.amount == Money(Decimal(90), "GBP")
    assert p.unapplied == Money(Decimal(10), "GBP")
    assert p.status is PaymentStatus.LIVE
    assert [(a.invoice_id, a.amount.amount) for a in p.allocations] == [
        ("130", Decimal(60)),
        ("131", Decimal(20)),
    ]
    assert all(a.source_kind is SourceKind.PAYMENT and a.source_id == "140" for a in p.allocations)
    assert all(a.date == date(2026, 1, 8) for a in p.allocations)


def test_an_unapplied_payment_has_no_allocations(mapping):
    p = one(mapping, "payments", samples.payment("141", total=50.0, unapplied=50.0, links=[]))
    assert p.allocations == ()
    assert p.unapplied.amount == Decimal(50)


def test_a_voided_payment_is_voided(mapping):
    raw = samples.payment("142", total=0.0, links=[], PrivateNote="Voided")
    assert one(mapping, "payments", raw).status is PaymentStatus.VOIDED


@pytest.mark.parametrize(
    ("remaining", "status"), [(40.0, Status.OPEN), (12.5, Status.OPEN), (0, Status.PAID)]
)
def test_a_credit_memo_keeps_its_remaining_credit(mapping, remaining, status):
    note = one(mapping, "credit_memos", samples.credit_memo("150", total=40.0, remaining=remaining))
    assert note.total == Money(Decimal(40), "GBP")
    assert note.remaining.amount == Decimal(str(remaining))
    assert note.status is status
    assert note.number == "CM-150"


def test_a_record_without_currency_is_an_error_naming_it_and_the_page_goes_on(mapping):
    bad = samples.invoice("131")
    del bad["CurrencyRef"]
    records, errors = mapping.streams["invoices"].map_page([bad, samples.invoice("132")])
    assert [r.id for r in records] == ["132"]
    assert len(errors) == 1
    assert errors[0].record_id == "131"
    assert "currency" in errors[0].reason


def test_an_override_naming_an_unknown_qbo_path_fails_in_one_line(tmp_path):
    spec = registry.get("quickbooks")
    override = tmp_path / "mapping.yaml"
    override.write_text("invoices:\n  fields:\n    due_date: DueDat\n")
    with pytest.raises(MappingFileError) as info:
        load_mapping(spec.mapping, override, spec.schema)
    assert str(info.value) == f"{override}: invoices.fields.due_date: unknown source path 'DueDat'"


def test_cdc_tombstones_are_split_from_live_records():
    live, deleted = split(
        "Invoice", [samples.invoice("1"), {"Id": "2", "status": "Deleted", "domain": "QBO"}]
    )
    assert [r["Id"] for r in live] == ["1"]
    assert deleted == ["2"]
