"""Writes: sparse and full updates with SyncToken, Attachable notes, invoice send, batch."""

from __future__ import annotations

from datetime import datetime

from tests.quickbooks_sandbox.conftest import Client


def _customer(client: Client, id_: str = "2") -> dict:
    return client.call("GET", f"customer/{id_}").json()["Customer"]


def test_sparse_update_changes_only_what_is_sent_and_moves_sync_token(client: Client, sandbox):
    before = _customer(client)
    sandbox.clock.advance(120)
    answer = client.call(
        "POST",
        "customer",
        body={
            "Id": "2",
            "SyncToken": before["SyncToken"],
            "sparse": True,
            "Notes": "Pays by BACS\n[ccm] ON HOLD",
        },
    )
    assert answer.status_code == 200, answer.text
    after = answer.json()["Customer"]
    assert after["Notes"] == "Pays by BACS\n[ccm] ON HOLD"
    assert after["SyncToken"] == str(int(before["SyncToken"]) + 1)
    assert after["DisplayName"] == before["DisplayName"] and after["Balance"] == before["Balance"]
    moved = datetime.fromisoformat(after["MetaData"]["LastUpdatedTime"])
    assert moved == sandbox.clock.now().replace(microsecond=0)
    assert _customer(client) == after


def test_stale_sync_token_gets_5010_and_changes_nothing(client: Client):
    before = _customer(client)
    client.call(
        "POST",
        "customer",
        body={"Id": "2", "SyncToken": before["SyncToken"], "sparse": True, "Notes": "first"},
    )
    stale = client.call(
        "POST",
        "customer",
        body={"Id": "2", "SyncToken": before["SyncToken"], "sparse": True, "Notes": "second"},
    )
    assert stale.status_code == 400
    error = stale.json()["Fault"]["Error"][0]
    assert (error["code"], error["Message"]) == ("5010", "Stale Object Error")
    assert _customer(client)["Notes"] == "first"


def test_full_update_clears_writable_fields_not_sent(client: Client):
    c = _customer(client)
    client.call(
        "POST", "customer", body={"Id": "2", "SyncToken": c["SyncToken"], "sparse": True, "Notes": "x"}
    )
    c = _customer(client)
    answer = client.call(
        "POST", "customer", body={"Id": "2", "SyncToken": c["SyncToken"], "DisplayName": c["DisplayName"]}
    )
    assert answer.status_code == 200
    assert "Notes" not in answer.json()["Customer"] and "PrimaryEmailAddr" not in answer.json()["Customer"]


def test_notes_longer_than_qbo_allows_are_refused(client: Client):
    c = _customer(client)
    answer = client.call(
        "POST", "customer", body={"Id": "2", "SyncToken": c["SyncToken"], "sparse": True, "Notes": "x" * 2001}
    )
    assert answer.status_code == 400 and "Customer.Notes" in answer.json()["Fault"]["Error"][0]["Detail"]


def test_attachable_note_is_created_and_found_by_its_entity(client: Client):
    body = {
        "Note": "Reminder 1 sent [ccm:abc123]",
        "AttachableRef": [{"EntityRef": {"type": "Invoice", "value": "60"}}],
    }
    answer = client.call("POST", "attachable", body=body)
    assert answer.status_code == 200, answer.text
    made = answer.json()["Attachable"]
    assert made["Note"] == body["Note"] and made["SyncToken"] == "0"
    found = client.query(
        "SELECT * FROM Attachable WHERE AttachableRef.EntityRef.Type = 'Invoice' AND "
        "AttachableRef.EntityRef.value = '60'"
    )["Attachable"]
    assert [a["Id"] for a in found] == [made["Id"]]
    assert client.query("SELECT * FROM Attachable WHERE AttachableRef.EntityRef.value = '61'") == {}


def test_attachable_to_a_missing_record_is_refused(client: Client):
    body = {"Note": "x", "AttachableRef": [{"EntityRef": {"type": "Invoice", "value": "999999"}}]}
    answer = client.call("POST", "attachable", body=body)
    assert answer.status_code == 400 and answer.json()["Fault"]["Error"][0]["code"] == "2500"


def test_invoice_send_marks_it_sent_to_the_address(client: Client):
    answer = client.call("POST", "invoice/60/send", params={"sendTo": "ap@example.com"})
    assert answer.status_code == 200, answer.text
    inv = answer.json()["Invoice"]
    assert inv["EmailStatus"] == "EmailSent" and inv["BillEmail"]["Address"] == "ap@example.com"
    assert inv["DeliveryInfo"]["DeliveryType"] == "Email"


def test_batch_answers_each_item_with_its_result_or_fault(client: Client):
    c = _customer(client)
    items = [
        {"bId": "q", "Query": "SELECT * FROM Customer WHERE Id = '2'"},
        {
            "bId": "u",
            "operation": "update",
            "Customer": {"Id": "2", "SyncToken": c["SyncToken"], "sparse": True, "Notes": "batched"},
        },
        {
            "bId": "s",
            "operation": "update",
            "Customer": {"Id": "2", "SyncToken": c["SyncToken"], "sparse": True, "Notes": "stale"},
        },
        {
            "bId": "a",
            "operation": "create",
            "Attachable": {"Note": "n", "AttachableRef": [{"EntityRef": {"type": "Customer", "value": "2"}}]},
        },
    ]
    answer = client.call("POST", "batch", body={"BatchItemRequest": items})
    assert answer.status_code == 200, answer.text
    out = {r["bId"]: r for r in answer.json()["BatchItemResponse"]}
    assert out["q"]["QueryResponse"]["Customer"][0]["Id"] == "2"
    assert out["u"]["Customer"]["Notes"] == "batched"
    assert out["s"]["Fault"]["Error"][0]["code"] == "5010"
    assert out["a"]["Attachable"]["Note"] == "n"


def test_batch_of_more_than_30_items_is_refused(client: Client):
    items = [{"bId": str(i), "Query": "SELECT * FROM Customer"} for i in range(31)]
    answer = client.call("POST", "batch", body={"BatchItemRequest": items})
    assert answer.status_code == 400 and "at most 30" in answer.json()["Fault"]["Error"][0]["Detail"]


def test_malformed_json_body_is_a_validation_fault(client: Client):
    answer = client.http.post(
        f"{client.sb.api_url}/company/{client.sb.realm}/customer",
        params={"minorversion": "75"},
        data=b"{not json",
        headers={"Authorization": f"Bearer {client.token}", "Content-Type": "application/json"},
    )
    assert answer.status_code == 400 and "not JSON" in answer.json()["Fault"]["Error"][0]["Detail"]


def test_control_characters_that_would_break_json_are_refused(client: Client):
    c = _customer(client)
    body = {"Id": "2", "SyncToken": c["SyncToken"], "sparse": True, "Notes": "a\x00b"}
    answer = client.call("POST", "customer", body=body)
    assert answer.status_code == 400 and "NUL or SOH" in answer.json()["Fault"]["Error"][0]["Detail"]
    assert _customer(client)["SyncToken"] == c["SyncToken"]


def test_void_with_a_stale_sync_token_is_refused(client: Client, sandbox):
    answer = client.call("POST", "invoice", params={"operation": "void"}, body={"Id": "60", "SyncToken": "9"})
    assert answer.status_code == 400 and answer.json()["Fault"]["Error"][0]["code"] == "5010"
    sandbox.void_invoice("60")
    doc = client.call("GET", "invoice/60").json()["Invoice"]
    assert (doc["TotalAmt"], doc["Balance"], doc["PrivateNote"], doc["SyncToken"]) == (0, 0, "Voided", "1")
