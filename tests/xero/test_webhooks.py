"""Xero webhooks: signature on the raw body, intent-to-receive, events as Changes."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from adapters.xero.webhooks import parse, signature
from connector.ledger import Change, Rejected

KEY = "webhook-key-for-tests-0123456789"


def body(events: list[dict[str, str]]) -> bytes:
    return json.dumps({"events": events, "firstEventSequence": 1, "lastEventSequence": 1,
                       "entropy": "ABCDEF"}).encode()  # fmt: skip


def event(category: str, rid: str, kind: str = "UPDATE") -> dict[str, str]:
    return {"resourceUrl": f"https://api.xero.com/api.xro/2.0/X/{rid}", "resourceId": rid,
            "eventDateUtc": "2026-01-02T03:04:05.123", "eventType": kind, "eventCategory": category,
            "tenantId": "org-1", "tenantType": "ORGANISATION"}  # fmt: skip


def test_intent_to_receive_with_the_right_signature_is_an_empty_list() -> None:
    raw = body([])
    assert parse(KEY, {"X-Xero-Signature": signature(KEY, raw)}, raw) == []


def test_a_wrong_signature_is_rejected_with_401() -> None:
    raw = body([])
    result = parse(KEY, {"x-xero-signature": signature("another-key-entirely-000000", raw)}, raw)
    assert isinstance(result, Rejected)
    assert result.status == 401


def test_a_body_changed_after_signing_is_rejected() -> None:
    raw = body([event("INVOICE", "i-1")])
    sig = signature(KEY, raw)
    assert isinstance(parse(KEY, {"x-xero-signature": sig}, raw.replace(b"i-1", b"i-2")), Rejected)


def test_missing_signature_or_key_is_rejected() -> None:
    raw = body([])
    assert isinstance(parse(KEY, {}, raw), Rejected)
    assert isinstance(parse(None, {"x-xero-signature": signature(KEY, raw)}, raw), Rejected)


def test_events_become_changes_for_their_stream_and_subscription_events_are_ignored() -> None:
    raw = body([event("INVOICE", "i-1", "CREATE"), event("CONTACT", "c-1"), event("CREDITNOTE", "cn-1"),
                event("SUBSCRIPTION", "s-1")])  # fmt: skip
    result = parse(KEY, {"x-xero-signature": signature(KEY, raw)}, raw)
    at = datetime(2026, 1, 2, 3, 4, 5, 123000, tzinfo=UTC)
    assert result == [
        Change("org-1", "invoices", "i-1", "create", at),
        Change("org-1", "contacts", "c-1", "update", at),
        Change("org-1", "credit_notes", "cn-1", "update", at),
    ]


def test_a_signed_body_that_is_not_event_json_is_a_400() -> None:
    raw = b"not json"
    result = parse(KEY, {"x-xero-signature": signature(KEY, raw)}, raw)
    assert isinstance(result, Rejected)
    assert result.status == 400
