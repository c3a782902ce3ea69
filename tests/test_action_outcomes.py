"""Per-action outcomes: one action's failure is that action's, transient ones wait and try again, and only the
firm's own problems stop its run. The scripted ledger, a real store, a real SMTP server that misbehaves.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from connector import health, mail, outbox
from connector.config import Settings, load_settings
from connector.ledger import AuthExpired, Fatal, RateLimited, Retriable, WriteResult
from connector.outbox import Action, Mode, NewAction, State
from connector.payloads import Kind, NotePayload, encode
from connector.run.night import run_night
from connector.store import Store
from tests.scripted import Crash, ScriptedLedger, contact, invoice, payment
from tests.smtpfaults import FaultyInbox, closed_port, faulty_smtp_server
from tests.test_night import MORNING, firm, night, settings

__all__ = ["firm", "settings"]  # test_night's fixtures: Acme Ltd on the scripted ledger, Ann with an address


@pytest.fixture
def inbox() -> Iterator[FaultyInbox]:
    with faulty_smtp_server() as box:
        yield box


def actions(store: Store, kind: str) -> list[Action]:
    with store.read() as conn:
        return [a for a in outbox.actions(conn, "acme") if a.kind == kind]


def smtp_settings(tmp_path: Path, port: int, **extra: str) -> Settings:
    return load_settings(None, {
        "CCM_HOME": str(tmp_path / "home"), "CCM_SMTP__HOST": "127.0.0.1", "CCM_SMTP__PORT": str(port),
        "CCM_SMTP__FROM_ADDRESS": "accounts@acme.example", "CCM_SYNC__OVERLAP_SECONDS": "0",
        "CCM_SMTP__TIMEOUT_SECONDS": "5", **extra,
    })  # fmt: skip


# ---- ledger writes


HOUR = timedelta(hours=1)


def failing_notes(ledger: ScriptedLedger, error: Exception, refs: set[str] | None = None) -> list[str]:
    """Make the ledger refuse notes (on `refs`, or all); returns the refs it was asked to note, in order."""
    asked: list[str] = []
    original = ledger.add_note

    def add_note(ref: str, text: str, key: str) -> WriteResult:
        asked.append(ref)
        if refs is None or ref in refs:
            raise error
        return original(ref, text, key)

    ledger.add_note = add_note  # type: ignore[method-assign]
    return asked


def test_a_note_the_ledger_refuses_for_good_fails_alone_and_the_night_goes_on(store, settings, firm, inbox):
    # Planned last night on an invoice deleted since: Xero answers 404 (NotFound, a Fatal) for it for ever.
    with store.begin() as conn:
        outbox.plan(conn, "acme", [NewAction(
            "note:old:GONE", Kind.NOTE, "ledger", "C2", NotePayload("GONE", "Reminder 1 sent"),
            MORNING - timedelta(hours=12), replay_safe=True,
        )], Mode.AUTO, MORNING - timedelta(hours=12))  # fmt: skip
    asked = failing_notes(firm, Fatal("note on GONE: not found at Xero (HTTP 404)"), {"GONE"})

    summary = night(store, settings, firm, MORNING)

    assert summary.stopped is None
    assert summary.outcome is not None and summary.outcome.failed == [
        ("note:old:GONE", "note on GONE: not found at Xero (HTTP 404)")
    ]
    assert len(inbox.messages) == 1  # Ann's reminder went out...
    assert set(firm.notes) == {"I1", "I2"}  # ...and its notes, planned after the poison one, were written
    [poison] = [a for a in actions(store, "note") if a.key == "note:old:GONE"]
    assert (poison.state, poison.reason) == (State.FAILED, "note on GONE: not found at Xero (HTTP 404)")
    night(store, settings, firm, MORNING + timedelta(hours=1))
    night(store, settings, firm, MORNING + timedelta(hours=2))
    assert asked.count("GONE") == 1  # never first in line again


def test_a_ledger_write_that_fails_for_now_waits_longer_each_time_then_fails(store, settings, firm, inbox):
    failing_notes(firm, Retriable("Xero answered 503"))
    night(store, settings, firm, MORNING)
    waits = []
    for _ in range(4):  # the attempts after the first, up to the cap of 5
        [note, _other] = sorted(actions(store, "note"), key=lambda a: a.key)
        assert note.state is State.PLANNED
        waits.append(note.send_after - note.updated_at)
        summary = night(store, settings, firm, note.send_after, sync=False)
        assert summary.stopped is None
    assert waits == [timedelta(minutes=m) for m in (15, 30, 60, 120)]
    notes = actions(store, "note")
    assert [(a.state, a.attempts) for a in notes] == [(State.FAILED, 5)] * 2
    assert all(a.reason == "Xero answered 503 (gave up after 5 attempts)" for a in notes)
    assert summary.outcome is not None and len(summary.outcome.failed) == 2
    assert len(inbox.messages) == 1


@pytest.mark.parametrize(
    "error",
    [AuthExpired("the refresh token was refused: reconnect"), RateLimited(3600, "day", "Xero's day limit")],
    ids=["reconnect-needed", "day-limit"],
)
def test_a_firm_level_ledger_problem_stops_the_run_and_costs_no_attempt(store, settings, firm, inbox, error):
    asked = failing_notes(firm, error)
    summary = night(store, settings, firm, MORNING)
    assert summary.stopped == str(error)
    assert len(asked) == 1  # the second note was not tried
    notes = actions(
        store, "note"
    )  # both wait an hour (a server does not run into it at every tick), uncounted
    assert [(a.state, a.attempts, a.send_after) for a in notes] == [(State.PLANNED, 0, MORNING + HOUR)] * 2
    night(store, settings, firm, MORNING + timedelta(minutes=30))
    assert len(asked) == 1


def _hold_bob(settings: Settings) -> None:
    """A firm whose rules hold anyone with an invoice overdue (Bob's Bikes: INV-0003, due 10 November)."""
    rules = Path(settings.tenant_dir("acme")) / "credit.yaml"
    rules.parent.mkdir(parents=True, exist_ok=True)
    rules.write_text("version: 1\nrules:\n  - {when: overdue, days: 1}\n")


def _flaky_holds(firm: ScriptedLedger, fail: list[bool]) -> list[str]:
    """set_hold answers 503 while `fail[0]`; returns the keys it was asked to write, in order."""
    asked: list[str] = []
    original = firm.set_hold

    def set_hold(customer_ref: str, on: bool, reason: str, key: str) -> WriteResult:
        asked.append(key)
        if fail[0]:
            raise Retriable("Xero answered 503")
        return original(customer_ref, on, reason, key)

    firm.set_hold = set_hold  # type: ignore[method-assign]
    return asked


def test_a_hold_an_earlier_night_left_waiting_is_written_once_by_tonights_decision(store, settings, firm):
    # Last night's hold for Bob failed for now (a 503) and waits; tonight decides afresh under tonight's key.
    _hold_bob(settings)
    fail = [True]
    asked = _flaky_holds(firm, fail)
    night(store, settings, firm, MORNING - timedelta(days=1))
    [waiting] = [a for a in actions(store, "hold") if a.customer_id == "C2"]
    assert waiting.state is State.PLANNED and asked.count(waiting.key) == 1
    tried = len(asked)

    fail[0] = False
    summary = night(store, settings, firm, MORNING)
    bob = {a.key: a for a in actions(store, "hold") if a.customer_id == "C2"}
    assert firm.held >= {"C2"} and len(bob) == 2
    assert bob[waiting.key].state is State.CANCELLED  # last night's: never written
    assert bob[waiting.key].reason == "tonight's credit check no longer asks for this hold"
    [tonight] = [a for k, a in bob.items() if k != waiting.key]
    assert tonight.state is State.SENT and asked[tried:].count(tonight.key) == 1
    assert waiting.key not in asked[tried:]
    assert summary.outcome is not None and "C2" in summary.outcome.holds


def test_a_hold_left_waiting_is_never_written_once_the_customer_has_paid(store, settings, firm):
    _hold_bob(settings)
    fail = [True]
    asked = _flaky_holds(firm, fail)
    night(store, settings, firm, MORNING - timedelta(days=1))
    fail[0] = False
    firm.put("payments", payment("P3", "I3", "50.00", "C2"))  # Bob paid before tonight
    night(store, settings, firm, MORNING)
    bob = [a for a in actions(store, "hold") if a.customer_id == "C2"]
    assert [(a.state, a.reason) for a in bob] == [
        (State.CANCELLED, "tonight's credit check no longer asks for this hold")
    ]
    assert "C2" not in firm.held and len([k for k in asked if k == bob[0].key]) == 1  # only last night's try


# ---- claim last


def _crash_pay_links(monkeypatch: pytest.MonkeyPatch, ledger: ScriptedLedger) -> None:
    def crash(invoice_ref: str) -> str:
        raise Crash("killed while fetching a pay link")

    monkeypatch.setattr(ledger, "online_invoice_url", crash)


def _crash_rendering(monkeypatch: pytest.MonkeyPatch, ledger: ScriptedLedger) -> None:
    original = mail.render

    def render(env: Any, template: str, view: Any) -> Any:
        if view is not mail.SAMPLE:  # the check of the templates before the run renders the sample
            raise Crash("killed while rendering")
        return original(env, template, view)

    monkeypatch.setattr(mail, "render", render)


def _crash_connecting(monkeypatch: pytest.MonkeyPatch, ledger: ScriptedLedger) -> None:
    def connect(smtp: Any) -> Any:
        raise Crash("killed while opening the SMTP session")

    monkeypatch.setattr(mail, "_connect", connect)


@pytest.mark.parametrize(
    "crash",
    [_crash_pay_links, _crash_rendering, _crash_connecting],
    ids=["pay-links", "rendering", "session"],
)
def test_a_crash_before_the_effect_leaves_the_reminder_planned_never_unknown(
    store, settings, firm, inbox, monkeypatch, crash
):
    with monkeypatch.context() as patched:
        crash(patched, firm)
        with pytest.raises(Crash):
            night(store, settings, firm, MORNING)
    [reminder] = actions(store, "reminder")
    assert (reminder.state, reminder.attempts) == (State.PLANNED, 0)
    again = night(store, settings, firm, MORNING + timedelta(minutes=5))
    assert again.outcome is not None
    assert (len(again.outcome.sent), again.outcome.unknown) == (1, [])
    assert len(inbox.messages) == 1


# ---- SMTP


def test_greylisting_defers_the_reminder_and_it_goes_out_later(store, settings, firm, inbox):
    inbox.greylist["ann@example.com"] = 1
    first = night(store, settings, firm, MORNING)
    assert first.outcome is not None and (first.outcome.sent, first.outcome.failed) == ([], [])
    [(key, reason)] = first.outcome.deferred
    assert "451" in reason
    [reminder] = actions(store, "reminder")
    assert (reminder.state, reminder.send_after) == (State.PLANNED, MORNING + timedelta(minutes=15))
    assert reminder.reason is not None and "attempt 1 of 5" in reminder.reason
    later = night(store, settings, firm, MORNING + timedelta(minutes=15))
    assert later.outcome is not None and later.outcome.sent == [key]
    assert len(inbox.messages) == 1


def test_a_recipient_refused_for_good_fails_that_reminder_alone(store, settings, firm, inbox):
    firm.put("contacts", contact("C3", "Cy's Cycles", EmailAddress="cy@example.com"))
    firm.put("invoices", invoice("I5", "C3", total="70.00", due="2026-11-10", Number="INV-0005"))
    inbox.refuse.add("ann@example.com")
    summary = night(store, settings, firm, MORNING)
    assert summary.stopped is None and summary.outcome is not None
    [(_, reason)] = summary.outcome.failed
    assert "550" in reason
    assert [m["To"] for m in inbox.messages] == ["cy@example.com"]
    states = {encode(a.payload)["customer_name"]: a.state for a in actions(store, "reminder")}
    assert states == {"Ann's Café": State.FAILED, "Cy's Cycles": State.SENT}


def test_an_unreachable_mail_server_defers_every_reminder_with_backoff_then_fails_them(store, tmp_path, firm):
    settings = smtp_settings(tmp_path, closed_port())
    firm.put("contacts", contact("C3", "Cy's Cycles", EmailAddress="cy@example.com"))
    firm.put("invoices", invoice("I5", "C3", total="70.00", due="2026-11-10", Number="INV-0005"))
    now, waits = MORNING, []
    for _ in range(5):  # attempts, up to the cap
        summary = run_night(store, settings, "acme", now=now, ledger=firm)
        assert summary.stopped is None and summary.outcome is not None
        reminders = actions(store, "reminder")
        if reminders[0].state is State.FAILED:
            break
        assert len(summary.outcome.deferred) == 2
        assert {a.send_after for a in reminders} == {reminders[0].send_after}
        waits.append(reminders[0].send_after - now)
        now = reminders[0].send_after
    assert waits == [timedelta(minutes=m) for m in (15, 30, 60, 120)]
    assert summary.outcome is not None and len(summary.outcome.failed) == 2
    for reminder in actions(store, "reminder"):
        assert reminder.state is State.FAILED
        assert reminder.reason is not None and "unreachable" in reminder.reason
        assert reminder.reason.endswith("(gave up after 5 attempts)")


def test_a_refused_smtp_login_stops_sending_fails_nothing_and_is_a_health_issue(store, tmp_path, firm):
    with faulty_smtp_server(password="right") as server:
        wrong = smtp_settings(tmp_path, server.port, CCM_SMTP__USERNAME="acme", CCM_SMTP__PASSWORD="wrong",
                              CCM_SMTP__ALLOW_PLAINTEXT_AUTH="true")  # fmt: skip
        firm.put("contacts", contact("C3", "Cy's Cycles", EmailAddress="cy@example.com"))
        firm.put("invoices", invoice("I5", "C3", total="70.00", due="2026-11-10", Number="INV-0005"))

        refused = run_night(store, wrong, "acme", now=MORNING, ledger=firm)

        assert refused.stopped is not None and "SMTP login refused (535)" in refused.stopped
        assert refused.outcome is not None and refused.outcome.failed == []
        assert server.logins == 1  # once for the night, not once per reminder (PLAIN only: one try a login)
        tomorrow = MORNING.replace(
            day=25, hour=9, minute=0
        )  # the send window's next opening, 09:00 in London
        assert [(a.state, a.attempts, a.send_after) for a in actions(store, "reminder")] == [
            (State.PLANNED, 0, tomorrow)
        ] * 2  # no more tries tonight: a server would otherwise log in (and fail) every 30 seconds
        assert health.SMTP_LOGIN in [i.kind for i in refused.health]
        assert server.messages == []
        run_night(store, wrong, "acme", now=MORNING + HOUR, ledger=firm)
        assert server.logins == 1

        right = wrong.model_copy(update={"smtp": wrong.smtp.model_copy(update={"password": "right"})})
        fixed = run_night(store, right, "acme", now=tomorrow, ledger=firm)
        assert fixed.stopped is None and fixed.outcome is not None and len(fixed.outcome.sent) == 2
        assert health.SMTP_LOGIN not in [i.kind for i in fixed.health]
        assert len(server.messages) == 2


def test_unsafe_smtp_settings_still_stop_the_firm_before_anything(store, tmp_path, firm, inbox):
    unsafe = smtp_settings(tmp_path, inbox.port, CCM_SMTP__USERNAME="acme", CCM_SMTP__PASSWORD="pw")
    with pytest.raises(Fatal, match="unencrypted"):
        run_night(store, unsafe, "acme", now=MORNING, ledger=firm)
    assert actions(store, "reminder") == []
