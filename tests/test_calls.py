"""Call tasks from the terminal: `ccm calls` says whom to call about what and what to say; `ccm call done`
records the outcome, which feeds promises and disputes; `ccm outbox snooze` puts an approval aside."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import jsonschema  # type: ignore[import-untyped]
import pytest
from sqlalchemy import select

from connector import chasing, outbox, snooze
from connector.config import load_settings
from connector.model import Connection, Tenant
from connector.outbox import State
from connector.store import Store
from connector.store.schema import call_outcomes
from connector.store.tenants import save_connection, save_tenant
from tests.scripted import ScriptedLedger, contact, invoice
from tests.smtp import Inbox, smtp_server
from tests.test_cli import ccm

NIGHT = "2026-11-24T10:00:00Z"
SCHEMA = Path(__file__).parents[1] / "schemas" / "calls.json"
LATER = "2026-11-24T11:00:00Z"
CALLS_FIRST = """\
version: 1
default: calls
policies:
  - name: calls
    days: calendar
    backlog_days: 90
    levels:
      - {name: phone call, offset: 1, channel: call_task, template: call}
"""


@pytest.fixture
def mail(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    with smtp_server() as inbox:
        monkeypatch.setenv("CCM_SMTP__HOST", inbox.host)
        monkeypatch.setenv("CCM_SMTP__PORT", str(inbox.port))
        monkeypatch.setenv("CCM_SMTP__FROM_ADDRESS", "accounts@acme.example")
        monkeypatch.setenv("CCM_SYNC__OVERLAP_SECONDS", "0")
        yield inbox


def _books(home: Path, registered: ScriptedLedger, policy: str | None) -> Store:
    """Acme Ltd: Ann's Café owes INV-0001 (120.00) and Bo's Bakery INV-0002 (80.00), due 10 November."""
    store = Store.open(f"sqlite:///{home / 'ccm.db'}")
    with store.begin() as conn:
        save_tenant(conn, Tenant("acme", "Acme Ltd", "scripted", "GBP", "Europe/London", "GB"))
        save_connection(conn, Connection("acme", "scripted", "org-1"))
    if policy is not None:
        folder = load_settings(None).tenant_dir("acme")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "policy.yaml").write_text(policy)
    registered.put(
        "contacts", contact("C1", "Ann's Café", EmailAddress="ann@example.com", Phone="+44 20 7946 0958")
    )
    registered.put("contacts", contact("C2", "Bo's Bakery", EmailAddress="bo@example.com"))
    registered.put("invoices", invoice("I1", "C1", total="120.00", due="2026-11-10", Number="INV-0001"))
    registered.put("invoices", invoice("I2", "C2", total="80.00", due="2026-11-10", Number="INV-0002"))
    return store


@pytest.fixture
def books(home: Path, registered: ScriptedLedger, mail: Inbox) -> Iterator[Store]:
    store = _books(home, registered, CALLS_FIRST)
    yield store
    store.close()


def call_keys(store: Store) -> dict[str, str]:
    """Customer id: its call task's key."""
    with store.read() as conn:
        return {a.customer_id: a.key for a in outbox.actions(conn, "acme") if a.kind == "call_task"}


def test_the_call_list_names_customers_invoices_amounts_and_what_to_say(capsys, books, mail):
    code, _, err = ccm(capsys, "run", "--at", NIGHT)
    assert code == 0, err
    assert mail.messages == []  # a call task goes to the bookkeeper, never to the customer
    code, out, err = ccm(capsys, "nights", "-t", "acme", "2026-11-24")
    assert code == 0, err
    assert "call Ann's Café (INV-0001) on +44 20 7946 0958" in out  # the night's record names the number

    code, out, err = ccm(capsys, "calls")
    assert code == 0, err
    assert "Ann's Café" in out and "Bo's Bakery" in out
    assert "INV-0001" in out and "£120.00" in out and "INV-0002" in out and "£80.00" in out
    assert "Say you are calling from Acme Ltd about 1 overdue invoice totalling £120.00" in out
    assert "Call Ann's Café on +44 20 7946 0958" in out  # the number the ledger keeps
    assert "Call Bo's Bakery (phone call; due from 2026-11-24 10:00 UTC; no phone number on record)" in out

    code, out, err = ccm(capsys, "calls", "-t", "acme", "--format", "json")
    assert code == 0, err
    body = json.loads(out)
    jsonschema.validate(body, json.loads(SCHEMA.read_text(encoding="utf-8")))
    assert body["kind"] == "calls" and body["tenant"] == "acme"
    rows = {r["customer"]: r for r in body["rows"]}
    assert rows["Ann's Café"]["invoices"] == "INV-0001"
    assert rows["Ann's Café"]["phone"] == "+44 20 7946 0958"
    assert rows["Ann's Café"]["total"] == "£120.00"
    assert "14 days overdue" in rows["Ann's Café"]["what to say"]
    assert rows["Bo's Bakery"]["due"].startswith("2026-11-24")


