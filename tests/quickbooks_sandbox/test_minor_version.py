"""`minorversion`: left out or below 75, a request is served as minor version 75, never refused.

Source: Intuit developer blog, 2025-01-21, "Changes to our Accounting API" (as cited in
../shared/reference/LEDGER-API-FACTS.md): from 2025-08-01 a request without `minorversion` is served as
minor version 75, and a value below 75 is ignored and served as 75.
"""

from __future__ import annotations

from quickbooks.objects.customer import Customer

from tests.quickbooks_sandbox.conftest import Client, sdk_client


def test_a_request_without_minorversion_is_served_as_75(client: Client):
    answer = client.call("GET", "customer/2", minor=None)
    assert answer.status_code == 200, answer.text
    assert answer.json()["Customer"]["Id"] == "2"
    assert answer.json() == client.call("GET", "customer/2", minor="75").json()


def test_a_minorversion_below_75_is_ignored_not_refused(client: Client):
    for old in ("4", "65", "74"):
        answer = client.call("POST", "query", minor=old, text="SELECT * FROM Invoice MAXRESULTS 3")
        assert answer.status_code == 200, (old, answer.text)
        assert len(answer.json()["QueryResponse"]["Invoice"]) == 3


def test_an_sdk_client_that_sends_no_minorversion_works(sandbox):
    qb = sdk_client(sandbox)
    qb.minorversion = None  # python-quickbooks then leaves the parameter out
    try:
        assert Customer.get(2, qb=qb).Id == "2"
    finally:
        qb.session.close()
