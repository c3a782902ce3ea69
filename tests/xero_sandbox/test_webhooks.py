"""The sandbox's webhooks: signed Xero events for contact, invoice and credit-note changes; the handshake."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.sandbox import Faults, SandboxClock, serve
from adapters.xero.sandbox import start
from adapters.xero.sandbox.webhooks import DEFAULT_KEY
from tests.xero_sandbox.conftest import NOON


class Receiver:
    """A webhook receiver that verifies Xero's signature the way an adapter must."""

    def __init__(self, key: str, *, body_on_ok: bytes = b"") -> None:
        self.key = key
        self.body_on_ok = body_on_ok
        self.events: list[dict] = []
        self.lock = threading.Lock()

    async def handle(self, request: Request) -> Response:
        raw = await request.body()
        expected = base64.b64encode(hmac.new(self.key.encode(), raw, hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(expected, request.headers.get("x-xero-signature", "")):
            return Response(status_code=401)
        with self.lock:
            self.events += json.loads(raw)["events"]
        return Response(self.body_on_ok, status_code=200)


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str, object]]:
    rec = Receiver(DEFAULT_KEY)
    running = serve(
        Starlette(routes=[Route("/hook", rec.handle, methods=["POST"])]),
        clock=SandboxClock(),
        faults=Faults(),
    )
    yield rec, f"{running.base_url}/hook", running.ca_path
    running.stop()


def test_changes_post_signed_events_with_xeros_body_shape(firm, receiver):
    rec, url, ca = receiver
    sb = start(firm, webhook_url=url, webhook_verify=ca, clock=SandboxClock(NOON, speed=0))
    try:
        inv = next(i for i in firm.invoices if i.status == "authorised" and i.kind == "sales")
        sb.post_payment(inv.id)
        note = sb.post_credit_note(
            next(i for i in firm.invoices if i.status == "authorised").id,
            sb.book.invoices.by_id[inv.id].total / 10,
        )
        sb.change_contact(inv.customer_id, name="Renamed Ltd")
        sb.flush_webhooks()
    finally:
        sb.stop()
    seen = [(e["eventCategory"], e["resourceId"], e["eventType"]) for e in rec.events]
    assert ("INVOICE", inv.id, "UPDATE") in seen
    assert ("CREDITNOTE", note.id, "CREATE") in seen
    assert ("CONTACT", inv.customer_id, "UPDATE") in seen
    assert all(cat != "PAYMENT" for cat, _, _ in seen)  # Xero sends no payment events
    first = rec.events[0]
    assert first["tenantId"] == sb.tenant_id and first["tenantType"] == "ORGANISATION"
    assert first["resourceUrl"].startswith("https://api.xero.com/api.xro/2.0/")
    assert all(d.status == 200 for d in sb.webhooks.deliveries)


def test_intent_to_receive_passes_a_correct_receiver(firm, receiver):
    _, url, ca = receiver
    sb = start(firm, webhook_url=url, webhook_verify=ca, clock=SandboxClock(NOON))
    try:
        shake = sb.intent_to_receive()
    finally:
        sb.stop()
    assert (shake.good_status, shake.good_body_empty, shake.bad_status) == (200, True, 401)
    assert shake.passed


def test_intent_to_receive_fails_a_receiver_that_answers_with_a_body_or_the_wrong_key(firm):
    chatty = Receiver(DEFAULT_KEY, body_on_ok=b"ok")
    wrong_key = Receiver("another-key")
    running = serve(
        Starlette(
            routes=[
                Route("/chatty", chatty.handle, methods=["POST"]),
                Route("/wrong", wrong_key.handle, methods=["POST"]),
            ]
        ),
        clock=SandboxClock(),
        faults=Faults(),
    )
    sb = start(firm, webhook_verify=str(running.ca_path), clock=SandboxClock(NOON))
    try:
        assert not sb.intent_to_receive(f"{running.base_url}/chatty").passed
        refused = sb.intent_to_receive(f"{running.base_url}/wrong")
        assert (refused.good_status, refused.passed) == (401, False)
    finally:
        sb.stop()
        running.stop()


def test_without_a_url_nothing_is_sent_and_the_handshake_says_why(firm):
    sb = start(firm, clock=SandboxClock(NOON))
    try:
        sb.post_payment(next(i for i in firm.invoices if i.status == "authorised").id)
        assert sb.webhooks.deliveries == []
        with pytest.raises(ValueError, match="no webhook URL"):
            sb.intent_to_receive()
    finally:
        sb.stop()


def test_failed_deliveries_are_retried_and_after_a_day_the_webhook_is_disabled(firm):
    rec = Receiver(DEFAULT_KEY)
    down = {"yes": True}

    async def flaky(request: Request) -> Response:
        return Response(status_code=503) if down["yes"] else await rec.handle(request)

    running = serve(
        Starlette(routes=[Route("/hook", flaky, methods=["POST"])]), clock=SandboxClock(), faults=Faults()
    )
    clock = SandboxClock(NOON, speed=0)
    sb = start(firm, webhook_url=f"{running.base_url}/hook", webhook_verify=str(running.ca_path), clock=clock)
    try:
        inv = next(i for i in firm.invoices if i.status == "authorised")
        sb.void_invoice(inv.id)
        sb.flush_webhooks()
        assert [d.status for d in sb.webhooks.deliveries] == [503] and len(sb.webhooks.failed) == 1
        down["yes"] = False
        sb.webhooks.redeliver()
        assert [e["resourceId"] for e in rec.events] == [inv.id] and sb.webhooks.failed == []
        down["yes"] = True
        sb.change_contact(inv.customer_id, name="Still Failing Ltd")
        sb.flush_webhooks()
        clock.advance(25 * 3600)
        down["yes"] = False
        sb.webhooks.redeliver()
        assert sb.webhooks.disabled and len(rec.events) == 1
        sb.change_contact(inv.customer_id, name="Nobody Hears This Ltd")
        sb.flush_webhooks()
        assert len(rec.events) == 1
    finally:
        sb.stop()
        running.stop()
