"""Change data capture: what changed since, tombstones, the 30-day look-back and the 1,000-object cap."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from tests.quickbooks_sandbox.conftest import Client


def _cdc(client: Client, entities: str, since: datetime):
    return client.call("GET", "cdc", params={"entities": entities, "changedSince": since.isoformat()})


def _lists(answer) -> dict[str, list]:
    out = {}
    for part in answer.json()["CDCResponse"][0]["QueryResponse"]:
        out.update({k: v for k, v in part.items() if isinstance(v, list)})
    return out


def test_cdc_returns_what_changed_since_with_tombstones(client: Client, sandbox):
    since = sandbox.clock.now() - timedelta(days=20)
    before = _lists(_cdc(client, "Invoice,Payment", since))
    assert before["Invoice"] and all(
        datetime.fromisoformat(i["MetaData"]["LastUpdatedTime"]) >= since for i in before["Invoice"]
    )
    sandbox.clock.advance(60)
    sandbox.delete("Invoice", "60")
    pay_id = sandbox.post_payment("61", Decimal("1.00"))
    now = sandbox.clock.now() - timedelta(seconds=1)
    after = _lists(_cdc(client, "Invoice,Payment", now))
    assert after["Invoice"][0] == {
        "domain": "QBO",
        "status": "Deleted",
        "Id": "60",
        "MetaData": {"LastUpdatedTime": after["Invoice"][0]["MetaData"]["LastUpdatedTime"]},
    }
    assert [i["Id"] for i in after["Invoice"]] == ["60", "61"]
    assert [p["Id"] for p in after["Payment"]] == [pay_id]
    assert client.call("GET", "invoice/60").status_code == 400  # gone from reads and queries


def test_cdc_older_than_30_days_is_refused(client: Client, sandbox):
    answer = _cdc(client, "Invoice", sandbox.clock.now() - timedelta(days=31))
    assert answer.status_code == 400
    assert "more than 30 days" in answer.json()["Fault"]["Error"][0]["Detail"]


def test_cdc_answers_at_most_1000_objects(client: Client, sandbox):
    company = sandbox.company
    since = sandbox.clock.now()
    sandbox.clock.advance(1)
    for entity in ("Invoice", "Payment"):
        for row in list(company.tables[entity].by_id.values()):
            if not row.deleted:
                company.update(entity, {"Id": str(row.id), "SyncToken": str(row.sync_token), "sparse": True})
    for row in list(company.tables["Customer"].by_id.values()):
        company.update("Customer", {"Id": str(row.id), "SyncToken": str(row.sync_token), "sparse": True})
    for n in range(400):
        company.create_attachable(
            {"Note": f"note {n}", "AttachableRef": [{"EntityRef": {"type": "Customer", "value": "2"}}]}
        )
    found = _lists(_cdc(client, "Customer,Invoice,Payment,Attachable", since))
    assert sum(len(v) for v in found.values()) == 1000
    assert len(found["Customer"]) == len(company.tables["Customer"].by_id)
    assert 0 < len(found["Attachable"]) < 400  # the cap cut the last entity short


def test_cdc_needs_entities_and_a_valid_date(client: Client):
    assert _cdc(client, "", datetime.now()).status_code == 400
    bad = client.call("GET", "cdc", params={"entities": "Invoice", "changedSince": "yesterday"})
    assert bad.status_code == 400 and "changedSince" in bad.json()["Fault"]["Error"][0]["Detail"]
