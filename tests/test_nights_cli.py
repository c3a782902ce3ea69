"""`ccm nights`: every night on record, from `ccm run` and `ccm serve` alike, in names and invoice numbers, and
everything that waits for a person now, each with the command that settles it."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from connector.clock import Clock
from connector.config import load_settings
from connector.model import Connection, Tenant
from connector.serve import nights, work
from connector.serve.runtime import Runtime
from connector.store import Store
from connector.store.schema import night_reports
from connector.store.tenants import save_connection, save_tenant
from tests.scripted import ScriptedLedger, contact, invoice
from tests.smtpfaults import FaultyInbox, faulty_smtp_server
from tests.test_cli import ccm
from tests.test_night import MORNING

NIGHT_OF = date(2026, 11, 24)


@pytest.fixture
def mail(monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultyInbox]:
    with faulty_smtp_server() as inbox:
        monkeypatch.setenv("CCM_SMTP__HOST", inbox.host)
        monkeypatch.setenv("CCM_SMTP__PORT", str(inbox.port))
        monkeypatch.setenv("CCM_SMTP__FROM_ADDRESS", "accounts@acme.example")
        monkeypatch.setenv("CCM_SYNC__OVERLAP_SECONDS", "0")
        yield inbox


@pytest.fixture
def books(home: Path, registered: ScriptedLedger, mail: FaultyInbox) -> Iterator[Store]:
    """Acme Ltd: Ann's Café owes INV-0001 and Bo's Bakery INV-0002, both past due on 24 November."""
    store = Store.open(f"sqlite:///{home / 'ccm.db'}")
    with store.begin() as conn:
        save_tenant(conn, Tenant("acme", "Acme Ltd", "scripted", "GBP", "Europe/London", "GB"))
        save_connection(conn, Connection("acme", "scripted", "org-1"))
    registered.put("contacts", contact("C1", "Ann's Café", EmailAddress="ann@example.com"))
    registered.put("contacts", contact("C2", "Bo's Bakery", EmailAddress="bo@example.com"))
    registered.put("invoices", invoice("I1", "C1", total="120.00", due="2026-11-10", Number="INV-0001"))
    registered.put("invoices", invoice("I2", "C2", total="80.00", due="2026-11-10", Number="INV-0002"))
    yield store
    store.close()


def reports(store: Store) -> int:
    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(night_reports)).scalar_one())


def test_a_night_from_ccm_run_is_listed_and_shown_by_name(capsys, books, mail):
    code, out, err = ccm(capsys, "run", "--at", "2026-11-24T10:00:00Z")
    assert code == 0, err

    code, out, err = ccm(capsys, "nights")
    assert code == 0, err
    assert "2026-11-24" in out and "ccm run" in out and "auto" in out
    assert "2 reminders sent" in out  # the headline, in words
    assert "nothing waits for a person" in out

    code, out, err = ccm(capsys, "nights", "2026-11-24", "-t", "acme")
    assert code == 0, err
    sent = out.split("  sent:\n", 1)[1]
    assert "reminder (first reminder) by e-mail to Ann's Café (INV-0001)" in sent
    assert "reminder (first reminder) by e-mail to Bo's Bakery (INV-0002)" in sent
    assert "I1" not in out and "C1" not in out  # names and numbers, never ids
    assert ccm(capsys, "nights", "last")[1] == out  # `last` is the newest night


def test_what_failed_is_named_with_its_command_until_a_person_settles_it(capsys, books, mail):
    mail.refuse.add("ann@example.com")
    mail.greylist["bo@example.com"] = 1
    code, out, err = ccm(capsys, "run", "--at", "2026-11-24T10:00:00Z")
    assert code == 0, err

    code, out, err = ccm(capsys, "nights", "last")
    assert code == 0, err
    failed = out.split("  failed:\n", 1)[1].split("\n  ", 1)[0]
    assert "reminder (first reminder) by e-mail to Ann's Café (INV-0001)" in failed and "550" in failed
    again = out.split("  will try again:\n", 1)[1]
    assert "Bo's Bakery (INV-0002)" in again and "451" in again and "next try 2026-11-24 10:15 UTC" in again

    code, out, err = ccm(capsys, "nights")
    assert code == 0, err
    assert "1 failed" in out and "1 to try again" in out  # the headline
    need = re.search(r"1 thing\(s\) need a person:\n  acme: FAILED reminder .* to Ann's Café on INV-0001: "
                     r".*550.*; fix the cause, then `ccm outbox retry (\S+)`", out)  # fmt: skip
    assert need is not None, out
    assert "1 action(s) will be tried again by themselves:" in out
    assert "Bo's Bakery (INV-0002): next try 2026-11-24 10:15 UTC" in out

    code, _, err = ccm(capsys, "outbox", "dismiss", "-t", "acme", need[1])
    assert code == 0, err
    code, out, err = ccm(capsys, "run", "--at", "2026-11-24T10:30:00Z")  # Bo's turn has come: it goes out
    assert code == 0, err
    code, out, err = ccm(capsys, "nights")
    assert "nothing waits for a person" in out and "will be tried again" not in out
    assert [m["To"] for m in mail.messages] == ["bo@example.com"]


def test_a_dry_run_leaves_no_night_and_a_firm_that_cannot_run_leaves_one_saying_why(
    capsys, books, home, mail
):
    code, _, err = ccm(capsys, "run", "--dry-run", "--at", "2026-11-24T10:00:00Z")
    assert code == 0, err
    assert reports(books) == 0
    assert "no nights yet" in ccm(capsys, "nights")[1]

    templates = home / "tenants" / "acme" / "templates"
    templates.mkdir(parents=True)
    (templates / "reminder.txt").write_text("Dear {{ customer.name }\n")  # a firm's template, broken
    code, out, err = ccm(capsys, "run", "--at", "2026-11-24T10:00:00Z")
    assert code == 1
    assert mail.messages == []
    code, out, err = ccm(capsys, "nights")
    assert code == 0, err
    assert reports(books) == 1
    [row] = [line for line in out.splitlines() if "2026-11-24" in line]
    assert "failed" in row and "did not run" in row
    code, out, err = ccm(capsys, "nights", "last")
    assert "reminder.txt" in out.split("  stopped:\n", 1)[1]  # which file, in the night's record


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nights", "yesterday"), "NIGHT: not a date (YYYY-MM-DD) or `last`: 'yesterday'"),
        (("nights", "2026-11-01"), "no night 2026-11-01 on record"),
        (("nights", "-t", "nobody"), "nobody"),
        (("nights", "--limit", "0"), "--limit"),
    ],
)
def test_bad_arguments_are_one_line(capsys, books, args, message):
    code, _, err = ccm(capsys, *args)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1, err


@pytest.fixture
def rt(home: Path, registered: ScriptedLedger, mail: FaultyInbox, books: Store) -> Runtime:
    """A server's runtime on a clock pinned at 09:30 in London, Acme's night of 24 November due."""
    settings = load_settings(None, {
        "CCM_HOME": str(home), "CCM_SMTP__HOST": mail.host, "CCM_SMTP__PORT": str(mail.port),
        "CCM_SMTP__FROM_ADDRESS": "accounts@acme.example", "CCM_SYNC__OVERLAP_SECONDS": "0",
        "CCM_SERVE__SAFE_NIGHTS": "0",  # an established firm: past its safe first nights
    })  # fmt: skip
    with books.begin() as conn:
        nights.mark_due(conn, "acme", NIGHT_OF, MORNING)
    return Runtime(settings, books, Clock(MORNING, time.time(), 1e-9), "test-server")


def test_a_server_night_is_on_record_too_and_a_crash_says_so(capsys, rt, monkeypatch):
    def buggy(*args: object, **kwargs: object) -> object:
        raise ValueError("a bug")

    with monkeypatch.context() as patched:
        patched.setattr("connector.run.night.plan_holds", buggy)
        assert work.night(rt, "acme", NIGHT_OF).outcome == "crashed"
    assert work.night(rt, "acme", NIGHT_OF).outcome == "done"  # the next tick runs it again

    code, out, err = ccm(capsys, "nights")
    assert code == 0, err
    rows = [line for line in out.splitlines() if "2026-11-24" in line]
    assert len(rows) >= 2 and all("ccm serve" in row for row in rows), out
    assert any("crashed" in row for row in rows) and any("2 reminders sent" in row for row in rows), out
    code, out, err = ccm(capsys, "schedule")
    assert code == 0, err
    assert "2 reminders sent" in out  # the schedule shows the last night's outcome, in words


def test_a_night_in_approve_mode_lists_what_waits_and_how_to_approve_it(capsys, books, mail):
    code, _, err = ccm(capsys, "run", "--approve", "--at", "2026-11-24T10:00:00Z")
    assert code == 0, err
    code, out, err = ccm(capsys, "nights", "last")
    assert code == 0, err
    assert "2 actions waiting for approval" in out
    waiting = out.split("  waiting for approval:\n", 1)[1]
    assert "reminder (first reminder) by e-mail to Ann's Café (INV-0001)" in waiting
    assert "`ccm outbox approve --all -t acme` (or by key)" in waiting
    assert mail.messages == []
