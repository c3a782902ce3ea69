"""The morning digest, through a real SMTP server: once per firm and night, to the firm's contact, naming the
customers and invoices of the night, in text and HTML; not at all for a firm that did not ask for it."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from connector.store import Store
from tests.scripted import ScriptedLedger
from tests.smtp import Inbox, smtp_server
from tests.test_calls import _books
from tests.test_cli import ccm

NIGHT = "2026-11-24T10:00:00Z"
OWNER = "owner@acme.example"


@pytest.fixture
def mail(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    with smtp_server() as inbox:
        monkeypatch.setenv("CCM_SMTP__HOST", inbox.host)
        monkeypatch.setenv("CCM_SMTP__PORT", str(inbox.port))
        monkeypatch.setenv("CCM_SMTP__FROM_ADDRESS", "accounts@acme.example")
        monkeypatch.setenv("CCM_SYNC__OVERLAP_SECONDS", "0")
        yield inbox


@pytest.fixture
def books(home: Path, registered: ScriptedLedger, mail: Inbox) -> Iterator[Store]:
    store = _books(home, registered, None)  # the shipped policies: first reminders by e-mail on the 24th
    yield store
    store.close()


def digests(inbox: Inbox) -> list[EmailMessage]:
    return [m for m in inbox.messages if m["To"] == OWNER]


def part(message: EmailMessage, kind: str) -> str:
    found = message.get_body(preferencelist=(kind,))
    assert found is not None
    return str(found.get_content())


def test_the_digest_arrives_once_per_night_and_names_customers_and_invoices(capsys, books, mail):
    code, out, err = ccm(capsys, "tenants", "set", "acme", "--contact-email", OWNER, "--digest")
    assert code == 0, err
    assert f"morning digest: on, to {OWNER}" in out
    assert ccm(capsys, "run", "--at", NIGHT)[0] == 0
    assert sorted(m["To"] for m in mail.messages) == ["ann@example.com", "bo@example.com"]

    assert ccm(capsys, "outbox", "send", "-t", "acme", "--at", "2026-11-24T10:05:00Z")[0] == 0
    [digest] = digests(mail)
    assert (
        str(digest["Subject"]).strip().startswith("Acme Ltd: last night (24 November 2026): 2 reminders sent")
    )
    text, html = part(digest, "plain"), part(digest, "html")
    for body in (text, html):
        assert "Ann&#39;s Café" in body or "Ann's Café" in body
        assert "INV-0001" in body and "INV-0002" in body and "Bo" in body
        assert "reminder (first reminder) by e-mail" in body
        assert "Nothing waits for a person now." in body
    assert "<li>reminder (first reminder) by e-mail to Ann&#39;s Café (INV-0001)</li>" in html  # escaped

    # Sent again, and the same night run again: still one digest for the night.
    assert ccm(capsys, "outbox", "send", "-t", "acme", "--at", "2026-11-24T10:10:00Z")[0] == 0
    assert ccm(capsys, "run", "--at", "2026-11-24T12:00:00Z")[0] == 0
    assert ccm(capsys, "outbox", "send", "-t", "acme", "--at", "2026-11-24T12:05:00Z")[0] == 0
    assert len(digests(mail)) == 1


def test_a_firm_that_did_not_ask_gets_no_digest(capsys, books, mail):
    assert ccm(capsys, "tenants", "set", "acme", "--contact-email", OWNER)[0] == 0
    assert ccm(capsys, "run", "--at", NIGHT)[0] == 0
    assert ccm(capsys, "outbox", "send", "-t", "acme", "--at", "2026-11-24T10:05:00Z")[0] == 0
    assert len(mail.messages) == 2 and digests(mail) == []

    code, out, err = ccm(capsys, "tenants", "set", "acme", "--digest")
    assert code == 0 and "morning digest: on" in out, err
    assert "digest:       each morning to the notices address" in ccm(capsys, "tenants", "show", "acme")[1]
    code, out, err = ccm(capsys, "tenants", "set", "acme", "--no-digest")
    assert code == 0 and "morning digest: off" in out, err
    assert ccm(capsys, "run", "--at", "2026-11-25T10:00:00Z")[0] == 0
    assert ccm(capsys, "outbox", "send", "-t", "acme", "--at", "2026-11-25T10:05:00Z")[0] == 0
    assert digests(mail) == []
