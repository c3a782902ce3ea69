"""The checked-in raw schema matches what the official OpenAPI spec says (when the spec is at hand)."""

from __future__ import annotations

import json

import yaml

from adapters.xero.derive_schema import derive
from adapters.xero.schema import SCHEMA_FILE, raw_schema
from tests.xero_sandbox.specs import SPECS, require_specs

SPEC = SPECS / "xero_accounting.yaml"


def test_checked_in_schema_is_derived_from_the_spec() -> None:
    require_specs()
    derived = derive(yaml.safe_load(SPEC.read_text(encoding="utf-8")))
    assert json.loads(SCHEMA_FILE.read_text(encoding="utf-8")) == derived


def test_schema_holds_the_paths_the_mapping_needs() -> None:
    schema = raw_schema()
    assert "Invoice.Contact.ContactID" in schema["payments"]
    assert "Allocations[].Invoice.InvoiceID" in schema["credit_notes"]
    assert "ContactGroups[].Name" in schema["contacts"]
    assert "DueDateX" not in schema["invoices"]
