"""Memo webhooks: a JSON body {"events": [{"org", "stream", "id", "op"}]} signed with HMAC-SHA256 of the raw
body under the app's webhook secret, base64 in the `x-memo-signature` header."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping

from connector.ledger import Change, Rejected

HEADER = "x-memo-signature"
STREAMS = {
    "customer": "customers",
    "invoice": "invoices",
    "credit_note": "credit_notes",
    "payment": "payments",
}


def signature(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def parse(secret: str | None, headers: Mapping[str, str], raw_body: bytes) -> list[Change] | Rejected:
    """The delivery's Changes, or Rejected (401 unsigned or mis-signed, 400 unreadable); never raises."""
    given = {k.lower(): v for k, v in headers.items()}.get(HEADER, "")
    if not secret or not given or not hmac.compare_digest(given, signature(secret, raw_body)):
        return Rejected("the memo webhook signature does not match", 401)
    try:
        events = json.loads(raw_body)["events"]
        return [
            Change(str(e["org"]), STREAMS[e["kind"]], str(e["id"]), str(e.get("op", "update")))
            for e in events
        ]
    except (ValueError, KeyError, TypeError):
        return Rejected("unreadable memo webhook", 400)
