"""QBO's limits: 10 requests/s and 500/min per realm, 10 in flight, 40 batches/min; 429 with the XML 3001 body.

The fixture's clock is stopped: tests move it a second on after every ten calls, as a client pacing itself to
QBO's 10 requests a second would (tests/quickbooks_sandbox/test_per_second.py tests that window itself).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from quickbooks.exceptions import QuickbooksException
from quickbooks.objects.customer import Customer

from tests.quickbooks_sandbox.conftest import Client, sdk_client


def _is_throttle(answer) -> bool:
    return (
        answer.status_code == 429
        and answer.headers["content-type"].startswith("application/xml")
        and '<Error code="3001">' in answer.text
        and "message=ThrottleExceeded; errorCode=003001; statusCode=429" in answer.text
    )


def test_the_501st_request_in_a_minute_is_throttled_with_xml(client: Client, sandbox):
    answers = [_paced(sandbox, n, lambda: client.call("GET", "customer/2")).status_code for n in range(500)]
    assert answers == [200] * 500  # 50 sandbox seconds: all in the minute's window
    throttled = client.call("GET", "customer/2")
    assert _is_throttle(throttled)
    qb = sdk_client(sandbox, {"access_token": client.token, "refresh_token": "r"})
    with pytest.raises(QuickbooksException, match="Error reading json response"):
        Customer.get(2, qb=qb)  # the SDK misreads the XML body: adapters must check status and body
    qb.session.close()
    sandbox.clock.advance(60)  # fixed windows: the next minute starts afresh
    assert client.call("GET", "customer/2").status_code == 200


def _paced(sandbox, n: int, call):
    """`call()`, after moving the stopped clock a second on every ten calls (n counts from 0)."""
    if n and n % 10 == 0:
        sandbox.clock.advance(1)
    return call()


def test_41st_batch_in_a_minute_is_throttled(client: Client, sandbox):
    body = {"BatchItemRequest": [{"bId": "1", "Query": "SELECT * FROM Customer WHERE Id = '2'"}]}
    batch = lambda: client.call("POST", "batch", body=body)  # noqa: E731
    assert {_paced(sandbox, n, batch).status_code for n in range(40)} == {200}
    sandbox.clock.advance(1)  # a new second: what refuses the 41st is the batch window
    refused = client.call("POST", "batch", body=body)
    assert _is_throttle(refused) and "40 per minute" in refused.text
    assert sandbox.api.refused == 1  # what benches report as the 429s a run met


def test_refused_counts_every_429_and_nothing_else(client: Client, sandbox):
    assert [_paced(sandbox, n, lambda: client.call("GET", "customer/2")).status_code for n in range(500)] == [
        200
    ] * 500
    assert sandbox.api.refused == 0
    assert [client.call("GET", "customer/2").status_code for _ in range(3)] == [429] * 3
    assert sandbox.api.refused == 3


def test_more_than_10_concurrent_requests_are_throttled(sandbox):
    sandbox.api.slow_s = 0.4
    clients = [Client(sandbox) for _ in range(14)]
    with ThreadPoolExecutor(14) as pool:
        answers = list(pool.map(lambda c: c.call("GET", "customer/2"), clients))
    codes = sorted(a.status_code for a in answers)
    assert codes.count(200) <= 10 and codes.count(429) >= 4
    assert all(_is_throttle(a) for a in answers if a.status_code == 429)
    for c in clients:
        c.http.close()


def test_limits_can_be_switched_off_for_benches(client: Client, sandbox):
    sandbox.limits = False
    body = {"BatchItemRequest": [{"bId": "1", "Query": "SELECT * FROM Customer WHERE Id = '2'"}]}
    assert {client.call("POST", "batch", body=body).status_code for _ in range(45)} == {200}


def test_injected_faults_replace_answers(client: Client, sandbox):
    sandbox.faults.error_rate = 1.0
    assert client.call("GET", "customer/2").status_code in {500, 503}
    sandbox.faults.clear()
    assert client.call("GET", "customer/2").status_code == 200
    sandbox.faults.drop_rate = 1.0
    client.http.close()  # a fresh connection: drops happen as requests arrive
    with pytest.raises(requests.ConnectionError):
        client.call("GET", "customer/2")
    sandbox.faults.clear()
    assert client.call("GET", "customer/2").status_code == 200
