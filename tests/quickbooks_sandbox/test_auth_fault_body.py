"""A 401 (and a 403) comes in the gateway's lowercase shape, not the capitalised Fault envelope.

Sources: captures quoted in public issues: routablehq/python-quickbooks#250 (2021-10-06),
  {"warnings":null,"intuitObject":null,"fault":{"error":[{"message":"message=AuthenticationFailed;
  errorCode=003200; statusCode=401","detail":"Malformed bearer token: too short or too long","code":"3200",
  "element":null}],"type":"AUTHENTICATION"},"report":null,"queryResponse":null,"batchItemResponse":[],
  "attachableResponse":[],"syncErrorResponse":null,"requestId":null,"time":1633520295688,"status":null,
  "cdcresponse":[]}
the same shape with "detail":null in routablehq/python-quickbooks#118 (2018-08-09), and for a 403
(ApplicationAuthorizationFailed, 003100, "type":"SERVICE") in frappe/erpnext#29161.
"""

from __future__ import annotations

import json

import pytest
from quickbooks.exceptions import AuthorizationException
from quickbooks.objects.customer import Customer

from tests.quickbooks_sandbox.conftest import Client, sdk_client

SIBLINGS: dict[str, object] = {"warnings": None, "intuitObject": None, "report": None, "queryResponse": None,
            "batchItemResponse": [], "attachableResponse": [], "syncErrorResponse": None, "requestId": None,
            "status": None, "cdcresponse": []}  # fmt: skip


def test_a_401_has_lowercase_keys_null_siblings_and_an_epoch_ms_time(client: Client, sandbox):
    answer = client.call("GET", "customer/2", token="not-a-token")
    assert answer.status_code == 401
    body = answer.json()
    assert list(body) == ["warnings", "intuitObject", "fault", "report", "queryResponse", "batchItemResponse",
                          "attachableResponse", "syncErrorResponse", "requestId", "time", "status",
                          "cdcresponse"]  # fmt: skip
    assert {k: v for k, v in body.items() if k in SIBLINGS} == SIBLINGS
    assert body["fault"]["type"] == "AUTHENTICATION"
    [error] = body["fault"]["error"]
    assert set(error) == {"message", "detail", "code", "element"}
    assert error["message"] == "message=AuthenticationFailed; errorCode=003200; statusCode=401"
    assert (error["code"], error["element"]) == ("3200", None)
    assert body["time"] == int(sandbox.clock.now().timestamp() * 1000)  # epoch milliseconds, an integer
    assert "Fault" not in body


def test_a_403_for_another_company_has_the_same_shape(client: Client, sandbox):
    answer = client.http.get(f"{sandbox.api_url}/company/1234/customer/2", params={"minorversion": "75"},
                             headers={"Authorization": f"Bearer {client.token}"})  # fmt: skip
    assert answer.status_code == 403
    body = answer.json()
    assert body["fault"]["type"] == "SERVICE"
    assert body["fault"]["error"][0]["code"] == "3100"
    assert body["fault"]["error"][0]["element"] is None and isinstance(body["time"], int)


def test_python_quickbooks_still_raises_authorization_exception(sandbox):
    qb = sdk_client(sandbox)
    sandbox.disconnect()  # every token stops working
    try:
        with pytest.raises(AuthorizationException) as caught:
            Customer.get(2, qb=qb)
    finally:
        qb.session.close()
    assert caught.value.error_code == 401
    assert json.loads(caught.value.detail)["fault"]["error"][0]["code"] == "3200"
