"""A full sync makes the store equal the ledger: the engine's side, against the scripted ledger.

What the ledger stopped returning, with no deletion event to say so, is marked deleted once a full read of its
streams completes, and only then; `ccm log` says why; what ccm plans next leaves it alone. The same against
both real sandboxes: tests/contract/test_full_read.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from connector import chasing
from connector import creditcontrol as credit
from connector.config import Settings, load_settings
from connector.ledger import Cursor, Page, Retriable
from connector.mapping import CompiledMapping
from connector.model import Connection, Money, Tenant
from connector.run.night import NightSummary, run_night
from connector.store import Store, records, synclog
from connector.store.tenants import save_connection, save_tenant
from connector.sync import MISSING, PageEvent, SyncResult, run_sync
from tests.scripted import ScriptedLedger, contact, invoice, payment
from tests.smtp import Inbox
from tests.test_cli import ccm, connected_tenant
from tests.test_sync import new_tenant, small_firm

NIGHT = datetime(2026, 11, 23, 22, 0, tzinfo=UTC)  # Monday night in London
MORNING = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)  # Tuesday, inside the send window


def sync(
    store: Store, tenant: str, ledger: ScriptedLedger, mapping: CompiledMapping, **kw: Any
) -> SyncResult:
    return run_sync(store, tenant, ledger, mapping, clock=ledger.now, overlap=timedelta(seconds=2), **kw)


def statuses(store: Store, tenant: str, entity: str) -> dict[str, str]:
    with store.read() as conn:
        return {row["id"]: row["status"] for row in records.load(conn, tenant, entity)}


def deletes(store: Store, tenant: str, run_id: int) -> list[tuple[str, str, dict[str, Any]]]:
    with store.read() as conn:
        return [
            (c.stream, c.record_id, c.fields)
            for c in synclog.changes(conn, tenant, run_id)
            if c.op == "delete"
        ]


def why(was: str) -> dict[str, Any]:
    return {"status": [was, "deleted"], "reason": [None, MISSING]}


def test_only_a_full_sync_marks_what_the_ledger_stopped_returning(store, scripted_mapping):
    ledger = small_firm(ScriptedLedger())
    tenant = new_tenant(store, "acme")
    sync(store, tenant, ledger, scripted_mapping, full=True)
    ledger.records["invoices"].pop("I5")  # gone at the ledger, no tombstone
    ledger.records["payments"].pop("P2")
    ledger.ticks += 60
    incremental = sync(store, tenant, ledger, scripted_mapping)
    assert deletes(store, tenant, incremental.run_id) == []
    full = sync(store, tenant, ledger, scripted_mapping, full=True)
    assert full.outcome == "ok"
    assert deletes(store, tenant, full.run_id) == [
        ("invoices", "I5", why("open")),
        ("payments", "P2", why("live")),
    ]
    assert (full.counts["invoices"]["deleted"], full.counts["payments"]["deleted"]) == (1, 1)
    assert statuses(store, tenant, "invoice")["I5"] == "deleted"
    again = sync(store, tenant, ledger, scripted_mapping, full=True)
    assert deletes(store, tenant, again.run_id) == []


def test_ccm_log_shows_what_a_full_sync_marked_deleted_and_why(capsys, home, registered):
    connected_tenant(capsys, home, registered)
    code, _, err = ccm(capsys, "sync", "--tenant", "acme", "--full")
    assert code == 0, err
    registered.records["invoices"].pop("I1")
    code, out, err = ccm(capsys, "sync", "--tenant", "acme", "--full")
    assert code == 0, err
    code, out, _ = ccm(capsys, "log", "2")
    assert code == 0
    assert "changes (1)" in out
    assert "│ INV-I1 (Ann's Café) │ deleted: not returned by a full read" in out  # named, with why


class BreaksOnPage(ScriptedLedger):
    """Fails (a 503 that outlived the retries) on one page of one stream, while `broken` is set."""

    broken: tuple[str, int] | None = None

    def pull(self, stream: str, cursor: Cursor | None) -> Iterator[Page]:
        for number, page in enumerate(super().pull(stream, cursor), start=1):
            if self.broken == (stream, number):
                raise Retriable("the ledger answered HTTP 503")
            yield page


def test_an_error_on_a_later_page_marks_nothing_of_that_stream(store, scripted_mapping):
    ledger = BreaksOnPage()
    small_firm(ledger)
    tenant = new_tenant(store, "acme")
    sync(store, tenant, ledger, scripted_mapping, full=True)
    ledger.records["contacts"].pop("C4")
    ledger.records["invoices"].pop("I8")  # on the last page of a full read (3 a page)
    ledger.broken = ("invoices", 3)
    failed = sync(store, tenant, ledger, scripted_mapping, full=True)
    assert failed.outcome == "failed"
    assert statuses(store, tenant, "invoice")["I8"] == "open"  # its stream failed part-way: nothing marked
    # Contacts had been read to the end before: settled in their own transaction, which the failure keeps.
    assert deletes(store, tenant, failed.run_id) == [("contacts", "C4", why("active"))]
    ledger.broken = None
    whole = sync(store, tenant, ledger, scripted_mapping, full=True)
    assert deletes(store, tenant, whole.run_id) == [("invoices", "I8", why("open"))]


@pytest.mark.parametrize("after_page", [1, 3], ids=["between pages", "after the last page"])
def test_a_stop_before_the_stream_is_settled_marks_nothing(store, scripted_mapping, after_page):
    ledger = small_firm(ScriptedLedger())
    tenant = new_tenant(store, "acme")
    sync(store, tenant, ledger, scripted_mapping, full=True)
    ledger.records["invoices"].pop("I2")
    pages: list[PageEvent] = []
    stopped = sync(store, tenant, ledger, scripted_mapping, full=True, on_page=pages.append,
                   should_stop=lambda: pages[-1].stream == "invoices" and pages[-1].page == after_page)  # fmt: skip
    assert stopped.outcome == "interrupted"
    assert deletes(store, tenant, stopped.run_id) == []
    assert statuses(store, tenant, "invoice")["I2"] == "open"


def test_a_record_the_mapping_rejected_was_still_returned(store, scripted_mapping):
    ledger = small_firm(ScriptedLedger())
    tenant = new_tenant(store, "acme")
    sync(store, tenant, ledger, scripted_mapping, full=True)
    ledger.put("invoices", invoice("I3", "C4", total="lots"))  # I3 now fails to map
    ledger.records["invoices"].pop("I6")
    result = sync(store, tenant, ledger, scripted_mapping, full=True)
    assert result.outcome == "partial"
    with store.read() as conn:
        assert [e.record_id for e in synclog.errors(conn, tenant, result.run_id)] == ["I3"]
    assert deletes(store, tenant, result.run_id) == [("invoices", "I6", why("open"))]
    assert statuses(store, tenant, "invoice")["I3"] == "open"


def test_a_record_without_an_id_leaves_its_records_unmarked(store, scripted_mapping):
    ledger = small_firm(ScriptedLedger())
    tenant = new_tenant(store, "acme")
    sync(store, tenant, ledger, scripted_mapping, full=True)
    ledger.put("invoices", invoice(""))  # one of ours (ACCREC), but which one? Could be any.
    ledger.records["invoices"].pop("I6")
    result = sync(store, tenant, ledger, scripted_mapping, full=True)
    assert result.outcome == "partial"
    assert deletes(store, tenant, result.run_id) == []
    assert statuses(store, tenant, "invoice")["I6"] == "open"


def test_a_bill_the_mapping_leaves_out_does_not_stop_the_marking(store, scripted_mapping):
    ledger = small_firm(ScriptedLedger())
    tenant = new_tenant(store, "acme")
    sync(store, tenant, ledger, scripted_mapping, full=True)
    ledger.put("invoices", invoice("", Type="ACCPAY"))  # not ours, id or not
    ledger.records["invoices"].pop("I6")
    result = sync(store, tenant, ledger, scripted_mapping, full=True)
    assert deletes(store, tenant, result.run_id) == [("invoices", "I6", why("open"))]


# ---- what comes after: nothing is planned for what the ledger no longer has


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
    ledger.put("contacts", contact("C2", "Cat's Cakes", EmailAddress="cat@example.com"))
    ledger.put("invoices", invoice("I1", "C1", total="120.00", due="2026-11-10", Number="INV-0001"))
    ledger.put("invoices", invoice("I2", "C2", total="1500.00", due="2026-11-10", Number="INV-0002"))
    ledger.put("invoices", invoice("I3", "C2", total="300.00", due="2026-11-10", Number="INV-0003",
                                   AmountDue="200.00"))  # fmt: skip
    ledger.put("payments", payment("P1", "I3", "100.00", "C2"))
    return ledger


def night(store: Store, settings: Settings, ledger: ScriptedLedger, now: datetime) -> NightSummary:
    return run_night(store, settings, "acme", now=now, ledger=ledger)


def lose_cat(store: Store, mapping: CompiledMapping, ledger: ScriptedLedger) -> None:
    """Cat's Cakes and everything it had leave the ledger unannounced; a full sync notices."""
    for stream, rid in (("contacts", "C2"), ("invoices", "I2"), ("invoices", "I3"), ("payments", "P1")):
        ledger.records[stream].pop(rid)
    result = sync(store, "acme", ledger, mapping, full=True)
    assert {rid for _, rid, _ in deletes(store, "acme", result.run_id)} == {"C2", "I2", "I3", "P1"}


