"""The mapping format: what a raw record becomes, and the one-line errors for bad files."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from connector.mapping import MappingFileError, load_mapping
from connector.mapping.loader import SHIPPED, display_name
from connector.model import Allocation, Customer, Invoice, Money, Payment, PaymentStatus, SourceKind, Status
from tests.conftest import FIXTURES
from tests.scripted import SCHEMA, contact, invoice, payment

DEFAULT = FIXTURES / "scripted.yaml"


def _write(tmp_path: Path, text: str, name: str = "override.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_an_invoice_maps_to_the_canonical_record():
    m = load_mapping(DEFAULT, schema=SCHEMA)
    raw = invoice("I1", total="120.50", AmountDue="20.50", UpdatedAt="2026-01-02T03:04:05")
    [record], errors = m.streams["invoices"].map_page([raw])
    assert errors == []
    assert record == Invoice(
        id="I1", customer_id="C1", number="INV-I1", total=Money(Decimal("120.50"), "GBP"),
        amount_due=Money(Decimal("20.50"), "GBP"), status=Status.OPEN, issue_date=date(2026, 1, 1),
        due_date=date(2026, 2, 1), updated_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )  # fmt: skip


def test_records_outside_the_where_filter_are_left_out():
    m = load_mapping(DEFAULT, schema=SCHEMA)
    records, errors = m.streams["invoices"].map_page([invoice("I1", Type="ACCPAY"), invoice("I2")])
    assert [r.id for r in records] == ["I2"]
    assert errors == []


def test_a_payment_carries_its_allocations_in_its_currency():
    m = load_mapping(DEFAULT, schema=SCHEMA)
    [p], _ = m.streams["payments"].map_page([payment("P1", "I1", "40.00")])
    assert isinstance(p, Payment)
    assert p.status is PaymentStatus.LIVE
    assert p.unapplied == Money(Decimal(0), "GBP")
    assert p.allocations == (
        Allocation(SourceKind.PAYMENT, "P1", "I1", Money(Decimal("40.00"), "GBP"), date(2026, 1, 15)),
    )


def test_list_paths_fill_list_fields():
    m = load_mapping(DEFAULT, schema=SCHEMA)
    [c], _ = m.streams["contacts"].map_page([contact("C1", Groups=["Retail", "VIP"])])
    assert isinstance(c, Customer)
    assert c.segments == ("Retail", "VIP")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (invoice("I1", Status="WEIRD"), "status: unmapped value 'WEIRD'"),
        (invoice("I1", total="12,50"), "total: not a number: '12,50'"),
        (invoice("I1", due="31/01/2026"), "due_date: not an ISO date: '31/01/2026'"),
        (invoice("I1", Currency="pounds"), "not an ISO currency code: 'pounds'"),
        ({**invoice("I1"), "Contact": None}, "customer_id: missing value"),
        ({**invoice("I1"), "InvoiceID": None}, "missing record id"),
    ],
)
def test_a_record_that_cannot_be_mapped_becomes_an_error_with_its_reason(raw, reason):
    m = load_mapping(DEFAULT, schema=SCHEMA)
    records, errors = m.streams["invoices"].map_page([raw, invoice("OK")])
    assert [r.id for r in records] == ["OK"]
    assert len(errors) == 1
    assert errors[0].reason == reason
    assert errors[0].stream == "invoices"


def test_the_issue_example_names_file_key_path_and_problem(tmp_path):
    override = _write(tmp_path, "invoices:\n  fields:\n    due_date: DueDateX\n")
    with pytest.raises(MappingFileError) as exc:
        load_mapping(DEFAULT, override, SCHEMA)
    assert str(exc.value) == f"{override}: invoices.fields.due_date: unknown source path 'DueDateX'"


def test_an_unchanged_mapping_is_compiled_once_and_an_edit_is_read_at_the_next_load(tmp_path):
    """Every night loads its firm's mapping: the same files give the same compiled mapping without reading
    them again; an edited override (even of the same size and time) counts at once, and a broken edit fails on
    every load until it is mended, never masked by what was compiled before."""
    override = _write(tmp_path, "invoices:\n  fields:\n    number: {const: n/a}\n")
    first = load_mapping(DEFAULT, override, SCHEMA)
    assert load_mapping(DEFAULT, override, SCHEMA) is first
    assert load_mapping(DEFAULT, override, None) is not first  # checked against another schema: its own

    def edit(text: str) -> None:  # at once, and keeping the file's modification time: still seen
        stamp = override.stat()
        override.write_text(text)
        os.utime(override, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))

    edit("invoices:\n  fields:\n    number: {const: n/b}\n")  # the same size
    second = load_mapping(DEFAULT, override, SCHEMA)
    [record], _ = second.streams["invoices"].map_page([invoice("I1")])
    assert isinstance(record, Invoice) and record.number == "n/b"
    edit("invoices:\n  fields:\n    due_date: DueDateX\n")
    for _ in range(2):
        with pytest.raises(MappingFileError, match="unknown source path 'DueDateX'"):
            load_mapping(DEFAULT, override, SCHEMA)
    edit("invoices:\n  fields:\n    number: {const: n/c}\n")
    [record], _ = load_mapping(DEFAULT, override, SCHEMA).streams["invoices"].map_page([invoice("I1")])
    assert isinstance(record, Invoice) and record.number == "n/c"
    override.unlink()
    with pytest.raises(MappingFileError, match=r"override\.yaml"):
        load_mapping(DEFAULT, override, SCHEMA)


def test_an_override_merges_over_the_default(tmp_path):
    override = _write(
        tmp_path,
        "invoices:\n  fields:\n    number: {const: n/a}\n    due_date: {path: Date, format: msjson}\n",
    )
    m = load_mapping(DEFAULT, override, SCHEMA)
    [record], _ = m.streams["invoices"].map_page([invoice("I1")])
    assert isinstance(record, Invoice)
    assert record.number == "n/a"
    assert record.due_date == date(2026, 1, 1)
    assert record.total == Money(Decimal("100.00"), "GBP")  # untouched fields stay as shipped
    assert m.source == f"{DEFAULT} + {override}"


BAD_DOCUMENTS = [
    ("version: 2\nledger: x\n", "version: unsupported mapping version 2 (supported: 1)"),
    ("version: 1\nledger: x\n", "(top): no streams mapped"),
    ("version: 1\nledger: x\ninvoices: []\n", "invoices: expected a mapping, got a list"),
    ("version: 1\nledger: x\nwidgets:\n  id: X\n  fields: {}\n", "widgets: missing 'record'"),
    (
        "version: 1\nledger: x\ninvoices:\n  id: InvoiceID\n  fields:\n    colour: Status\n",
        "invoices.fields.colour: unknown canonical field for invoice",
    ),
    (
        "version: 1\nledger: x\ninvoices:\n  id: InvoiceID\n  fields:\n    number: Number\n",
        "invoices.fields: missing required field 'customer_id'",
    ),
    (
        "version: 1\nledger: x\ncontacts:\n  id: ContactID\n  fields:\n    name: Name\n"
        "    status: {path: ContactStatus, map: {ACTIVE: alive}}\n",
        "contacts.fields.status.map.ACTIVE: 'alive' is not one of active, archived, deleted",
    ),
    (
        "version: 1\nledger: x\ncontacts:\n  id: ContactID\n  fields:\n    name: {path: Name, format: iso}\n",
        "contacts.fields.name.format: a format applies to dates only",
    ),
    (
        "version: 1\nledger: x\ncontacts:\n  id: ContactID\n  fields:\n    name: {path: Name, colour: red}\n",
        "contacts.fields.name.colour: unknown key",
    ),
    (
        "version: 1\nledger: x\ncontacts:\n  id: ContactID\n  fields:\n    name: Groups[]\n",
        "contacts.fields.name: 'Groups[]' yields a list, but name holds one value",
    ),
    (
        "version: 1\nledger: x\ncontacts:\n  id: ContactID\n  fields:\n    name: Name\n"
        "  allocations: {each: 'Groups[]', fields: {}}\n",
        "contacts.allocations: a customer cannot carry allocations",
    ),
    (
        "version: 1\nledger: x\nledgerthings:\n  record: invoice\n  id: X\n  fields: {}\n",
        "ledgerthings: the ledger has no stream 'ledgerthings'",
    ),
    ("version: 1\nledger: x\ncontacts:\n  id: Contact..ID\n  fields: {}\n", "contacts.id: bad source path"),
]


@pytest.mark.parametrize(("text", "expected"), BAD_DOCUMENTS)
def test_bad_files_fail_with_one_line(tmp_path, text, expected):
    path = _write(tmp_path, text, "bad.yaml")
    with pytest.raises(MappingFileError) as exc:
        load_mapping(path, schema=SCHEMA)
    message = str(exc.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {expected}")


def test_yaml_syntax_errors_name_the_line(tmp_path):
    path = _write(tmp_path, "version: 1\nledger: x\ninvoices:\n  id: [unclosed\n", "bad.yaml")
    with pytest.raises(MappingFileError, match=rf"^{path}: line \d+: "):
        load_mapping(path)


def test_duplicate_keys_are_refused(tmp_path):
    path = _write(tmp_path, "version: 1\nversion: 1\n", "bad.yaml")
    with pytest.raises(MappingFileError, match=rf"^{path}: line 2: duplicate key 'version'"):
        load_mapping(path)


def test_the_shipped_file_is_blamed_when_the_override_did_not_touch_the_key(tmp_path):
    default = _write(
        tmp_path, DEFAULT.read_text().replace("due_date: DueDate", "due_date: DueDateX"), "d.yaml"
    )
    override = _write(tmp_path, "invoices:\n  fields:\n    number: Number\n")
    with pytest.raises(MappingFileError, match=rf"^{default}: invoices.fields.due_date: unknown source path"):
        load_mapping(default, override, SCHEMA)


def test_shipped_files_are_named_as_in_the_repository():
    assert display_name(SHIPPED / "xero.yaml") == "mappings/xero.yaml"
    with pytest.raises(MappingFileError, match=r"^mappings/nope.yaml: cannot read"):
        load_mapping(SHIPPED / "nope.yaml")


def test_cases_choose_a_value_from_conditions(tmp_path):
    path = _write(
        tmp_path,
        DEFAULT.read_text().replace(
            "    status:\n      path: Status\n",
            "    status:\n      cases: [{when: {AmountDue: 0}, value: paid}]\n      path: Status\n",
        ),
        "cases.yaml",
    )
    m = load_mapping(path, schema=SCHEMA)
    records, _ = m.streams["invoices"].map_page([invoice("I1", AmountDue=0.0), invoice("I2")])
    assert [r.status for r in records if isinstance(r, Invoice)] == [Status.PAID, Status.OPEN]


def test_the_first_present_of_several_paths_wins(tmp_path):
    path = _write(
        tmp_path,
        DEFAULT.read_text().replace("    email: EmailAddress\n", "    email: [EmailAddress, Name]\n"),
        "first.yaml",
    )
    m = load_mapping(path, schema=SCHEMA)
    records, _ = m.streams["contacts"].map_page([contact("C1", EmailAddress="a@b.c"), contact("C2", "Bo")])
    assert [r.email for r in records if isinstance(r, Customer)] == ["a@b.c", "Bo"]


def test_an_indexed_path_is_one_value(tmp_path):
    path = _write(
        tmp_path,
        DEFAULT.read_text().replace(
            "      invoice_id: InvoiceID\n", "      invoice_id: Links[0].InvoiceID\n"
        ),
        "indexed.yaml",
    )
    schema = {**SCHEMA, "payments": SCHEMA["payments"] | {"Allocations[].Links[].InvoiceID"}}
    m = load_mapping(path, schema=schema)
    raw = payment("P1", "I1", "10.00")
    raw["Allocations"][0]["Links"] = [{"InvoiceID": "I9"}, {"InvoiceID": "I8"}]
    [p], errors = m.streams["payments"].map_page([raw])
    assert errors == []
    assert isinstance(p, Payment)
    assert [a.invoice_id for a in p.allocations] == ["I9"]
