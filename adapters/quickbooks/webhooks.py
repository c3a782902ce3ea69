"""Intuit webhooks: the signature checked on the raw bytes, both payload formats turned into Changes.

`intuit-signature` is base64(HMAC-SHA256(verifier token, raw body)), compared with hmac.compare_digest.
Two formats: the legacy `{"eventNotifications": [...]}` and, from 2026, a CloudEvents array
(`type: "qbo.invoice.created.v1"`, `intuitaccountid` = realmId). Anything wrong becomes a one-line Rejected,
never an exception.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from adapters.base import Change, Rejected
from adapters.quickbooks.schema import ENTITIES

HEADER = "intuit-signature"
STREAMS = {entity.lower(): stream for stream, entity in ENTITIES.items()}
_OPERATIONS = {"create": "create", "created": "create", "update": "update", "updated": "update",
               "delete": "delete", "deleted": "delete", "void": "void", "voided": "void", "merge": "merge",
               "merged": "merge", "emailed": "update"}  # fmt: skip


def _header(headers: Mapping[str, str], name: str) -> str | None:
    return next((value for key, value in headers.items() if key.lower() == name), None)


def verify(headers: Mapping[str, str], raw_body: bytes, verifier: str | None) -> Rejected | None:
    """None if the body is signed with `verifier`, else why not."""
    if not verifier:
        return Rejected("quickbooks.webhook_verifier is not set: cannot verify webhooks", 401)
    signature = _header(headers, HEADER)
    if not signature:
        return Rejected(f"missing {HEADER} header", 401)
    try:
        given = base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError):
        return Rejected(f"malformed {HEADER} header (not base64)", 401)
    expected = hmac.new(verifier.encode(), raw_body, hashlib.sha256).digest()
    if not hmac.compare_digest(given, expected):
        return Rejected(f"{HEADER} does not match the body", 401)
    return None


def _when(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _legacy(body: Mapping[str, Any]) -> list[Change]:
    changes: list[Change] = []
    for note in body.get("eventNotifications") or []:
        realm = str(note.get("realmId", ""))
        for entity in (note.get("dataChangeEvent") or {}).get("entities") or []:
            stream = STREAMS.get(str(entity.get("name", "")).lower())
            if stream and realm and entity.get("id") is not None:
                operation = _OPERATIONS.get(str(entity.get("operation", "")).lower(), "update")
                changes.append(
                    Change(realm, stream, str(entity["id"]), operation, _when(entity.get("lastUpdated")))
                )
    return changes


def _cloud_events(events: list[Any]) -> list[Change]:
    changes: list[Change] = []
    for event in events:
        if not isinstance(event, dict):
            continue
        parts = str(event.get("type", "")).split(".")  # qbo.<entity>.<operation>.v1
        if len(parts) < 3 or parts[0] != "qbo":
            continue
        stream = STREAMS.get(parts[1].lower())
        realm, rid = event.get("intuitaccountid"), event.get("intuitentityid")
        if stream and realm is not None and rid is not None:
            operation = _OPERATIONS.get(parts[2].lower(), "update")
            changes.append(Change(str(realm), stream, str(rid), operation, _when(event.get("time"))))
    return changes


def parse(headers: Mapping[str, str], raw_body: bytes, verifier: str | None) -> list[Change] | Rejected:
    """Verify and read one delivery; Changes for the four streams ccm pulls (other entities are ignored)."""
    problem = verify(headers, raw_body, verifier)
    if problem is not None:
        return problem
    try:
        body = json.loads(raw_body)
    except (UnicodeDecodeError, ValueError):
        return Rejected("webhook body is not JSON", 400)
    if isinstance(body, list):
        return _cloud_events(body)
    if isinstance(body, dict) and "eventNotifications" in body:
        return _legacy(body)
    return Rejected("webhook body is neither Intuit's legacy nor its CloudEvents format", 400)