def test_a_promise_from_a_call_covers_its_invoices_until_its_date(capsys, books):
    assert ccm(capsys, "run", "--at", NIGHT)[0] == 0
    key = call_keys(books)["C1"]
    code, out, err = ccm(capsys, "call", "done", key[:20], "--outcome", "promise", "--until", "2026-12-05",
                         "--amount", "100", "--note", "pays on the 5th", "--at", LATER)  # fmt: skip
    assert code == 0, err
    assert "Ann's Café: promised to pay £100.00 by 2026-12-05" in out
    with books.read() as conn:
        state = chasing.states(conn, "acme")["C1"]
        [event] = [e for e in chasing.events(conn, "acme", "C1") if e.kind == chasing.PROMISE]
    assert state.promised == {"I1": date(2026, 12, 5)}  # the call's invoice, not every invoice of Ann's
    assert event.invoice_number == "INV-0001"
    assert event.amount is not None and event.amount.amount == Decimal("100")
    assert "pays on the 5th" in event.note

    code, out, err = ccm(capsys, "calls")
    assert code == 0, err
    assert "Bo's Bakery" in out and "Ann's Café" not in out  # done: off the list
    code, out, err = ccm(capsys, "calls", "--done")
    assert "promised to pay £100.00 by 2026-12-05" in out


def test_a_dispute_from_a_call_stops_chasing_the_invoices_of_the_call(capsys, books):
    assert ccm(capsys, "run", "--at", NIGHT)[0] == 0
    key = call_keys(books)["C2"]
    code, out, err = ccm(capsys, "call", "done", key, "--outcome", "dispute", "--note", "wrong price",
                         "--at", LATER)  # fmt: skip
    assert code == 0, err
    assert "Bo's Bakery: disputed: wrong price; INV-0002 not chased while disputed" in out
    with books.read() as conn:
        assert chasing.states(conn, "acme")["C2"].disputed == frozenset({"I2"})


def test_bad_outcomes_are_one_line_errors_and_store_nothing(capsys, books):
    assert ccm(capsys, "run", "--at", NIGHT)[0] == 0
    key = call_keys(books)["C1"]
    for args, said in (
        (("--outcome", "promise", "--until", "2026-11-01"), "--until: 2026-11-01 is in the past"),
        (("--outcome", "promise", "--until", "2026-12-01", "--amount", "1e9"), "--amount: not an amount"),
        (("--outcome", "promise"), "--until: a promise needs the date"),
        (("--outcome", "paid", "--until", "2026-12-01"), "--until and --amount go with --outcome promise"),
        (("--outcome", "maybe"), "--outcome: choose one of promise, dispute, no-answer, paid"),
    ):
        code, _, err = ccm(capsys, "call", "done", key, *args, "--at", LATER)
        assert code == 2 and said in err, (args, err)
    code, _, err = ccm(capsys, "call", "done", "no-such-task", "--outcome", "paid", "--at", LATER)
    assert code == 2 and "no call task 'no-such-task'" in err
    with books.read() as conn:
        assert conn.execute(select(call_outcomes)).all() == []
        assert chasing.states(conn, "acme").get("C1") is None
        assert chasing.events(conn, "acme", "C1") == []


def test_no_answer_is_kept_in_the_customers_history(capsys, books):
    assert ccm(capsys, "run", "--at", NIGHT)[0] == 0
    key = call_keys(books)["C1"]
    code, out, err = ccm(
        capsys, "call", "done", key, "--outcome", "no-answer", "--note", "voicemail", "--at", LATER
    )
    assert code == 0, err
    assert "Ann's Café: no answer: voicemail; kept in the customer's history" in out
    with books.read() as conn:
        notes = [e.note for e in chasing.events(conn, "acme", "C1")]
    assert notes == ["call: no answer: voicemail"]


def test_a_snoozed_approval_leaves_the_list_and_is_not_sent_until_it_ends(capsys, home, registered, mail):
    store = _books(home, registered, None)  # the shipped policies: first reminders by e-mail on the 24th
    try:
        assert ccm(capsys, "run", "--approve", "--at", NIGHT)[0] == 0
        with store.read() as conn:
            waiting = [
                a for a in outbox.actions(conn, "acme", [State.AWAITING_APPROVAL]) if a.kind == "reminder"
            ]
        ann = next(a.key for a in waiting if a.customer_id == "C1")
        code, out, err = ccm(
            capsys, "outbox", "snooze", ann[:16], "--until", "2026-11-26", "-t", "acme", "--at", LATER
        )
        assert code == 0, err
        assert "1 action(s) snoozed until 2026-11-26 00:00 GMT" in out
        code, _, err = ccm(capsys, "outbox", "snooze", ann, "--until", "2026-11-20", "--at", LATER)
        assert code == 2 and "--until: the snooze must end in the future" in err
        with store.read() as conn:
            assert snooze.hidden(conn, "acme", outbox.get(conn, "acme", ann).planned_at) == {ann}  # type: ignore[union-attr]

        assert ccm(capsys, "outbox", "approve", "--all", "-t", "acme")[0] == 0  # approved in bulk meanwhile
        assert ccm(capsys, "outbox", "send", "-t", "acme", "--at", "2026-11-25T10:00:00Z")[0] == 0
        assert [m["To"] for m in mail.messages] == ["bo@example.com"]  # Ann's waits for its snooze
        assert ccm(capsys, "outbox", "send", "-t", "acme", "--at", "2026-11-26T10:00:00Z")[0] == 0
        assert sorted(m["To"] for m in mail.messages) == ["ann@example.com", "bo@example.com"]
    finally:
        store.close()
