"""Xero webhooks: the signature checked on the raw body, intent-to-receive answered, events as Changes.

Xero signs each delivery with `x-xero-signature` = base64(HMAC-SHA256(webhook key, raw body)). To prove the
endpoint works it first posts signed and mis-signed deliveries with no events ("intent to receive"): the
right signature gets 200 with an empty body, a wrong one 401, within 5 seconds. There are no payment events.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from connector.ledger import Change, Rejected
from connector.mapping.values import ValueProblem, instant_parser

SIGNATURE_HEADER = "x-xero-signature"
STREAMS = {"INVOICE": "invoices", "CONTACT": "contacts", "CREDITNOTE": "credit_notes"}
_OPERATIONS = {"CREATE": "create", "UPDATE": "update"}
_instant = instant_parser("auto")


def signature(key: str, body: bytes) -> str:
    """The signature Xero sends for `body`."""
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def parse(key: str | None, headers: Mapping[str, str], raw_body: bytes) -> list[Change] | Rejected:
    """Changes from a delivery, [] for an intent-to-receive, or Rejected(401) if it is not from Xero."""
    if not key:
        return Rejected("no Xero webhook key is configured (xero.webhook_key)", 401)
    sent = _header(headers, SIGNATURE_HEADER)
    if not sent:
        return Rejected(f"missing {SIGNATURE_HEADER} header", 401)
    if not hmac.compare_digest(sent.encode(), signature(key, raw_body).encode()):
        return Rejected(f"bad {SIGNATURE_HEADER} signature", 401)
    try:
        body = json.loads(raw_body)
        events = body["events"]
        if not isinstance(events, list):
            raise TypeError("events is not a list")
    except (ValueError, KeyError, TypeError) as exc:
        return Rejected(f"webhook body is not Xero's event JSON ({type(exc).__name__})", 400)
    try:
        return _changes(events)
    except _Shape as exc:  # all or nothing: a delivery with one malformed event queues nothing
        return Rejected(f"webhook body is not Xero's event JSON: {exc}", 400)


class _Shape(ValueError):
    """The signed body is JSON but an event is not in the shape Xero sends: one line saying where."""


def _text(event: Mapping[str, Any], key: str, where: str, required: bool = False) -> str:
    value = event.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise _Shape(f"{where}.{key}: expected text, got {type(value).__name__}")
    return value


def _changes(events: list[Any]) -> list[Change]:
    changes: list[Change] = []
    for n, event in enumerate(events):
        where = f"events[{n}]"
        if not isinstance(event, dict):
            raise _Shape(f"{where}: expected an object, got {type(event).__name__}")
        stream = STREAMS.get(_text(event, "eventCategory", where).upper())
        if stream is None:
            continue  # SUBSCRIPTION events and anything unknown concern no stream
        tenant = _text(event, "tenantId", where, required=True)
        rid = _text(event, "resourceId", where, required=True)
        operation = _OPERATIONS.get(_text(event, "eventType", where).upper(), "update")
        changes.append(Change(tenant, stream, rid, operation, _when(_text(event, "eventDateUtc", where))))
    return changes


def _when(raw: str) -> datetime | None:
    try:
        return _instant(raw) if raw else None
    except ValueProblem:
        return None
