"""The QBO client never resends a write whose answer was lost; the writer looks at QBO before sending again.

A scripted HTTP session stands in for QBO here (the contract suite runs the same against the sandbox): each
test states the answers QBO gives and checks what was sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
import requests

from adapters.quickbooks.client import OutcomeUnknown, QboApi
from adapters.quickbooks.pacing import Pacer
from adapters.quickbooks.writeback import Writer, request_id
from tests.quickbooks.samples import invoice
from tests.quickbooks.test_pacing import XML_THROTTLE

Answer = int | tuple[int, Any] | type[Exception]


class Tokens:
    def access_token(self) -> str:
        return "token"

    def after_unauthorized(self, rejected: str) -> str:
        return "token"


class Session:
    """Answers requests from a script of (what the request must be, the answer); records each request."""

    def __init__(self, script: list[tuple[str, Answer]]) -> None:
        self.script = list(script)
        self.sent: list[tuple[str, dict[str, Any], str]] = []

    def request(self, method: str, url: str, *, params: Any, data: Any, **_: Any) -> requests.Response:
        path = url.split("/company/1/", 1)[1]
        self.sent.append((f"{method} {path}", dict(params or {}), str(data or "")))
        wanted, answer = self.script.pop(0)
        assert f"{method} {path}".startswith(wanted), (wanted, method, path)
        if isinstance(answer, type):
            raise answer("scripted")
        status, body = answer if isinstance(answer, tuple) else (answer, {})
        response = requests.Response()
        response.status_code = status
        response._content = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        if status == 429:
            response.headers["Retry-After"] = "2"
        return response

    def close(self) -> None:
        pass


def api(script: list[tuple[str, Answer]]) -> tuple[QboApi, Session, list[float]]:
    slept: list[float] = []
    client = QboApi("1", "https://qbo.example/", 75, Tokens(), pacer=Pacer(), sleep=slept.append)
    session = Session(script)
    client._http = session  # type: ignore[assignment]
    return client, session, slept


NOTE = {"Id": "900", "Note": "Reminder [ccm:k1]", "MetaData": {"CreateTime": "2026-01-10T09:30:00-08:00"}}
NONE: dict[str, Any] = {"QueryResponse": {}}
FOUND = {"QueryResponse": {"Attachable": [NOTE]}}


def test_reads_are_retried_on_5xx_and_dropped_connections():
    client, session, slept = api([("POST query", 503), ("POST query", requests.ConnectionError),
                                  ("POST query", (200, NONE))])  # fmt: skip
    assert client.query("SELECT * FROM Invoice") == NONE
    assert len(session.sent) == 3 and len(slept) == 2


@pytest.mark.parametrize("lost", [503, 500, requests.ConnectionError, requests.ReadTimeout])
def test_a_write_whose_answer_is_lost_is_sent_once(lost: Answer):
    client, session, _ = api([("POST attachable", lost)])
    with pytest.raises(OutcomeUnknown, match="QuickBooks may have done it"):
        client.create("Attachable", {"Note": "x"}, request_id="r-1")
    assert [(what, params.get("requestid")) for what, params, _ in session.sent] == [
        ("POST attachable", "r-1")
    ]


def test_a_throttled_write_is_sent_again_after_retry_after():
    client, session, slept = api([("POST attachable", (429, XML_THROTTLE)),
                                  ("POST attachable", (200, {"Attachable": NOTE}))])  # fmt: skip
    assert client.create("Attachable", {"Note": "x"}, request_id="r-1")["Id"] == "900"
    assert slept == [2.0]
    assert {params["requestid"] for _, params, _ in session.sent} == {"r-1"}


def test_a_note_whose_answer_was_lost_is_found_by_its_marker_and_not_written_again():
    client, session, _ = api([("POST query", (200, NONE)), ("POST attachable", 503),
                              ("POST query", (200, FOUND))])  # fmt: skip
    result = Writer(client).add_note("invoice:130", "Reminder", "k1")
    assert (result.applied, result.ledger_ref, result.api_calls) == (True, "900", 3)
    assert [what for what, _, _ in session.sent].count("POST attachable") == 1


def test_a_note_not_found_after_a_lost_answer_is_sent_again_with_the_same_requestid():
    client, session, _ = api([("POST query", (200, NONE)), ("POST attachable", requests.ConnectionError),
                              ("POST query", (200, NONE)), ("POST attachable", (200, {"Attachable": NOTE}))])  # fmt: skip
    assert Writer(client).add_note("invoice:130", "Reminder", "k1").applied
    ids = [params["requestid"] for what, params, _ in session.sent if what == "POST attachable"]
    assert len(ids) == 2 and ids[0] == ids[1]


def test_when_qbo_cannot_be_asked_the_outcome_is_unknown_and_the_next_call_asks_first():
    script: list[tuple[str, Answer]] = [("POST query", (200, NONE)), ("POST attachable", 503)]
    client, _, _ = api(script + [("POST query", 503)] * 5)
    with pytest.raises(OutcomeUnknown, match="could not be asked"):
        Writer(client).add_note("invoice:130", "Reminder", "k1")
    again, session, _ = api([("POST query", (200, FOUND))])
    assert not Writer(again).add_note("invoice:130", "Reminder", "k1").applied
    assert [what for what, _, _ in session.sent] == ["POST query"]


def test_answers_lost_again_and_again_end_in_outcome_unknown_not_in_more_sends():
    script: list[tuple[str, Answer]] = [("POST query", (200, NONE))]
    script += [("POST attachable", 503), ("POST query", (200, NONE))] * 3
    client, session, _ = api(script)
    with pytest.raises(OutcomeUnknown, match="3 answers lost"):
        Writer(client).add_note("invoice:130", "Reminder", "k1")
    assert [what for what, _, _ in session.sent].count("POST attachable") == 3


def _invoice(delivered: str | None) -> dict[str, Any]:
    extra: dict[str, Any] = {"BillEmail": {"Address": "ap@example.com"}}
    if delivered:
        extra["DeliveryInfo"] = {"DeliveryType": "Email", "DeliveryTime": delivered}
    return {"Invoice": invoice(**extra)}


def test_a_send_whose_answer_was_lost_is_checked_by_delivery_info_not_sent_again():
    client, session, _ = api([
        ("POST query", (200, NONE)), ("POST attachable", (200, {"Attachable": NOTE})),
        ("POST invoice/130/send", requests.ReadTimeout), ("GET invoice/130", (200, _invoice("2026-01-10T09:30:01-08:00"))),
    ])  # fmt: skip
    assert Writer(client).send_invoice("invoice:130", "k1").applied
    assert [what for what, _, _ in session.sent].count("POST invoice/130/send") == 1


def test_a_send_not_delivered_after_a_lost_answer_is_sent_again():
    client, session, _ = api([
        ("POST query", (200, NONE)), ("POST attachable", (200, {"Attachable": NOTE})),
        ("POST invoice/130/send", 502), ("GET invoice/130", (200, _invoice("2026-01-09T08:00:00-08:00"))),
        ("POST invoice/130/send", (200, _invoice("2026-01-10T09:30:05-08:00"))),
    ])  # fmt: skip
    assert Writer(client).send_invoice("invoice:130", "k1").applied
    ids = [params["requestid"] for what, params, _ in session.sent if what == "POST invoice/130/send"]
    assert len(ids) == 2 and ids[0] == ids[1] == request_id("k1", "send", "130", None)


def test_a_hold_whose_update_answer_was_lost_is_seen_on_the_re_read():
    held = "[ccm credit hold] since 2026-01-10: over limit"
    customer = {"Id": "1", "SyncToken": "3", "Notes": ""}
    client, session, _ = api([
        ("GET customer/1", (200, {"Customer": customer})), ("POST customer", 503),
        ("GET customer/1", (200, {"Customer": {**customer, "SyncToken": "4", "Notes": held}})),
        ("POST query", (200, NONE)), ("POST attachable", (200, {"Attachable": NOTE})),
    ])  # fmt: skip
    writer = Writer(client, now=_at("2026-01-10T12:00:00+00:00"))
    assert writer.set_hold("customer:1", True, "over limit", "k1").applied
    assert [what for what, _, _ in session.sent].count("POST customer") == 1


def test_request_ids_differ_between_requests_and_keys():
    assert request_id("k1", "Attachable", {"Note": "a"}) == request_id("k1", "Attachable", {"Note": "a"})
    assert request_id("k1", "Attachable", {"Note": "a"}) != request_id("k1", "Attachable", {"Note": "b"})
    assert request_id("k1", "send", "130", None) != request_id("k2", "send", "130", None)
    assert len(request_id("k" * 500, "send")) == 32


def _at(stamp: str) -> Callable[[], datetime]:
    return lambda: datetime.fromisoformat(stamp)