def test_a_reminder_planned_for_what_vanished_is_cancelled(store, settings, firm, scripted_mapping, inbox):
    planned = night(store, settings, firm, NIGHT)
    assert planned.plan is not None
    assert {r.customer_id for r in planned.plan.evaluation.reminders} == {"C1", "C2"}
    lose_cat(store, scripted_mapping, firm)
    morning = night(store, settings, firm, MORNING)
    assert morning.outcome is not None
    assert [reason for _, reason in morning.outcome.cancelled] == [
        "INV-0002: paid, credited or voided since planning; INV-0003: paid, credited or voided since planning"
    ]
    assert [m["To"] for m in inbox.messages] == ["ann@example.com"]


def test_a_customer_the_ledger_no_longer_has_is_not_held(store, settings, firm, scripted_mapping):
    sync(store, "acme", firm, scripted_mapping, full=True)
    lose_cat(store, scripted_mapping, firm)
    with store.begin() as conn:
        credit.set_limit(conn, "acme", "C2", Money(Decimal("1000"), "GBP"), MORNING, "set")
        chasing.update_settings(conn, "acme", "C2", MORNING, manual_hold=True, manual_hold_reason="bounced")
    summary = night(store, settings, firm, MORNING)
    assert summary.holds == []
    assert firm.held == set()
    assert summary.plan is not None
    assert {r.customer_id for r in summary.plan.evaluation.reminders} == {"C1"}
