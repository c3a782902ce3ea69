"""What waits for a person, from the command line: every `ccm run` and `ccm outbox send` names the actions
that failed or whose outcome is unknown, with what to do; `ccm outbox retry` plans failed ones again, and
`ccm outbox resolve --sent` records a reminder exactly as a sent one, so the customer's dunning goes on.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from connector import health, outbox
from connector.config import Settings, load_settings
from connector.model import Connection, Tenant
from connector.outbox import Action, State
from connector.payloads import encode
from connector.run.night import run_night
from connector.store import Store
from connector.store.schema import reminder_history
from connector.store.tenants import save_connection, save_tenant
from tests.scripted import Crash, ScriptedLedger, contact, invoice
from tests.smtp import Inbox, smtp_server
from tests.test_cli import ccm
from tests.test_night import MORNING

FAILED_LINE = re.compile(
    r"acme: FAILED reminder \(first reminder\) by e-mail to Ann's Café on INV-0001: "
    r"the mail server refused ann@example.com: 550 5.1.1 mailbox unavailable; fix the cause, then "
    r"`ccm outbox retry (?P<key>\S+)`"
)


@pytest.fixture
def mailserver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    with smtp_server() as inbox:
        monkeypatch.setenv("CCM_SMTP__HOST", inbox.host)
        monkeypatch.setenv("CCM_SMTP__PORT", str(inbox.port))
        monkeypatch.setenv("CCM_SMTP__FROM_ADDRESS", "accounts@acme.example")
        monkeypatch.setenv("CCM_SYNC__OVERLAP_SECONDS", "0")
        yield inbox


@pytest.fixture
def books(home: Path, registered: ScriptedLedger, mailserver: Inbox) -> Iterator[Store]:
    """Acme Ltd on the scripted ledger; Ann's Café owes INV-0001 (due 10 November); the CLI's own store."""
    store = Store.open(f"sqlite:///{home / 'ccm.db'}")
    with store.begin() as conn:
        save_tenant(conn, Tenant("acme", "Acme Ltd", "scripted", "GBP", "Europe/London", "GB"))
        save_connection(conn, Connection("acme", "scripted", "org-1"))
    registered.put("contacts", contact("C1", "Ann's Café", EmailAddress="ann@example.com"))
    registered.put("invoices", invoice("I1", "C1", total="120.00", due="2026-11-10", Number="INV-0001"))
    yield store
    store.close()


def reminders(store: Store) -> list[Action]:
    with store.read() as conn:
        return [a for a in outbox.actions(conn, "acme") if a.kind == "reminder"]


def open_kinds(store: Store) -> list[str]:
    with store.read() as conn:
        return [i.kind for i in health.open_issues(conn, "acme")]


def test_a_failed_reminder_is_named_after_every_run_until_retried(capsys, books, mailserver):
    mailserver.refuse.add("ann@example.com")
    code, out, err = ccm(capsys, "run", "--at", "2026-11-24T10:00:00Z")
    assert code == 0, err
    found = FAILED_LINE.search(out)
    assert found is not None, out
    key = found["key"]
    assert health.ATTENTION in open_kinds(books)

    for args in (("run", "--at", "2026-11-24T11:00:00Z"), ("outbox", "send", "--at", "2026-11-24T11:30:00Z")):
        code, out, err = ccm(capsys, *args)
        assert code == 0, err
        assert FAILED_LINE.search(out) is not None, (args, out)  # still named, by every later run

    mailserver.refuse.clear()  # the customer's mailbox is fixed
    code, out, err = ccm(capsys, "outbox", "retry", key)
    assert (code, out) == (
        0,
        "planned 1 failed action(s) again; they go out at the next send (`ccm outbox send`)\n",
    )
    [again] = reminders(books)
    assert again.state is State.PLANNED and again.attempts == 1  # history kept: one attempt so far...
    assert again.reason is not None and again.reason.startswith(
        "retry of: the mail server refused ann@example.com: 550"
    )  # ...why

    code, out, err = ccm(capsys, "outbox", "send", "--at", "2026-11-24T12:00:00Z")
    assert code == 0, err
    assert out.startswith("sent 1,")
    assert "need a person" not in out
    [sent] = reminders(books)
    assert (sent.state, sent.attempts) == (State.SENT, 2)
    assert len(mailserver.messages) == 1
    assert health.ATTENTION not in open_kinds(books)


def test_retry_and_dismiss_refuse_actions_that_did_not_fail(capsys, books):
    assert ccm(capsys, "outbox", "retry")[2].startswith("ccm: error: give failed action keys or --failed")
    code, _, err = ccm(capsys, "outbox", "retry", "dun-x")
    assert (code, err) == (2, "ccm: error: planned 0 of 1 again; not failed in 'acme': dun-x\n")
    code, _, err = ccm(capsys, "outbox", "dismiss", "dun-x")
    assert (code, err) == (2, "ccm: error: dismissed 0 of 1; not failed in 'acme': dun-x\n")


def crash_mid_send(books: Store, home: Path, ledger: ScriptedLedger, inbox: Inbox) -> Settings:
    """A night killed between the claim of Ann's reminder and its sending; returns the settings it ran with."""
    settings = load_settings(None, {"CCM_HOME": str(home), "CCM_SMTP__HOST": inbox.host,
                                    "CCM_SMTP__PORT": str(inbox.port), "CCM_SYNC__OVERLAP_SECONDS": "0"})  # fmt: skip

    def die(action: Action) -> None:
        raise Crash("killed mid-send")

    with pytest.raises(Crash):
        run_night(books, settings, "acme", now=MORNING, ledger=ledger, before_effect=die)
    return settings


