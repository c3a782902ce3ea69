"""A tenant's night end to end: the scripted ledger, a real store, a real SMTP server, the outbox.

Chase late payers on time, politely, never twice, never after they paid.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from connector import chasing, outbox
from connector.config import Settings, load_settings
from connector.mail import TemplateProblem
from connector.model import Connection, Tenant
from connector.outbox import Action, Mode, State
from connector.run.night import NightSummary, run_night
from connector.store import Store
from connector.store.schema import reminder_history
from connector.store.tenants import save_connection, save_tenant
from tests.scripted import Crash, ScriptedLedger, contact, invoice, payment
from tests.smtp import Inbox

NIGHT = datetime(2026, 11, 23, 22, 0, tzinfo=UTC)  # Monday night in London
MORNING = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)  # Tuesday, inside the send window


@pytest.fixture
def settings(tmp_path: Path, inbox: Inbox) -> Settings:
    return load_settings(None, {
        "CCM_HOME": str(tmp_path / "home"), "CCM_SMTP__HOST": inbox.host, "CCM_SMTP__PORT": str(inbox.port),
        "CCM_SMTP__FROM_ADDRESS": "accounts@acme.example", "CCM_SYNC__OVERLAP_SECONDS": "0",
    })  # fmt: skip


@pytest.fixture
def firm(store: Store, registered: ScriptedLedger) -> ScriptedLedger:
    with store.begin() as conn:
        save_tenant(conn, Tenant("acme", "Acme Ltd", "scripted", "GBP", "Europe/London", "GB"))
        save_connection(conn, Connection("acme", "scripted", "org-1"))
    ledger = registered
    ledger.put("contacts", contact("C1", "Ann's Café", EmailAddress="ann@example.com"))
    ledger.put("contacts", contact("C2", "Bob's Bikes"))
    ledger.put("invoices", invoice("I1", "C1", total="120.00", due="2026-11-10", Number="INV-0001"))
    ledger.put("invoices", invoice("I2", "C1", total="80.00", due="2026-11-18", Number="INV-0002"))
    ledger.put("invoices", invoice("I3", "C2", total="50.00", due="2026-11-10", Number="INV-0003"))
    return ledger


def night(store: Store, settings: Settings, ledger: ScriptedLedger, now: datetime, **kw: Any) -> NightSummary:
    return run_night(store, settings, "acme", now=now, ledger=ledger, **kw)


def states(store: Store) -> dict[str, State]:
    with store.read() as conn:
        return {a.key: a.state for a in outbox.actions(conn, "acme") if a.kind == "reminder"}


def test_one_combined_reminder_goes_out_with_notes_in_the_ledger(store, settings, firm, inbox):
    summary = night(store, settings, firm, MORNING)
    [message] = inbox.messages
    assert message["To"] == "ann@example.com"
    assert message["Subject"] == "Acme Ltd: payment reminder"
    body = message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "INV-0001  due 10 November 2026  £120.00 outstanding  (14 days overdue)" in text
    assert "INV-0002  due 18 November 2026  £80.00 outstanding  (6 days overdue)" in text
    assert "Pay online: https://pay.scripted.invalid/I1" in text
    assert set(firm.notes) == {"I1", "I2"}
    assert firm.notes["I1"][0].startswith(
        "Reminder 2 (first reminder) sent to ann@example.com on 2026-11-24 by ccm"
    )
    assert summary.skipped == {"no e-mail address for the customer": 1}  # Bob has no address


def test_running_the_same_night_twice_sends_nothing_more(store, settings, firm, inbox):
    night(store, settings, firm, MORNING)
    again = night(store, settings, firm, MORNING.replace(hour=14))
    assert len(inbox.messages) == 1
    assert sum(len(v) for v in firm.notes.values()) == 2
    assert again.outcome is not None and again.outcome.sent == []


def test_a_night_run_plans_for_the_morning_and_a_payment_in_between_cancels(store, settings, firm, inbox):
    planned = night(store, settings, firm, NIGHT)
    assert inbox.messages == []
    assert planned.outcome is not None
    assert planned.outcome.sent == []
    with store.read() as conn:
        [action] = outbox.actions(conn, "acme", [State.PLANNED])
    assert action.send_after == datetime(2026, 11, 24, 9, 0, tzinfo=UTC)  # 09:00 in London, next morning
    firm.put("payments", payment("P1", "I1", "120.00", "C1"))  # Ann pays INV-0001 overnight
    firm.put("invoices", invoice("I1", "C1", total="120.00", due="2026-11-10", Number="INV-0001",
                                 AmountDue="0.00", Status="PAID"))  # fmt: skip
    morning = night(store, settings, firm, MORNING)
    assert morning.outcome is not None
    [(_, reason)] = morning.outcome.cancelled
    assert reason == "INV-0001: paid, credited or voided since planning"
    [message] = inbox.messages
    body = message.get_body(("plain",))
    assert body is not None
    assert "INV-0001" not in body.get_content()
    assert "INV-0002" in body.get_content()


def test_a_death_between_claim_and_send_is_shown_never_sent_twice(store, settings, firm, inbox):
    def die(action: Action) -> None:
        if action.kind == "reminder":
            raise Crash("killed mid-send")

    with pytest.raises(Crash):
        night(store, settings, firm, MORNING, before_effect=die)
    after = night(store, settings, firm, MORNING.replace(hour=10))
    assert after.outcome is not None and len(after.outcome.unknown) == 1
    assert list(states(store).values()) == [State.UNKNOWN]
    assert inbox.messages == []
    third = night(store, settings, firm, MORNING.replace(hour=11))
    assert third.outcome is not None and third.outcome.sent == []  # never retried blindly
    with store.begin() as conn:
        [key] = states(store)
        outbox.resolve(conn, "acme", key, went_out=False, now=MORNING)
    night(store, settings, firm, MORNING.replace(hour=12))
    assert len(inbox.messages) == 1


def test_a_broken_tenant_template_stops_the_run_before_anything(store, settings, firm, inbox):
    templates = settings.tenant_dir("acme") / "templates"
    templates.mkdir(parents=True)
    (templates / "reminder.txt").write_text("Dear {{ customer_nam }}")
    with pytest.raises(TemplateProblem, match="'customer_nam' is undefined"):
        night(store, settings, firm, MORNING)
    assert states(store) == {}
    assert inbox.messages == []


def test_a_dry_run_stores_and_sends_nothing(store, settings, firm, inbox):
    summary = night(store, settings, firm, MORNING, mode=Mode.DRY_RUN)
    assert summary.plan is not None and len(summary.plan.actions) == 1
    assert states(store) == {}
    assert inbox.messages == []


def test_approve_mode_waits_for_the_bookkeeper(store, settings, firm, inbox):
    night(store, settings, firm, MORNING, mode=Mode.APPROVE)
    assert list(states(store).values()) == [State.AWAITING_APPROVAL]
    assert inbox.messages == []
    with store.begin() as conn:
        outbox.approve(conn, "acme", None, MORNING)
    night(store, settings, firm, MORNING.replace(hour=11), mode=Mode.APPROVE)
    assert len(inbox.messages) == 1


def _final_notice(store, tmp_path, inbox, firm, *, business: bool) -> str:
    """Run a night in which INV-0004 (due 1 October, level 3 sent on 20 October) is due its final notice,
    for a tenant that claims UK statutory interest; returns the plain-text e-mail."""
    settings = load_settings(None, {
        "CCM_HOME": str(tmp_path / "interest"), "CCM_SMTP__HOST": inbox.host, "CCM_SMTP__PORT": str(inbox.port),
        "CCM_SYNC__OVERLAP_SECONDS": "0", "CCM_CREDIT__STATUTORY_INTEREST": "uk",
    })  # fmt: skip
    firm.put("invoices", invoice("I4", "C1", total="120.00", due="2026-10-01", Number="INV-0004"))
    with store.begin() as conn:
        conn.execute(reminder_history.insert().values(
            tenant_id="acme", invoice_id="I4", level=3, customer_id="C1", sent_on=date(2026, 10, 20),
            action_key="earlier",
        ))  # fmt: skip
        chasing.update_settings(conn, "acme", "C1", MORNING, business=business)
    night(store, settings, firm, MORNING)
    [message] = inbox.messages
    body = message.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "Despite our earlier reminders" in text  # the final notice
    return " ".join(text.split())


def test_the_final_notice_carries_statutory_interest_when_the_tenant_claims_it(store, tmp_path, inbox, firm):
    text = _final_notice(store, tmp_path, inbox, firm, business=True)
    # £120.00 unpaid from 2 October to 24 November 2026 (54 days) at 12% (base rate 4.00% on 30 June + 8):
    # 120 x 0.12 x 54 / 365 = 2.13; fixed compensation under £1,000: £40.
    assert (
        "Under the Late Payment of Commercial Debts (Interest) Act 1998 we may claim interest of £2.13"
        in text
    )


def test_a_consumer_never_sees_statutory_interest(store, tmp_path, inbox, firm):
    assert "Late Payment" not in _final_notice(store, tmp_path, inbox, firm, business=False)
