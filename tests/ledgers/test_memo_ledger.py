"""A third ledger plugs in without touching the core: the test-only memo ledger, installed by entry point.

It is found by the registry like the built-ins, its settings are read from `[ledgers.memo]` (file or
environment) with the same one-line errors, and a whole night runs on it: connect through its flow and the
core's save, sync, plan, send reminders over real SMTP and write the notes back into its books.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from connector import ledger as registry
from connector.config import ConfigError, load_settings
from connector.demo import connect_on_sandbox
from connector.health import ledger_name
from connector.model import Tenant
from connector.outbox import Mode
from connector.run.night import run_night
from connector.store import Store
from tests.ledgers.memo.book import Book
from tests.ledgers.memo.flow import consent
from tests.ledgers.memo.settings import MemoSettings
from tests.smtp import Inbox

MORNING = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)  # a Tuesday, inside the send window
SECRET = "memo-night-secret"


def test_the_memo_ledger_is_found_by_its_entry_point_and_only_then(memo_installed: Path) -> None:
    spec = registry.get("memo")
    assert "memo" in registry.names()
    assert (spec.title, ledger_name("memo")) == ("Memo", "Memo")
    assert spec.settings is MemoSettings and spec.connect is not None and spec.sandbox is not None
    assert (memo_installed / "entry_points.txt").read_text().startswith("[ccm.adapters]")
    registry.forget("memo")
    assert "memo" not in registry.names()  # forgotten: nothing keeps it registered by hand
    assert registry.get("memo").name == "memo"  # asked for, it is found again by its entry point


def test_without_its_entry_point_the_memo_ledger_is_unknown(tmp_path: Path) -> None:
    with pytest.raises(registry.UnknownLedger, match="no adapter registered for ledger 'memo'"):
        registry.get("memo")
    toml = tmp_path / "ccm.toml"
    toml.write_text("[ledgers.memo]\nbook = 'books.json'\n")
    with pytest.raises(ConfigError, match=r"ccm.toml: ledgers.memo: no adapter registered for this ledger"):
        load_settings(toml, {"CCM_HOME": str(tmp_path)})


def test_its_settings_come_from_ledgers_memo_with_one_line_errors(
    memo_installed: Path, tmp_path: Path
) -> None:
    toml = tmp_path / "ccm.toml"
    toml.write_text("[ledgers.memo]\nbook = 'books.json'\npage_size = 10\n")
    settings = load_settings(toml, {"CCM_HOME": str(tmp_path), "CCM_LEDGERS__MEMO__CLIENT_SECRET": "s"})
    config = settings.ledger("memo")
    assert isinstance(config, MemoSettings)
    assert (config.book, config.page_size, config.client_secret) == (Path("books.json"), 10, "s")
    toml.write_text("[memo]\npage_size = 0\n")  # the older spelling is the same section
    with pytest.raises(ConfigError) as bad:
        load_settings(toml, {"CCM_HOME": str(tmp_path)})
    assert str(bad.value) == f"{toml}: memo.page_size: must be at least 1 (got 0)"
    with pytest.raises(ConfigError) as env:
        load_settings(None, {"CCM_HOME": str(tmp_path), "CCM_LEDGERS__MEMO__PAGE_SIZE": "many"})
    assert str(env.value).startswith("CCM_LEDGERS__MEMO__PAGE_SIZE: must be a valid integer")


def test_a_night_runs_end_to_end_on_the_memo_ledger(
    memo_installed: Path, tmp_path: Path, db_url: str, store: Store, inbox: Inbox
) -> None:
    book = Book.create(
        tmp_path / "books.json", lambda: MORNING, seed=11, today=MORNING.date(), client_secret=SECRET
    )
    settings = load_settings(None, {
        "CCM_HOME": str(tmp_path / "home"), "CCM_DATABASE_URL": db_url,
        "CCM_LEDGERS__MEMO__BOOK": str(book.path), "CCM_LEDGERS__MEMO__CLIENT_SECRET": SECRET,
        "CCM_SMTP__HOST": inbox.host, "CCM_SMTP__PORT": str(inbox.port),
        "CCM_SMTP__FROM_ADDRESS": "accounts@memo-firm.example",
    })  # fmt: skip
    tenant = Tenant("memo-firm", "", "memo", "GBP", "Europe/London", "GB")
    connected = connect_on_sandbox(settings, store, tenant, consent)  # the core's connect, as `ccm demo` does
    assert connected == "Memo Trading 11 Ltd"

    summary = run_night(store, settings, tenant.id, now=MORNING, mode=Mode.AUTO)

    books = book.snapshot()
    assert summary.sync is not None and summary.sync.outcome == "ok", summary.sync
    read = {stream: counts["read"] for stream, counts in summary.sync.counts.items()}
    assert read == {
        stream: len(books[stream]) for stream in ("customers", "invoices", "credit_notes", "payments")
    }
    assert summary.outcome is not None
    assert inbox.messages, summary  # reminders went out over SMTP
    emails = {c["Email"]: cid for cid, c in books["customers"].items() if c["Email"]}
    chased = {emails[str(m["To"])] for m in inbox.messages}
    assert chased  # every recipient is a memo customer with an address
    noted = {
        key.split(":")[1] for key, lines in books["notes"].items() if any("Reminder" in n for n in lines)
    }
    overdue = {
        iid for iid, inv in books["invoices"].items()
        if inv["CustomerId"] in chased and inv["Status"] == "open" and inv["DueDate"] < MORNING.date().isoformat()
    }  # fmt: skip
    assert overdue and overdue <= noted  # each chased customer's overdue invoices carry the reminder's note

    again = run_night(store, settings, tenant.id, now=MORNING, mode=Mode.AUTO)
    assert again.sync is not None and again.sync.outcome == "ok"
    assert len(inbox.messages) == len(chased)  # the same night again sends nothing more
    assert book.snapshot()["notes"] == books["notes"]  # nor writes a note twice
