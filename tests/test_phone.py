"""A customer's phone number: read by both shipped mappings (Xero's typed Phones, QuickBooks' free text),
joined dialable, bad entries skipped; stored, worded in the sync log, and shown by `ccm customer`.

The sandboxes' phones end to end (both ledgers, through the SDKs) are pinned in tests/contract/test_phone.py.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from connector import ledger as registry
from connector import mail
from connector.mapping import CompiledMapping, MappingFileError, load_mapping
from connector.mapping.phones import dialable
from connector.model import Customer
from connector.store import Store, changewords, synclog
from tests.scripted import ScriptedLedger, contact
from tests.test_cli import ccm, connected_tenant

SCHEMA = Path(__file__).parents[1] / "schemas" / "customer.json"


def mapped(ledger: str, stream: str, raw: dict[str, Any]) -> Customer:
    spec = registry.get(ledger)
    records, errors = load_mapping(spec.mapping, schema=spec.schema).streams[stream].map_page([raw])
    assert errors == []
    [record] = records
    assert isinstance(record, Customer)
    return record


def xero_phone(kind: str, number: str, area: str = "", country: str = "") -> dict[str, str]:
    return {"PhoneType": kind, "PhoneNumber": number, "PhoneAreaCode": area, "PhoneCountryCode": country}


def xero(*phones: dict[str, str]) -> dict[str, Any]:
    return {"ContactID": "c-1", "Name": "Acme Joinery Ltd", "ContactStatus": "ACTIVE", "Phones": list(phones)}


@pytest.mark.parametrize(
    ("parts", "joined"),
    [
        (("44", "20", "7946 0958"), "+44 20 7946 0958"),
        (("44", "020", "7946 0958"), "+44 20 7946 0958"),  # the trunk 0 is not dialled from abroad
        (("+44", "(020)", "7946  0958"), "+44 20 7946 0958"),
        (("0044", "113", "496 0123"), "+44 113 496 0123"),
        (("39", "06", "1234 5678"), "+39 06 1234 5678"),  # Italy dials its 0 from abroad too
        (("", "(626)", "847-1294"), "626 847-1294"),  # Xero's own example: no country code
        (("44", "20", "+44 20 7946 0001"), "+44 20 7946 0001"),  # a whole number typed as the number
        (("44", "20", ""), None),
        (("44", "20", " - "), None),
    ],
)
def test_parts_join_as_a_dialable_number(parts: tuple[str, str, str], joined: str | None) -> None:
    assert dialable(*parts) == joined


def test_xero_takes_default_then_ddi_then_mobile_and_never_a_fax() -> None:
    blank_default = xero_phone("DEFAULT", "", "20", "44")  # an entry with no number is skipped, not an error
    fax = xero_phone("FAX", "7946 0000", "20", "44")
    ddi = xero_phone("DDI", "7946 0111", "20", "44")
    mobile = xero_phone("MOBILE", "900123", "7700", "44")
    assert mapped("xero", "contacts", xero(fax, mobile, ddi, blank_default)).phone == "+44 20 7946 0111"
    assert mapped("xero", "contacts", xero(fax, mobile, blank_default)).phone == "+44 7700 900123"
    assert mapped("xero", "contacts", xero(fax, blank_default)).phone is None
    assert mapped("xero", "contacts", xero()).phone is None
    odd = {"ContactID": "c-1", "Name": "Acme", "Phones": [{"PhoneType": "DEFAULT"}, "junk", None]}
    assert mapped("xero", "contacts", odd).phone is None


def test_quickbooks_takes_the_primary_phone_else_the_mobile() -> None:
    base = {"Id": "7", "DisplayName": "Acme Joinery Ltd", "Active": True}
    both = {**base, "PrimaryPhone": {"FreeFormNumber": "(415) 555-0100"}, "Mobile": {"FreeFormNumber": "x"}}
    assert mapped("quickbooks", "customers", both).phone == "(415) 555-0100"
    blank = {
        **base,
        "PrimaryPhone": {"FreeFormNumber": "  "},
        "Mobile": {"FreeFormNumber": "+1 646 555-0101"},
    }
    assert mapped("quickbooks", "customers", blank).phone == "+1 646 555-0101"
    assert mapped("quickbooks", "customers", base).phone is None


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("{path: 'Phones[]'}", "yields a list"),
        ("{path: 'Phones[]', parts: {number: PhoneNumber, extension: X}}", "unknown part"),
        ("{path: 'Phones[]', parts: {area: PhoneAreaCode}}", "number needed"),
        ("{path: Name, parts: {number: PhoneNumber}}", "not a list path"),
        ("{path: 'Phones[]', prefer: {PhoneType: DEFAULT}, parts: {number: PhoneNumber}}", "non-empty list"),
        ("{path: 'Phones[]', parts: {number: PhoneNo}}", "unknown source path"),
        ("{path: Name, prefer: {PhoneType: [DEFAULT]}}", "give 'parts' too"),
        ("{path: Name, format: iso}", "unknown key"),
    ],
)
def test_a_bad_phone_spec_is_one_line_naming_the_key(tmp_path: Path, spec: str, message: str) -> None:
    override = tmp_path / "mapping.yaml"
    override.write_text(f"contacts:\n  fields:\n    phone: {spec}\n")
    xero_spec = registry.get("xero")
    with pytest.raises(MappingFileError) as caught:
        load_mapping(xero_spec.mapping, override, xero_spec.schema)
    assert message in str(caught.value) and "contacts.fields.phone" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_changed_number_is_worded_and_ccm_customer_shows_it(
    capsys: pytest.CaptureFixture[str], home: Path, registered: ScriptedLedger
) -> None:
    connected_tenant(capsys, home, registered)
    registered.put(
        "contacts", contact("C1", "Ann's Café", EmailAddress="ann@example.com", Phone="020 7946 0958")
    )
    assert ccm(capsys, "sync", "-t", "acme")[0] == 0
    registered.put(
        "contacts", contact("C1", "Ann's Café", EmailAddress="ann@example.com", Phone="+44 20 7946 0001")
    )
    code, _, err = ccm(capsys, "sync", "-t", "acme")
    assert code == 0, err
    store = Store.open(f"sqlite:///{home / 'ccm.db'}")
    with store.read() as conn:
        [run] = synclog.runs(conn, "acme", limit=1)
        lines = [
            d.line() for d in changewords.describe(conn, "acme", synclog.changes(conn, "acme", run.run_id))
        ]
    store.close()
    assert lines == ["Ann's Café: phone 020 7946 0958 → +44 20 7946 0001"]

    code, out, err = ccm(capsys, "customer", "Ann's Café", "-t", "acme", "--as-of", "2026-11-24")
    assert code == 0, err
    assert "e-mail ann@example.com · phone +44 20 7946 0001" in out
    code, out, err = ccm(capsys, "customer", "C1", "-t", "acme", "--format", "json", "--as-of", "2026-11-24")
    assert code == 0, err
    body = json.loads(out)
    assert body["phone"] == "+44 20 7946 0001" and body["email"] == "ann@example.com"
    assert json.loads(SCHEMA.read_text(encoding="utf-8"))["properties"]["phone"]["type"] == ["string", "null"]


def test_the_scripted_mapping_reads_phones_too(scripted_mapping: CompiledMapping) -> None:
    records, errors = scripted_mapping.streams["contacts"].map_page([contact("C9", Phone="  ")])
    assert errors == [] and [r.phone for r in records if isinstance(r, Customer)] == [None]


def test_the_call_template_gives_the_number_to_dial() -> None:
    env = mail.environment()
    shown = mail.render(env, "call", mail.SAMPLE)
    assert "Call Sample Customer on +44 20 7946 0958 (ap@example.com) about:" in shown.text
    assert 'href="tel:+442079460958"' in shown.html
    none = mail.render(env, "call", dataclasses.replace(mail.SAMPLE, contact_phone=None))
    assert "Call Sample Customer (no phone number on record) (ap@example.com) about:" in none.text
