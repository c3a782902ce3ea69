"""Every answer carries an `intuit_tid` header, one per answer, shaped like Intuit's.

Sources: LEDGER-API-FACTS.md ("every answer carries an `intuit_tid` header: log it with errors (Intuit support
asks for it)"); the shape "1-63ebf469-42aa3f7771c495f414fdfa6c" quoted in intuit/QuickBooks-V3-PHP-SDK#472
(2023-02-14; 0x63ebf469 is that day in epoch seconds); Intuit's OAuth client libraries read it from token
answers too (intuit/oauth2-java's BearerTokenResponse.getIntuit_tid()).
"""

from __future__ import annotations

import re

from tests.quickbooks_sandbox.conftest import Client

TID = re.compile(r"^1-[0-9a-f]{8}-[0-9a-f]{24}$")


def test_every_api_answer_has_an_intuit_tid(client: Client, sandbox):
    answers = [
        client.call("GET", "customer/2"),  # 200
        client.call("GET", "invoice/999999"),  # 400 Object Not Found
        client.call("GET", "customer/2", token="not-a-token"),  # 401
        client.call("POST", "query", text="SELECT * FROM Nothing"),  # 400 parse error
    ]
    answers += [client.call("GET", "customer/2") for _ in range(8)]  # the 11th API call this second: 429
    assert answers[-1].status_code == 429
    tids = [a.headers.get("intuit_tid", "") for a in answers]
    assert all(TID.match(t) for t in tids), tids
    assert len(set(tids)) == len(tids)  # one per answer
    assert int(tids[0].split("-")[1], 16) == int(sandbox.clock.now().timestamp())


def test_oauth_answers_have_an_intuit_tid_too(sandbox):
    import requests

    answer = requests.post(sandbox.token_url, data={"grant_type": "refresh_token", "refresh_token": "nope"},
                           auth=(sandbox.client_id, sandbox.client_secret), verify=str(sandbox.ca_path),
                           timeout=10)  # fmt: skip
    assert answer.status_code == 400 and TID.match(answer.headers["intuit_tid"])
