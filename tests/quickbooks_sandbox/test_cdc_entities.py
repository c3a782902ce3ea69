"""CDC takes every QBO entity but five; one this company holds none of answers an empty list, not a 400.

Source: Intuit's change-data-capture page (developer.intuit.com, .../learn/explore-the-quickbooks-online-api/
change-data-capture): "You can use the CDC operation for all API entities except" JournalCode, TimeActivity,
TaxAgency, TaxCode and TaxRate (the list as LEDGER-API-FACTS.md quotes it; an entity with no changes is an
empty group there).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.quickbooks_sandbox.conftest import Client


def _cdc(client: Client, sandbox, entities: str):
    since = (sandbox.clock.now() - timedelta(days=20)).isoformat()
    return client.call("GET", "cdc", params={"entities": entities, "changedSince": since})


def _groups(answer) -> dict[str, list]:
    out: dict[str, list] = {}
    for part in answer.json()["CDCResponse"][0]["QueryResponse"]:
        out.update({k: v for k, v in part.items() if isinstance(v, list)})
    return out


def test_entities_with_no_records_answer_an_empty_list(client: Client, sandbox):
    answer = _cdc(client, sandbox, "Account,Invoice,Vendor,Estimate,Transfer")
    assert answer.status_code == 200, answer.text
    groups = _groups(answer)
    assert groups["Account"] == groups["Vendor"] == groups["Estimate"] == groups["Transfer"] == []
    assert groups["Invoice"]  # the entity it holds still answers its changes


def test_entity_names_are_matched_whatever_their_case(client: Client, sandbox):
    groups = _groups(_cdc(client, sandbox, "invoice,account"))
    assert set(groups) == {"Invoice", "Account"}


@pytest.mark.parametrize("entity", ["JournalCode", "TimeActivity", "TaxAgency", "TaxCode", "TaxRate"])
def test_the_five_entities_cdc_does_not_take_are_refused(client: Client, sandbox, entity):
    answer = _cdc(client, sandbox, f"Invoice,{entity}")
    assert answer.status_code == 400
    assert f"CDC does not support entity {entity}" in answer.json()["Fault"]["Error"][0]["Detail"]


def test_a_name_that_is_no_qbo_entity_is_refused(client: Client, sandbox):
    assert _cdc(client, sandbox, "Invoice,Gadget").status_code == 400
