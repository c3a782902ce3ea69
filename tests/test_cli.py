"""The `ccm` command line: tables, one-line errors and exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from connector.cli import main
from connector.model import Connection
from connector.store import Store
from connector.store.engine import head_revisions
from connector.store.tenants import save_connection
from tests.scripted import ScriptedLedger, contact, invoice, payment


def ccm(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    captured = capsys.readouterr()
    code = done.value.code
    return (code if isinstance(code, int) else 1), captured.out, captured.err


def connected_tenant(capsys: pytest.CaptureFixture[str], home: Path, ledger: ScriptedLedger) -> None:
    code, _, err = ccm(capsys, "tenants", "add", "acme", "--ledger", "scripted", "--name", "Acme Ltd")
    assert code == 0, err
    store = Store.open(f"sqlite:///{home / 'ccm.db'}")
    with store.begin() as conn:
        save_connection(conn, Connection("acme", "scripted", "org-1"))
    store.close()
    ledger.put("contacts", contact("C1", "Ann's Café"))
    ledger.put("invoices", invoice("I1"))
    ledger.put("invoices", invoice("I2", total="nope"))


def test_help_lists_the_commands(capsys, home):
    code, out, _ = ccm(capsys, "--help")
    assert code == 0
    for command in ("sync", "log", "tenants", "db", "demo"):
        assert command in out


def test_sync_then_log_show_what_happened(capsys, home, registered):
    connected_tenant(capsys, home, registered)
    code, out, err = ccm(capsys, "sync", "--tenant", "acme")
    assert code == 0, err
    assert "invoices" in out and "outcome: partial" in out
    assert "1 record(s) could not be mapped; see `ccm log 1`" in out

    code, out, _ = ccm(capsys, "log")
    assert code == 0
    assert "acme" in out and "partial" in out

    code, out, _ = ccm(capsys, "log", "1")
    assert code == 0
    assert "changes (2)" in out
    assert "│ Ann's Café " in out and "│ INV-I1 (Ann's Café) " in out and "│ new " in out  # named, not ids
    assert "errors (1)" in out and "total: not a number: 'nope'" in out

    code, out, _ = ccm(capsys, "log", "--failed", "--tenant", "acme")
    assert "partial" in out

    code, out, _ = ccm(capsys, "tenants", "list")
    assert code == 0
    assert "Acme Ltd" in out and "connected" in out and "partial" in out


def test_a_second_sync_reads_only_what_changed(capsys, home, registered):
    connected_tenant(capsys, home, registered)
    ccm(capsys, "sync", "-t", "acme")
    registered.ticks += 3600
    registered.put("invoices", invoice("I1", AmountDue="10.00"))
    code, out, _ = ccm(capsys, "sync", "-t", "acme")
    assert code == 0
    registered.put("payments", payment("P1", "I1", "90.00"))
    registered.put("contacts", contact("C1", "Ann's Café", EmailAddress="ann@cafe.example"))
    code, out, _ = ccm(capsys, "sync", "-t", "acme")
    assert code == 0
    code, out, _ = ccm(capsys, "log", "2")
    assert "INV-I1 (Ann's Café): amount due 100.00 → 10.00" in _rows(out)
    code, out, _ = ccm(capsys, "log", "3")
    rows = _rows(out)
    assert "payment of £90.00 on 2026-01-15 from Ann's Café: new" in rows
    assert "Ann's Café: e-mail none → ann@cafe.example" in rows
    code, out, _ = ccm(capsys, "log")
    summaries = [line.split("│")[-2].strip() for line in out.splitlines() if line.startswith("│ ")]
    assert summaries[:2] == ["1 new, 1 changed", "1 changed"]  # newest first; a summary in words, never empty


def _rows(out: str) -> list[str]:
    """`ccm log RUN`'s change table as 'record: what changed' lines."""
    found = []
    for line in out.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if len(cells) == 3:
            found.append(f"{cells[1]}: {cells[2]}")
    return found


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("sync", "--tenant", "nobody"), "ccm: error: unknown tenant 'nobody' (see `ccm tenants list`)"),
        (("sync",), "ccm: error: Missing option '--tenant' / '-t'."),
        (("log", "abc"), "ccm: error: Invalid value for 'run_id'"),
        (("log", "42"), "ccm: error: unknown run 42"),
        (("log", "--tenant", "nobody"), "ccm: error: unknown tenant 'nobody'"),
        (("frobnicate",), "ccm: error: No such command 'frobnicate'."),
        (
            ("tenants", "add", "x", "--ledger", "nope", "--name", "X"),
            "ccm: error: no adapter registered for ledger 'nope'",
        ),
        (
            ("tenants", "add", "x", "--ledger", "scripted", "--name", "X", "--timezone", "Mars/Olympus"),
            "ccm: error: --timezone: unknown time zone 'Mars/Olympus'",
        ),
        (
            ("tenants", "add", "x", "--ledger", "scripted", "--name", "X", "--base-currency", "pounds"),
            "ccm: error: --base-currency: not an ISO currency code: 'POUNDS'",
        ),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(capsys, home, registered, args, message):
    code, _out, err = ccm(capsys, *args)
    assert code == 2
    assert err.startswith(message)
    assert err.count("\n") == 1


