"""Safe first nights and the backlog cutoff: a newly connected firm is shown, not blasted.

A firm connected to its ledger plans its first nights and sends nothing, writes nothing, until a person
approves; what the person approved is exactly what goes out. Debts that were already old when the firm was
connected wait for a person to include them.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from connector import backlog, chasing, firmmode, outbox
from connector.config import Settings, load_settings
from connector.model import Connection, Tenant
from connector.outbox import Mode, State
from connector.rules.policy import PolicyFileError, parse_policies
from connector.run.night import KEPT_BACK, NightSummary, run_night
from connector.store import Store
from connector.store.schema import tenants
from connector.store.tenants import Standing, get_standing, save_connection, save_tenant
from tests.scripted import ScriptedLedger, contact, invoice
from tests.smtp import Inbox
from tests.test_cli import ccm

MORNING = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)  # Tuesday in London, inside the send window
CONNECTED = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)  # the firm was connected the day before
DAY = timedelta(days=1)


def env(home: Path, inbox: Inbox, **more: str) -> dict[str, str]:
    return {"CCM_HOME": str(home), "CCM_SMTP__HOST": inbox.host, "CCM_SMTP__PORT": str(inbox.port),
            "CCM_SMTP__FROM_ADDRESS": "accounts@acme.example", "CCM_SYNC__OVERLAP_SECONDS": "0",
            "CCM_SERVE__SAFE_NIGHTS": "3", **more}  # fmt: skip


@pytest.fixture
def settings(tmp_path: Path, inbox: Inbox) -> Settings:
    return load_settings(None, env(tmp_path / "home", inbox))


def connect(store: Store, at: datetime = CONNECTED) -> None:
    """Acme connected to its organisation (as the OAuth flows store it), dated `at`."""
    with store.begin() as conn:
        save_tenant(conn, Tenant("acme", "Acme Ltd", "scripted", "GBP", "Europe/London", "GB"))
        save_connection(conn, Connection("acme", "scripted", "org-1"))
        conn.execute(tenants.update().values(connected_at=at))


@pytest.fixture
def firm(store: Store, registered: ScriptedLedger) -> ScriptedLedger:
    """Ann owes two invoices (due 10 and 18 November); Bob one, 300 days overdue when the firm connected."""
    connect(store)
    ledger = registered
    ledger.put("contacts", contact("C1", "Ann's Café", EmailAddress="ann@example.com"))
    ledger.put("contacts", contact("C2", "Bob's Bikes", EmailAddress="bob@example.com"))
    ledger.put("invoices", invoice("I1", "C1", total="120.00", due="2026-11-10", Number="INV-0001"))
    ledger.put("invoices", invoice("I2", "C1", total="80.00", due="2026-11-18", Number="INV-0002"))
    ledger.put("invoices", invoice("I3", "C2", total="50.00", due="2026-01-27", Number="INV-0003"))
    return ledger


def night(store: Store, settings: Settings, ledger: ScriptedLedger, now: datetime, **kw: Any) -> NightSummary:
    return run_night(store, settings, "acme", now=now, ledger=ledger, mode=None, **kw)


def reminders(store: Store) -> dict[str, State]:
    with store.read() as conn:
        return {a.key: a.state for a in outbox.actions(conn, "acme") if a.kind == "reminder"}


# ---- which mode a night runs in


def standing(nights: int = 0, last: date | None = None, chosen: str | None = None) -> Standing:
    return Standing(chosen, CONNECTED, nights, last)


@pytest.mark.parametrize(
    ("state", "today", "mode", "night_number"),
    [
        (standing(0), date(2026, 11, 24), Mode.APPROVE, 1),
        (standing(1, date(2026, 11, 24)), date(2026, 11, 24), Mode.APPROVE, 1),  # run twice: still night 1
        (standing(2, date(2026, 11, 25)), date(2026, 11, 26), Mode.APPROVE, 3),
        (standing(3, date(2026, 11, 26)), date(2026, 11, 27), Mode.AUTO, None),  # then serve.mode
        (standing(3, date(2026, 11, 26), "approve"), date(2026, 11, 27), Mode.APPROVE, None),  # its own
        (standing(0, None, "auto"), date(2026, 11, 24), Mode.APPROVE, 1),  # its own mode after safe nights
        (standing(0, None, "dry-run"), date(2026, 11, 24), Mode.DRY_RUN, None),  # dry-run stays dry-run
        (Standing(None, None, 0, None), date(2026, 11, 24), Mode.AUTO, None),  # connected before: none
    ],
)
def test_a_new_firm_runs_its_first_three_nights_in_approve_mode(state, today, mode, night_number):
    found = firmmode.decide(state, 3, Mode.AUTO, today)
    assert (found.mode, found.safe_night) == (mode, night_number)
    if night_number is not None:
        assert found.why == f"safe night {night_number} of 3 since connecting on 2026-11-23"


def test_connecting_starts_the_safe_nights_and_reconnecting_the_same_organisation_does_not(store):
    connect(store)
    with store.begin() as conn:
        conn.execute(tenants.update().values(nights_run=3, last_night=date(2026, 11, 26)))
        save_connection(conn, Connection("acme", "scripted", "org-1"))  # consent renewed
        assert get_standing(conn, "acme").nights_run == 3
        save_connection(conn, Connection("acme", "scripted", "org-2"))  # another organisation
        fresh = get_standing(conn, "acme")
    assert (fresh.nights_run, fresh.last_night) == (0, None)
    assert fresh.connected_at is not None and fresh.connected_at > CONNECTED


# ---- a safe night, approval, and exactly that sent


def test_a_safe_night_plans_and_sends_nothing_and_approving_sends_exactly_that(store, settings, firm, inbox):
    first = night(store, settings, firm, MORNING)
    assert (first.mode, first.safe_night) == (Mode.APPROVE, 1)
    assert list(reminders(store).values()) == [State.AWAITING_APPROVAL]
    assert inbox.messages == [] and firm.notes == {} and firm.held == set()
    assert any(note.startswith("safe night 1 of 3: planned 1 reminder(s)") and "ccm outbox approve" in note
               for note in first.notes)  # fmt: skip
    [key] = reminders(store)
    with store.begin() as conn:
        assert outbox.approve(conn, "acme", [key], MORNING) == 1
    again = night(store, settings, firm, MORNING + timedelta(hours=1))  # the next run, the same day
    assert again.safe_night == 1  # a night counts once per date
    assert [str(m["X-CCM-Action"]) for m in inbox.messages] == [key]
    assert reminders(store) == {key: State.SENT}


def test_an_approved_reminder_for_a_customer_who_paid_since_is_cancelled_not_sent(
    store, settings, firm, inbox
):
    night(store, settings, firm, MORNING)
    with store.begin() as conn:
        outbox.approve(conn, "acme", None, MORNING)
    firm.remove("invoices", "I1")
    firm.remove("invoices", "I2")
    night(store, settings, firm, MORNING + timedelta(hours=1))
    assert inbox.messages == []
    assert list(reminders(store).values()) == [State.CANCELLED]


def test_a_later_night_replaces_what_waits_and_after_the_safe_nights_sends_by_itself(
    store, settings, firm, inbox
):
    night(store, settings, firm, MORNING)
    [first] = reminders(store)
    firm.put("invoices", invoice("I4", "C1", total="30.00", due="2026-11-20", Number="INV-0004"))
    second = night(store, settings, firm, MORNING + DAY)  # the reminder now lists INV-0004 too
    assert second.safe_night == 2
    states = reminders(store)
    assert states[first] is State.CANCELLED and list(states.values()).count(State.AWAITING_APPROVAL) == 1
    night(store, settings, firm, MORNING + 2 * DAY)
    assert inbox.messages == []
    fourth = night(store, settings, firm, MORNING + 3 * DAY)
    assert (fourth.mode, fourth.safe_night) == (Mode.AUTO, None)
    assert len(inbox.messages) == 1  # what the third night left waiting went out, approved by the auto night
    assert list(reminders(store).values()).count(State.AWAITING_APPROVAL) == 0


def test_a_dry_run_is_not_a_safe_night(store, settings, firm, inbox):
    run_night(store, settings, "acme", now=MORNING, ledger=firm, mode=Mode.DRY_RUN)
    with store.read() as conn:
        assert get_standing(conn, "acme").nights_run == 0


# ---- the backlog cutoff


def test_debts_already_old_at_connection_wait_until_a_person_includes_them(store, settings, firm, inbox):
    summary = night(store, settings, firm, MORNING)
    assert summary.plan is not None
    assert [(k.number, k.days_at_connection) for k in summary.plan.kept_back] == [("INV-0003", 300)]
    assert summary.skipped[KEPT_BACK] == 1
    assert any(n.startswith("1 invoice(s) of 1 customer(s) kept back") for n in summary.notes)
    assert {a.customer_id for a in summary.plan.actions} == {"C1"}
    with store.begin() as conn:  # what `ccm include "Bob's Bikes"` records (the CLI: below)
        chasing.open_event(conn, "acme", "C2", backlog.INCLUDE, MORNING, note="agreed with Bob")
    later = night(store, settings, firm, MORNING + timedelta(hours=1))
    assert later.plan is not None and later.plan.kept_back == ()
    assert {a.customer_id for a in later.plan.actions} == {"C1", "C2"}


def test_an_invoice_that_grows_old_after_connecting_is_chased_as_usual(store, settings, firm, inbox):
    with store.begin() as conn:  # connected long ago: INV-0003 was 27 days overdue then
        conn.execute(tenants.update().values(connected_at=datetime(2026, 2, 23, 12, 0, tzinfo=UTC)))
    summary = night(store, settings, firm, MORNING)
    assert summary.plan is not None and summary.plan.kept_back == ()
    assert {a.customer_id for a in summary.plan.actions} == {"C1", "C2"}


def test_backlog_days_is_checked_and_does_not_re_key_reminders():
    def policy(extra: str) -> str:
        return ("version: 1\npolicies:\n  - name: p\n" + extra +
                "    levels:\n      - {name: one, offset: 3, channel: email, template: reminder}\n")  # fmt: skip

    plain = parse_policies(load_yaml(policy("")), "policy.yaml").policies[0]
    cut = parse_policies(load_yaml(policy("    backlog_days: 90\n")), "policy.yaml").policies[0]
    assert (plain.backlog_days, cut.backlog_days) == (None, 90)
    assert plain.version == cut.version
    with pytest.raises(PolicyFileError) as bad:
        parse_policies(load_yaml(policy("    backlog_days: -1\n")), "policy.yaml")
    assert str(bad.value) == "policy.yaml: policies[0].backlog_days: must be at least 0"


def load_yaml(text: str) -> Any:
    import yaml

    return yaml.safe_load(text)


# ---- the CLI: the mode, and what a run says


@pytest.fixture
def cli_firm(home: Path, registered: ScriptedLedger, inbox: Inbox, monkeypatch: pytest.MonkeyPatch) -> Inbox:
    for name, value in env(home, inbox).items():
        monkeypatch.setenv(name, value)
    store = Store.open(f"sqlite:///{home / 'ccm.db'}")
    connect(store)
    store.close()
    registered.put("contacts", contact("C1", "Ann's Café", EmailAddress="ann@example.com"))
    registered.put("contacts", contact("C2", "Bob's Bikes", EmailAddress="bob@example.com"))
    registered.put("invoices", invoice("I1", "C1", total="120.00", due="2026-11-10", Number="INV-0001"))
    registered.put("invoices", invoice("I3", "C2", total="50.00", due="2026-01-27", Number="INV-0003"))
    return inbox


def test_ccm_run_uses_the_firm_s_mode_and_says_why(capsys, cli_firm):
    code, out, err = ccm(capsys, "run", "--at", "2026-11-24T09:30:00Z")
    assert code == 0, err
    assert cli_firm.messages == []
    said = " ".join(out.split())
    assert ("acme: safe night 1 of 3: planned 1 reminder(s) or call task(s), nothing sent or written until "
            "approved; approve with `ccm outbox approve --all -t acme`") in said  # fmt: skip
    assert "acme: 1 invoice(s) of 1 customer(s) kept back" in said
    code, out, err = ccm(capsys, "outbox", "approve", "--all", "-t", "acme")
    assert code == 0, err
    assert "approved reminder (first reminder) by e-mail for Ann's Café on INV-0001" in out
    code, out, err = ccm(capsys, "outbox", "send", "-t", "acme", "--at", "2026-11-24T10:00:00Z")
    assert code == 0, err
    assert [m["To"] for m in cli_firm.messages] == ["ann@example.com"]


def test_backlog_lists_what_is_kept_back_and_include_brings_it_in(capsys, cli_firm):
    code, _, err = ccm(capsys, "run", "--dry-run", "--at", "2026-11-24T09:30:00Z")  # pull the books
    assert code == 0, err
    code, out, err = ccm(capsys, "backlog", "-t", "acme", "--at", "2026-11-24T09:30:00Z")
    assert code == 0, err
    assert "INV-0003" in out and "Bob's Bikes" in out
    code, _, err = ccm(capsys, "include", "Ann", "-t", "acme", "--at", "2026-11-24T09:30:00Z")
    assert (code, err) == (2, "ccm: error: no invoice of Ann's Café is kept back in 'acme' (see `ccm backlog "
                              "-t acme`)\n")  # fmt: skip
    code, out, err = ccm(capsys, "include", "--invoice", "INV-0003", "-t", "acme", "--note", "agreed", "--at",
                         "2026-11-24T09:30:00Z")  # fmt: skip
    assert code == 0, err
    code, out, err = ccm(capsys, "backlog", "-t", "acme", "--at", "2026-11-24T09:30:00Z")
    assert "acme: nothing is kept back" in out
    code, out, err = ccm(capsys, "include", "--invoice", "INV-0003", "-t", "acme", "--off")
    assert code == 0, err
    assert "kept back again: 1 inclusion(s) withdrawn" in out


def test_tenants_set_mode_and_show(capsys, cli_firm):
    code, _, err = ccm(capsys, "tenants", "set", "acme", "--mode", "Sometimes")
    assert (code, err) == (2, "ccm: error: --mode: must be one of auto, approve, dry-run, not 'Sometimes'\n")
    code, out, err = ccm(capsys, "tenants", "set", "acme", "--mode", "auto")
    assert code == 0, err
    assert "its own mode, auto, applies after its safe nights" in out
    code, out, _ = ccm(capsys, "tenants", "show", "acme")
    assert "chosen mode:  auto" in out
    assert "mode now:     approve: safe night 1 of 3 since connecting on 2026-11-23" in out
    code, out, err = ccm(capsys, "tenants", "set", "acme", "--end-safe-nights")
    assert code == 0, err
    assert "mode now auto (the firm's chosen mode is auto)" in " ".join(out.split())
    code, out, err = ccm(capsys, "run", "--at", "2026-11-24T09:30:00Z")
    assert code == 0, err
    assert len(cli_firm.messages) == 1
