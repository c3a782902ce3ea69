"""Intuit webhooks: signature on the raw bytes, both formats, every malformed input a one-line Rejected."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime

import pytest

from adapters.quickbooks.webhooks import parse
from connector.ledger import Change, Rejected

VERIFIER = "verifier-token-123"


def signed(body: bytes, key: str = VERIFIER) -> dict[str, str]:
    digest = hmac.new(key.encode(), body, hashlib.sha256).digest()
    return {"Intuit-Signature": base64.b64encode(digest).decode()}


LEGACY = json.dumps({"eventNotifications": [{"realmId": "9130", "dataChangeEvent": {"entities": [
    {"name": "Invoice", "id": "130", "operation": "Update", "lastUpdated": "2026-01-10T17:30:00.000Z"},
    {"name": "Customer", "id": "58", "operation": "Merge", "lastUpdated": "2026-01-10T17:31:00.000Z"},
    {"name": "Payment", "id": "141", "operation": "Delete", "lastUpdated": "2026-01-10T17:32:00.000Z"},
    {"name": "Vendor", "id": "3", "operation": "Create", "lastUpdated": "2026-01-10T17:33:00.000Z"},
]}}]}).encode()  # fmt: skip

CLOUD = json.dumps([
    {"specversion": "1.0", "id": "e1", "source": "intuit.dsnBgbseACLLRZNxo2dfc4evmEJdxde58xeeYcZliOU=",
     "type": "qbo.invoice.created.v1", "datacontenttype": "application/json", "time": "2026-01-10T17:30:00Z",
     "intuitentityid": "131", "intuitaccountid": "9130", "data": {}},
    {"specversion": "1.0", "id": "e2", "source": "intuit.x", "type": "qbo.creditmemo.voided.v1",
     "time": "2026-01-10T17:31:00Z", "intuitentityid": "150", "intuitaccountid": "9130", "data": {}},
    {"specversion": "1.0", "id": "e3", "source": "intuit.x", "type": "qbo.bill.created.v1",
     "time": "2026-01-10T17:32:00Z", "intuitentityid": "4", "intuitaccountid": "9130", "data": {}},
]).encode()  # fmt: skip


def test_the_legacy_format_becomes_changes_of_the_streams_ccm_pulls():
    changes = parse(signed(LEGACY), LEGACY, VERIFIER)
    assert changes == [
        Change("9130", "invoices", "130", "update", datetime(2026, 1, 10, 17, 30, tzinfo=UTC)),
        Change("9130", "customers", "58", "merge", datetime(2026, 1, 10, 17, 31, tzinfo=UTC)),
        Change("9130", "payments", "141", "delete", datetime(2026, 1, 10, 17, 32, tzinfo=UTC)),
    ]


def test_the_cloudevents_format_becomes_changes_too():
    changes = parse(signed(CLOUD), CLOUD, VERIFIER)
    assert changes == [
        Change("9130", "invoices", "131", "create", datetime(2026, 1, 10, 17, 30, tzinfo=UTC)),
        Change("9130", "credit_memos", "150", "void", datetime(2026, 1, 10, 17, 31, tzinfo=UTC)),
    ]


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing intuit-signature header"),
        ({"intuit-signature": "%%%not-base64%%%"}, "malformed intuit-signature header (not base64)"),
        (signed(LEGACY, key="another-verifier"), "intuit-signature does not match the body"),
        (signed(LEGACY + b" "), "intuit-signature does not match the body"),
    ],
)
def test_a_bad_signature_is_rejected_with_401_and_one_line(headers, reason):
    answer = parse(headers, LEGACY, VERIFIER)
    assert answer == Rejected(reason, 401)


def test_without_a_verifier_nothing_is_accepted():
    answer = parse(signed(LEGACY), LEGACY, None)
    assert isinstance(answer, Rejected)
    assert answer.status == 401
    assert "webhook_verifier" in answer.reason


@pytest.mark.parametrize("body", [b"not json", b'{"something": "else"}', b"\xff\xfe"])
def test_a_signed_body_that_is_not_intuits_is_rejected_with_400(body):
    answer = parse(signed(body), body, VERIFIER)
    assert isinstance(answer, Rejected)
    assert answer.status == 400
    assert "\n" not in answer.reason