def test_a_tenant_without_a_connection_cannot_sync(capsys, home, registered):
    ccm(capsys, "tenants", "add", "solo", "--ledger", "scripted", "--name", "Solo")
    code, _, err = ccm(capsys, "sync", "-t", "solo")
    assert code == 2
    assert err == "ccm: error: tenant 'solo' has no ledger connection yet (connect it first)\n"


def test_a_bad_tenant_mapping_override_stops_the_sync_naming_file_and_key(capsys, home, registered):
    connected_tenant(capsys, home, registered)
    override = home / "tenants" / "acme" / "mapping.yaml"
    override.parent.mkdir(parents=True)
    override.write_text("invoices:\n  fields:\n    due_date: DueDateX\n")
    code, _, err = ccm(capsys, "sync", "-t", "acme")
    assert code == 2
    assert err == f"ccm: error: {override}: invoices.fields.due_date: unknown source path 'DueDateX'\n"
    code, out, _ = ccm(capsys, "log")
    assert "no runs yet" in out  # nothing ran, nothing was half-done


def test_bad_settings_stop_every_command_with_one_line(capsys, home, tmp_path):
    config = tmp_path / "ccm.toml"
    config.write_text("[sync]\noverlap_seconds = 'soon'\n")
    code, _, err = ccm(capsys, "--config", str(config), "log")
    assert code == 2
    assert (
        err
        == f"ccm: error: {config}: sync.overlap_seconds: must be a valid integer, unable to parse string as an integer (got 'soon')\n"
    )
    config.write_text("[sync\n")
    code, _, err = ccm(capsys, "--config", str(config), "log")
    assert code == 2 and err.startswith(f"ccm: error: {config}: ") and err.count("\n") == 1


def test_db_upgrade_reports_the_revision(capsys, home):
    heads = ", ".join(sorted(head_revisions()))
    code, out, _ = ccm(capsys, "db", "upgrade")
    assert code == 0
    assert f"upgraded from empty to {heads}" in out
    code, out, _ = ccm(capsys, "db", "upgrade")
    assert f"already at revision {heads}" in out


def test_the_installed_console_script_runs(home):
    env = {**os.environ, "CCM_HOME": str(home)}
    ccm_bin = Path(sys.executable).parent / "ccm"
    done = subprocess.run([str(ccm_bin), "log", "7"], capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 2
    assert done.stderr == "ccm: error: unknown run 7\n"


def test_empty_lists_name_the_ledgers_installed_here(
    home: Path, registered: ScriptedLedger, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ledgers are plugins: the hints name what is installed (the scripted one too), not a fixed pair."""
    from connector import ledger as registry

    installed = registry.names()
    assert {"quickbooks", "scripted", "xero"} <= set(installed)
    code, out, err = ccm(capsys, "connections")
    assert code == 0, err
    assert f"no connections yet: `ccm connect {'|'.join(installed)} -t ID`" in " ".join(out.split())
    code, out, err = ccm(capsys, "invites")
    assert code == 0, err
    assert f"`ccm invite T --ledger {'|'.join(installed)}`" in " ".join(out.split())
