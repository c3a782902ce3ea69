"""QBO's per-second throttle: at most 10 requests per second per realm and app, answered past it with the
same 429 and XML 3001 body as the minute and in-flight limits.

Source: Intuit's limits-and-throttles page (developer.intuit.com, learn/limits-and-throttles), as
LEDGER-API-FACTS.md cites it: "10 requests per second per realm and app (sandbox companies too, since
2025-09-15), besides 500 a minute and 10 concurrent". The 429's XML body: routablehq/python-quickbooks#83.
"""

from __future__ import annotations

from tests.quickbooks_sandbox.conftest import Client


def _is_throttle(answer) -> bool:
    return (
        answer.status_code == 429
        and answer.headers["content-type"].startswith("application/xml")
        and '<Error code="3001">' in answer.text
        and "message=ThrottleExceeded; errorCode=003001; statusCode=429" in answer.text
    )


def test_the_11th_request_within_one_second_is_throttled(client: Client, sandbox):
    answers = [client.call("GET", "customer/2") for _ in range(11)]  # the fixture's clock is stopped
    assert [a.status_code for a in answers[:10]] == [200] * 10
    assert _is_throttle(answers[10]) and "(second)" in answers[10].text
    sandbox.clock.advance(1)  # QBO's second is a fixed window: the next one starts afresh
    assert client.call("GET", "customer/2").status_code == 200


def test_sequential_reads_are_held_to_ten_a_second(client: Client, sandbox):
    codes = [
        client.call("POST", "query", text="SELECT * FROM Customer MAXRESULTS 1").status_code
        for _ in range(25)
    ]
    assert codes.count(200) == 10 and codes.count(429) == 15
