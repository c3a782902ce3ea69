"""Signed webhook notifications: legacy and CloudEvents, Intuit's retry schedule, out-of-order delivery."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from adapters.quickbooks.sandbox import start
from adapters.quickbooks.sandbox.notify import RETRY_SCHEDULE, Notifier
from adapters.sandbox.clock import SandboxClock
from tests.quickbooks_sandbox.conftest import Client


class Receiver:
    """A loopback endpoint that records each delivery and answers the statuses it is told to."""

    def __init__(self) -> None:
        self.got: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/webhooks/quickbooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count: int) -> None:
        deadline = time.monotonic() + 5
        while len(self.got) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.got) >= count, f"{len(self.got)} deliveries, expected {count}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()
    r.server.server_close()


def _signed(headers: dict[str, str], body: bytes, key: str) -> bool:
    expected = base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(headers["intuit-signature"], expected)


@pytest.mark.parametrize("fmt", ["legacy", "cloudevents"])
def test_a_change_through_the_api_is_notified_signed(receiver: Receiver, firm, fmt):
    clock = SandboxClock(start=datetime(2026, 11, 2, 9, tzinfo=UTC), speed=0)
    sb = start(
        firm, seed=7, clock=clock, webhook_url=receiver.url, webhook_format=fmt, webhook_verifier="v3rify"
    )
    client = Client(sb)
    try:
        c = client.call("GET", "customer/2").json()["Customer"]
        client.call(
            "POST", "customer", body={"Id": "2", "SyncToken": c["SyncToken"], "sparse": True, "Notes": "n"}
        )
        receiver.wait(1)
    finally:
        client.http.close()
        sb.stop()
    headers, body = receiver.got[0]
    assert _signed(headers, body, "v3rify") and not _signed(headers, body, "ccm-sandbox-verifier")
    payload = json.loads(body)
    if fmt == "legacy":
        note = payload["eventNotifications"][0]
        assert note["realmId"] == sb.realm
        assert note["dataChangeEvent"]["entities"] == [
            {"name": "Customer", "id": "2", "operation": "Update", "lastUpdated": "2026-11-02T09:00:00.000Z"}
        ]
    else:
        (event,) = payload
        assert (event["type"], event["intuitentityid"], event["intuitaccountid"], event["specversion"]) == (
            "qbo.customer.updated.v1",
            "2",
            sb.realm,
            "1.0",
        )


def test_failed_deliveries_are_retried_on_intuits_schedule(receiver: Receiver):
    clock = SandboxClock(start=datetime(2026, 11, 2, 9, tzinfo=UTC), speed=0)
    notifier = Notifier("123", clock, url=receiver.url)
    receiver.statuses = [500] * 9
    notifier.record("Invoice", "60", "Update")
    assert notifier.pump() == [500]
    waits = []
    for _ in range(9):
        due = notifier.pending()[0].due
        waits.append(int((due - clock.now()).total_seconds()))
        clock.advance(waits[-1] - 1)
        assert notifier.pump() == []  # not due yet
        clock.advance(1)
        notifier.pump()
    assert waits == [*RETRY_SCHEDULE, 21600]
    assert notifier.pending() == [] and len(receiver.got) == 10
    assert len({body for _, body in receiver.got}) == 1  # the same notification each time


def test_without_retries_a_failed_delivery_is_dropped(receiver: Receiver):
    clock = SandboxClock(start=datetime(2026, 11, 2, 9, tzinfo=UTC), speed=0)
    notifier = Notifier("123", clock, url=receiver.url, retries=False)
    receiver.statuses = [503]
    notifier.record("Invoice", "60", "Update")
    assert notifier.pump() == [503] and notifier.pending() == []


def test_out_of_order_delivers_each_change_alone_newest_first(receiver: Receiver):
    clock = SandboxClock(start=datetime(2026, 11, 2, 9, tzinfo=UTC), speed=0)
    notifier = Notifier("123", clock, url=receiver.url, out_of_order=True)
    for n in ("60", "61", "62"):
        notifier.record("Invoice", n, "Update")
        clock.advance(1)
    assert notifier.pump() == [200, 200, 200]
    ids = [
        json.loads(b)["eventNotifications"][0]["dataChangeEvent"]["entities"][0]["id"]
        for _, b in receiver.got
    ]
    assert ids == ["62", "61", "60"]


def test_test_controls_notify_payments_and_deletions(receiver: Receiver, firm):
    clock = SandboxClock(start=datetime(2026, 11, 2, 9, tzinfo=UTC), speed=0)
    sb = start(firm, seed=7, clock=clock)
    sb.notifier.url = receiver.url  # delivered by hand here, not by the background pump
    try:
        pay_id = sb.post_payment("61", Decimal("2.00"))
        sb.delete("Invoice", "60")
        sb.notifier.pump()
    finally:
        sb.stop()
    entities = json.loads(receiver.got[0][1])["eventNotifications"][0]["dataChangeEvent"]["entities"]
    assert [(e["name"], e["id"], e["operation"]) for e in entities] == [
        ("Payment", pay_id, "Create"),
        ("Invoice", "61", "Update"),
        ("Invoice", "60", "Delete"),
    ]


def test_changes_are_not_kept_without_an_endpoint():
    notifier = Notifier("123", SandboxClock(speed=0))
    notifier.record("Invoice", "60", "Update")
    assert notifier.queued == [] and notifier.pump() == []
