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

from adapters.quickbooks.schema import ENTITIES
from connector.ledger import Change, Rejected

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


class _Shape(ValueError):
    """The signed body is JSON but not in the shape Intuit sends: one line saying where."""


def _when(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _id(value: Any, where: str) -> str:
    """An id Intuit sends as a string (or, in older payloads, a number); anything else is no id."""
    if isinstance(value, str) and value.strip():
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise _Shape(f"{where}: expected an id, got {type(value).__name__}")


def _text(value: Any, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _Shape(f"{where}: expected text, got {type(value).__name__}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise _Shape(f"{where}: expected a list, got {type(value).__name__}")
    return value


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Shape(f"{where}: expected an object, got {type(value).__name__}")
    return value


def _legacy(body: Mapping[str, Any]) -> list[Change]:
    changes: list[Change] = []
    for n, raw_note in enumerate(_list(body["eventNotifications"], "eventNotifications")):
        where = f"eventNotifications[{n}]"
        note = _object(raw_note, where)
        realm = _id(note.get("realmId"), f"{where}.realmId")
        event = _object(note.get("dataChangeEvent"), f"{where}.dataChangeEvent")
        entities = _list(event.get("entities"), f"{where}.dataChangeEvent.entities")
        for e, raw_entity in enumerate(entities):
            at = f"{where}.dataChangeEvent.entities[{e}]"
            entity = _object(raw_entity, at)
            stream = STREAMS.get(_text(entity.get("name"), f"{at}.name").lower())
            if stream is None:
                continue  # an entity ccm does not pull (Vendor, Bill, ...)
            rid = _id(entity.get("id"), f"{at}.id")
            operation = _OPERATIONS.get(_text(entity.get("operation"), f"{at}.operation").lower(), "update")
            when = _when(_text(entity.get("lastUpdated"), f"{at}.lastUpdated"))
            changes.append(Change(realm, stream, rid, operation, when))
    return changes


def _cloud_events(events: list[Any]) -> list[Change]:
    changes: list[Change] = []
    for n, raw in enumerate(events):
        where = f"[{n}]"
        event = _object(raw, where)
        parts = _text(event.get("type"), f"{where}.type").split(".")  # qbo.<entity>.<operation>.v1
        if len(parts) < 3 or parts[0] != "qbo":
            continue
        stream = STREAMS.get(parts[1].lower())
        if stream is None:
            continue
        realm = _id(event.get("intuitaccountid"), f"{where}.intuitaccountid")
        rid = _id(event.get("intuitentityid"), f"{where}.intuitentityid")
        operation = _OPERATIONS.get(parts[2].lower(), "update")
        when = _when(_text(event.get("time"), f"{where}.time"))
        changes.append(Change(realm, stream, rid, operation, when))
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
    try:
        if isinstance(body, list):
            return _cloud_events(body)
        if isinstance(body, dict) and "eventNotifications" in body:
            return _legacy(body)
    except _Shape as exc:  # all or nothing: a delivery with one malformed event queues nothing
        return Rejected(f"webhook body is not in Intuit's format: {exc}", 400)
    return Rejected("webhook body is neither Intuit's legacy nor its CloudEvents format", 400)
