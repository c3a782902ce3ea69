"""`ccm run` and `ccm outbox` from the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from connector.model import Connection, Tenant
from connector.store import Store
from connector.store.schema import outbox, sync_runs
from connector.store.tenants import save_connection, save_tenant
from tests.scripted import ScriptedLedger, contact, invoice
from tests.smtp import smtp_server
from tests.test_cli import ccm


@pytest.fixture
def connected(home: Path, registered: ScriptedLedger, monkeypatch: pytest.MonkeyPatch) -> ScriptedLedger:
    store = Store.open(f"sqlite:///{home / 'ccm.db'}")
    with store.begin() as conn:
        save_tenant(conn, Tenant("acme", "Acme Ltd", "scripted", "GBP", "Europe/London", "GB"))
        save_connection(conn, Connection("acme", "scripted", "org-1"))
    store.close()
    registered.put("contacts", contact("C1", "Ann's Café", EmailAddress="ann@example.com"))
    registered.put("invoices", invoice("I1", "C1", total="120.00", due="2026-11-10", Number="INV-0001"))
    monkeypatch.setenv("CCM_SMTP__FROM_ADDRESS", "accounts@acme.example")
    return registered


def test_run_sends_and_the_outbox_shows_it(capsys, home, connected, monkeypatch):
    with smtp_server() as inbox:
        monkeypatch.setenv("CCM_SMTP__HOST", inbox.host)
        monkeypatch.setenv("CCM_SMTP__PORT", str(inbox.port))
        code, out, err = ccm(capsys, "run", "--at", "2026-11-24T10:00:00Z")
        assert code == 0, err
    assert len(inbox.messages) == 1
    assert "acme" in out and "ccm run" in out
    code, out, _ = ccm(capsys, "outbox", "list")
    assert code == 0
    assert "INV-0001@2" in out and "sent" in out


def test_a_dry_run_from_the_command_line_sends_nothing(capsys, home, connected):
    code, out, _ = ccm(capsys, "run", "--dry-run", "--at", "2026-11-24T10:00:00Z")
    assert code == 0
    code, out, _ = ccm(capsys, "outbox", "list")
    assert out == "the outbox is empty\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("run", "--dry-run", "--approve"), "ccm: error: --dry-run and --approve exclude each other"),
        (("run", "--at", "soon"), "ccm: error: --at: not an ISO date-time"),
        (("run", "-t", "nobody"), "ccm: error: unknown tenant 'nobody'"),
        (("outbox", "approve"), "ccm: error: give action keys or --all"),
        (("outbox", "resolve", "dun-x", "--sent"), "ccm: error: no unknown action 'dun-x' in tenant 'acme'"),
        (("outbox", "resolve", "dun-x"), "ccm: error: give exactly one of --sent or --not-sent"),
        (("outbox", "list", "--state", "lost"), "ccm: error: Invalid value for '--state'"),
    ],
)
def test_bad_run_and_outbox_arguments_are_one_line(capsys, home, connected, args, message):
    code, _, err = ccm(capsys, *args)
    assert code == 2
    assert err.startswith(message)
    assert err.count("\n") == 1


def test_outbox_send_re_pulls_and_sends_what_is_due(capsys, home, connected, monkeypatch):
    with smtp_server() as inbox:
        monkeypatch.setenv("CCM_SMTP__HOST", inbox.host)
        monkeypatch.setenv("CCM_SMTP__PORT", str(inbox.port))
        # Planned on Monday night: due at 09:00 on Tuesday.
        assert ccm(capsys, "run", "--at", "2026-11-23T22:00:00Z")[0] == 0
        assert inbox.messages == []
        calls_before = connected.calls
        code, out, err = ccm(capsys, "outbox", "send", "--at", "2026-11-24T10:00:00Z")
        assert code == 0, err
        assert out.startswith("sent 1, call tasks 0, cancelled 0")
        assert connected.calls > calls_before  # the tenant was pulled again before sending
    assert len(inbox.messages) == 1


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("credit.yaml", "version: 1\nrules:\n  - {when: rating, in: [DE]}\n",
         "credit.yaml: rules[0].in: must be a list of ratings A-E, got ['DE']"),
        ("reference_rates.yaml", "version: 1\nrates:\n  boe_bank_rate:\n    - {from: 2026-13-01, rate: 4}\n",
         "reference_rates.yaml"),
    ],
)  # fmt: skip
def test_a_bad_tenant_rules_file_stops_the_night_before_anything_is_synced_or_planned(
    capsys, home, connected, name, text, message
):
    rules = home / "tenants" / "acme" / name
    rules.parent.mkdir(parents=True, exist_ok=True)
    rules.write_text(text)
    code, _, err = ccm(capsys, "run", "--at", "2026-11-24T10:00:00Z")
    assert code == 2
    [line] = [line for line in err.splitlines() if line]
    assert line.startswith("ccm: error: ") and message in line
    assert connected.calls == 0  # the ledger was not asked for anything
    store = Store.open(f"sqlite:///{home / 'ccm.db'}")
    with store.read() as conn:
        runs = conn.execute(select(sync_runs)).all()
        actions = conn.execute(select(outbox)).all()
    store.close()
    assert (runs, actions) == ([], [])


def test_no_sync_with_dry_run_never_reaches_the_ledger(capsys, home, connected):
    asked: list[str] = []

    def reminders_enabled() -> bool:  # the health check's question to the ledger
        asked.append("reminders")
        return False

    connected.reminders_enabled = reminders_enabled
    code, out, err = ccm(capsys, "run", "--no-sync", "--dry-run", "--at", "2026-11-24T10:00:00Z")
    assert code == 0, err
    assert (asked, connected.calls) == ([], 0)
    assert "acme: the ledger was not asked (--no-sync --dry-run)" in out
    code, _, err = ccm(capsys, "run", "--dry-run", "--at", "2026-11-24T10:00:00Z")
    assert code == 0, err
    assert asked == ["reminders"]  # a dry run that syncs still checks the ledger's health
