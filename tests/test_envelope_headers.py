"""envelope.build keeps each header class once (connector/envelope.py `_Headers`): the message it builds is,
byte for byte, the one email.policy.default builds, for every header ccm sets and with attachments."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email import policy
from email.headerregistry import HeaderRegistry

import pytest

from connector import envelope, mail
from connector.config import SmtpSettings
from connector.firmprofile import FirmProfile

SMTP = SmtpSettings(host="127.0.0.1", port=25, from_address="accounts@acme.example")
RENDERED = mail.Rendered("Acme Ltd: overdue invoices — Café Ünïcode", "Dear Ann,\n£120.00 is due.\n",
                         "<p>Dear Ann,<br>£120.00 is due.</p>\n")  # fmt: skip
PROFILE = FirmProfile(
    from_name="Jane Smith, Acme", from_address="jane@acme.example", reply_to="ar@acme.example"
)


def _bytes() -> bytes:
    sent = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
    pdf = envelope.Attachment("INV-0001.pdf", b"%PDF-1.4 test")
    message = envelope.build(RENDERED, ("ann@example.com", "Bob <bob@example.com>"), "dun-abc", SMTP, PROFILE,
                             sent, [pdf])  # fmt: skip
    random.seed(1)  # the multipart boundaries
    return message.as_bytes()


def test_the_kept_header_classes_change_no_byte_of_the_message(monkeypatch: pytest.MonkeyPatch) -> None:
    kept = _bytes()
    monkeypatch.setattr(envelope, "POLICY", policy.default)  # the stdlib's own, a new class per header
    assert kept == _bytes()
    assert b"Cc: Bob <bob@example.com>" in kept and b"Auto-Submitted: auto-generated" in kept


def test_each_header_class_is_made_once() -> None:
    registry = envelope.POLICY.header_factory
    assert isinstance(registry, HeaderRegistry)
    assert registry["Subject"] is registry["subject"]
    assert registry["To"] is not registry["Subject"]
