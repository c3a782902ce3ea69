"""The accounting API over HTTPS: queries, envelopes, faults, minorversion, auth."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from tests.quickbooks_sandbox.conftest import Client


def test_paging_an_ordered_query_returns_every_invoice_once_in_order(client: Client):
    total = client.query("SELECT COUNT(*) FROM Invoice")["totalCount"]
    seen, start = [], 1
    while True:
        page = client.query(
            f"SELECT * FROM Invoice ORDERBY Metadata.LastUpdatedTime STARTPOSITION {start} MAXRESULTS 50"
        )
        rows = page.get("Invoice", [])
        if rows:
            assert page["startPosition"] == start and page["maxResults"] == len(rows)
        seen += rows
        if len(rows) < 50:
            break
        start += 50
    assert len(seen) == total == len({r["Id"] for r in seen}) > 300
    stamps = [datetime.fromisoformat(r["MetaData"]["LastUpdatedTime"]) for r in seen]
    assert stamps == sorted(stamps)


def test_a_cursor_condition_returns_only_later_records(client: Client):
    rows = client.query("SELECT * FROM Payment ORDERBY Metadata.LastUpdatedTime MAXRESULTS 1000")["Payment"]
    cut = rows[len(rows) // 2]["MetaData"]["LastUpdatedTime"]
    later = client.query(
        f"SELECT * FROM Payment WHERE Metadata.LastUpdatedTime > '{cut}' "
        "ORDERBY Metadata.LastUpdatedTime MAXRESULTS 1000"
    )["Payment"]
    expected = [
        r["Id"]
        for r in rows
        if datetime.fromisoformat(r["MetaData"]["LastUpdatedTime"]) > datetime.fromisoformat(cut)
    ]
    assert [r["Id"] for r in later] == expected and 0 < len(expected) < len(rows)


def test_get_with_query_parameter_works_like_post(client: Client):
    answer = client.call("GET", "query", params={"query": "SELECT * FROM Customer WHERE Id = '3'"})
    assert answer.status_code == 200
    assert [c["Id"] for c in answer.json()["QueryResponse"]["Customer"]] == ["3"]
    assert "time" in answer.json()


def test_customers_are_active_only_unless_asked(client: Client, firm):
    inactive = sum(1 for c in firm.customers if c.archived or c.merged_into)
    assert inactive > 0
    active = client.query("SELECT COUNT(*) FROM Customer")["totalCount"]
    every = client.query("SELECT COUNT(*) FROM Customer WHERE Active IN (true, false)")["totalCount"]
    only_inactive = client.query("SELECT * FROM Customer WHERE Active = false")["Customer"]
    assert (active, every, len(only_inactive)) == (
        len(firm.customers) - inactive,
        len(firm.customers),
        inactive,
    )
    assert all(not c["Active"] for c in only_inactive)


def test_filters_on_customer_ref_balance_and_due_date(client: Client):
    rows = client.query(
        "SELECT * FROM Invoice WHERE CustomerRef = '5' AND Balance > '0' AND "
        "DueDate <= '2026-10-31' ORDERBY DueDate DESC"
    )["Invoice"]
    assert rows
    assert all(r["CustomerRef"]["value"] == "5" and Decimal(str(r["Balance"])) > 0 for r in rows)
    dues = [r["DueDate"] for r in rows]
    assert dues == sorted(dues, reverse=True) and dues[0] <= "2026-10-31"


def test_empty_result_is_an_empty_query_response(client: Client):
    assert client.query("SELECT * FROM Invoice WHERE DocNumber = 'nope'") == {}
    assert client.query("SELECT * FROM Item") == {}


def test_bad_query_answers_a_validation_fault(client: Client):
    answer = client.call("POST", "query", text="SELECT * FROM Invoice WHERE Colour = 'red'")
    assert answer.status_code == 400
    fault = answer.json()["Fault"]
    assert fault["type"] == "ValidationFault" and fault["Error"][0]["code"] == "4000"
    assert "Colour" in fault["Error"][0]["Detail"]


def test_bad_or_expired_tokens_get_401_authentication_failed(client: Client, sandbox):
    answer = client.call("GET", "customer/1", token="not-a-token")
    assert answer.status_code == 401
    assert answer.json()["fault"]["type"] == "AUTHENTICATION"
    sandbox.clock.advance(3601)
    expired = client.call("GET", "customer/1")
    assert expired.status_code == 401 and "expired" in expired.json()["fault"]["error"][0]["detail"]


def test_unknown_record_is_object_not_found(client: Client):
    answer = client.call("GET", "invoice/999999")
    assert answer.status_code == 400
    assert answer.json()["Fault"]["Error"][0]["code"] == "610"


def test_company_info_names_the_firm(client: Client, firm, sandbox):
    info = client.call("GET", f"companyinfo/{sandbox.realm}").json()["CompanyInfo"]
    assert info["CompanyName"] == firm.name and info["Country"] == firm.country