def test_an_unknown_outcome_is_named_after_every_run_until_resolved(
    capsys, home, books, registered, mailserver
):
    crash_mid_send(books, home, registered, mailserver)
    for args in (("run", "--at", "2026-11-24T10:00:00Z"), ("run", "--at", "2026-11-24T11:00:00Z"),
                 ("outbox", "send", "--at", "2026-11-24T11:30:00Z")):  # fmt: skip
        code, out, err = ccm(capsys, *args)
        assert code == 0, err
        [unknown] = reminders(books)
        assert ("acme: UNKNOWN reminder (first reminder) by e-mail to Ann's Café on INV-0001: the process "
                "stopped while sending") in out, (args, out)  # fmt: skip
        assert f"then `ccm outbox resolve {unknown.key} --sent` or `--not-sent`" in out
    assert health.ATTENTION in open_kinds(books)
    assert mailserver.messages == []
    assert ccm(capsys, "outbox", "resolve", unknown.key, "--not-sent")[0] == 0
    code, out, err = ccm(capsys, "outbox", "send", "--at", "2026-11-24T12:00:00Z")
    assert code == 0, err
    assert out.startswith("sent 1, call tasks 0, cancelled 0, deferred 0, failed 0, unknown 0")
    assert "need a person" not in out
    assert health.ATTENTION not in open_kinds(books)


def test_resolving_as_sent_records_the_reminder_so_the_dunning_goes_on(
    capsys, home, books, registered, mailserver
):
    settings = crash_mid_send(books, home, registered, mailserver)
    run_night(books, settings, "acme", now=MORNING + timedelta(minutes=30), ledger=registered)  # the restart
    [unknown] = reminders(books)
    assert unknown.state is State.UNKNOWN
    assert mailserver.messages == []

    code, out, err = ccm(capsys, "outbox", "resolve", unknown.key, "--sent")  # Ann confirms she got it

    assert code == 0, err
    with books.read() as conn:
        h = reminder_history.c
        history = [tuple(r) for r in conn.execute(select(h.invoice_id, h.level, h.sent_on, h.action_key))]
    assert history == [("I1", 2, date(2026, 11, 24), unknown.key)]  # as `complete` writes it
    assert (
        out
        == f"{unknown.key}: recorded as sent on 2026-11-24; 1 ledger note(s) planned (`ccm outbox send`)\n"
    )

    # Eight days later: the note is written as a sent reminder's is, and the second reminder goes out.
    code, out, err = ccm(capsys, "run", "--at", "2026-12-02T10:00:00Z")
    assert code == 0, err
    assert registered.notes["I1"] == [
        f"Reminder 2 (first reminder) sent to ann@example.com on 2026-11-24 by ccm [{unknown.key}]",
        registered.notes["I1"][1],
    ]
    assert registered.notes["I1"][1].startswith(
        "Reminder 3 (second reminder) sent to ann@example.com on 2026-12-02"
    )
    [message] = mailserver.messages
    assert message["X-CCM-Action"] != unknown.key
    assert sorted((encode(a.payload)["level"], a.state) for a in reminders(books)) == [
        (2, State.SENT),
        (3, State.SENT),
    ]
    assert health.ATTENTION not in open_kinds(books)


def test_resolving_as_not_sent_plans_it_again(capsys, books, registered, home, mailserver):
    settings = crash_mid_send(books, home, registered, mailserver)
    run_night(books, settings, "acme", now=MORNING + timedelta(minutes=5), ledger=registered)
    [unknown] = reminders(books)
    code, out, _ = ccm(capsys, "outbox", "resolve", unknown.key, "--not-sent")
    assert (code, out) == (0, f"{unknown.key}: planned again\n")
    run_night(books, settings, "acme", now=MORNING + timedelta(minutes=10), ledger=registered)
    assert len(mailserver.messages) == 1
    assert [a.state for a in reminders(books)] == [State.SENT]
