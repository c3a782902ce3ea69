"""The pages' shared books (connector/web/snapshots.py): computed once for every page, fresh after a change.

On a real store (SQLite, and PostgreSQL when CCM_TEST_DATABASE_URL is set); the counts of computations are
`Snapshots.computed`'s, never timings.
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from connector import chasing
from connector import creditcontrol as credit
from connector.config import Settings
from connector.model import Customer, Invoice, Money, Status, Tenant
from connector.store import Store, records, synclog
from connector.store.tenants import save_tenant
from connector.web import customer_views, discrepancies_views, holds_views, reports, snapshots
from connector.web.snapshots import Snapshots

TODAY = date(2026, 6, 30)
NOW = datetime(2026, 6, 30, 9, 0, tzinfo=UTC)
FIRM = Tenant("firm", "Firm Ltd", "scripted", "GBP", "Europe/London", "GB")


def _invoice(n: int, customer: str, total: Decimal) -> Invoice:
    """An open invoice, nothing paid on it (ccm and the ledger agree on what is due)."""
    issued = date(2026, 4, 1)
    return Invoice(
        f"i{n}", customer, Money(total, "GBP"), Money(total, "GBP"), Status.OPEN, issued, date(2026, 5, 1),
        f"INV-{n:04d}",
    )  # fmt: skip


def _sync(store: Store, invoices: list[Invoice], tenant: Tenant = FIRM) -> None:
    """What a sync does: a run first, then the records, then the run's end."""
    with store.begin() as conn:
        run = synclog.start_run(conn, tenant.id, "incremental", NOW)
        records.upsert(conn, tenant.id, "invoice", invoices)
        synclog.finish_run(conn, tenant.id, run, synclog.SyncOutcome.OK, at=NOW)


@pytest.fixture
def firm(store: Store) -> Store:
    with store.begin() as conn:
        save_tenant(conn, FIRM)
        records.upsert(conn, FIRM.id, "customer", [
            Customer("c1", "Acme Joinery", email="ap@acme.example"),
            Customer("c2", "Brook Bakery", email="ap@brook.example"),
        ])  # fmt: skip
    _sync(store, [_invoice(1, "c1", Decimal("500.00")), _invoice(2, "c1", Decimal("120.00")),
                  _invoice(3, "c2", Decimal("80.00"))])  # fmt: skip
    return store


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


def _outstanding(store: Store, settings: Settings, cid: str) -> dict[str, str]:
    page = customer_views.customer_page(store, settings, FIRM, cid, TODAY)
    return {row.number: row.outstanding for row in page.invoices}


def test_the_books_are_computed_once_for_every_page(firm: Store, settings: Settings) -> None:
    kept = snapshots.of(firm)
    assert snapshots.of(firm) is kept
    first = holds_views.page(firm, settings, FIRM, TODAY)
    found = discrepancies_views.rows(firm, FIRM)
    assert _outstanding(firm, settings, "c1") == {"INV-0001": "£500.00", "INV-0002": "£120.00"}
    assert _outstanding(firm, settings, "c2") == {"INV-0003": "£80.00"}
    figures = reports.reports_for(firm, FIRM, TODAY).reports
    assert figures.aging.total.total == Decimal("700.00")
    assert kept.computed["snapshot"] == 1  # one read of the records for four pages
    assert kept.computed["basis"] == 1  # one reconciliation for holds and both customers
    assert kept.computed["customers.firm"] == 1  # one evaluation for both customers
    assert holds_views.page(firm, settings, FIRM, TODAY) is first
    assert discrepancies_views.rows(firm, FIRM) is found
    assert kept.computed["holds"] == 1 and kept.computed["discrepancies"] == 1


def test_a_new_sync_run_is_read_at_once(firm: Store, settings: Settings) -> None:
    kept = snapshots.of(firm)
    assert _outstanding(firm, settings, "c1")["INV-0001"] == "£500.00"
    before = reports.reports_for(firm, FIRM, TODAY).reports.aging.total.total
    _sync(firm, [_invoice(1, "c1", Decimal("200.00"))])  # corrected in the ledger: same count of invoices
    assert _outstanding(firm, settings, "c1")["INV-0001"] == "£200.00"
    assert reports.reports_for(firm, FIRM, TODAY).reports.aging.total.total == before - Decimal("300.00")
    assert kept.computed["snapshot"] == 2
    assert kept.computed["reports"] == 2


def test_a_new_promise_or_limit_is_read_at_once_without_reading_the_records_again(
    firm: Store, settings: Settings
) -> None:
    kept = snapshots.of(firm)
    page = customer_views.customer_page(firm, settings, FIRM, "c1", TODAY)
    assert not any(row.promised for row in page.invoices)
    assert holds_views.page(firm, settings, FIRM, TODAY).limits == []
    with firm.begin() as conn:
        covered = chasing.open_invoices(conn, FIRM.id, "c1")
        chasing.record_promise(conn, FIRM.id, "c1", covered[:1], date(2026, 7, 10), None, "by phone", NOW)
        credit.set_limit(conn, FIRM.id, "c2", Money(Decimal("50"), "GBP"), NOW, "set")
    page = customer_views.customer_page(firm, settings, FIRM, "c1", TODAY)
    assert [row.number for row in page.invoices if row.promised] == [covered[0].number]
    limits = holds_views.page(firm, settings, FIRM, TODAY).limits
    assert [(row.name, row.limit, row.exposure, row.over) for row in limits] == [
        ("Brook Bakery", Money(Decimal("50"), "GBP"), Money(Decimal("80.00"), "GBP"), True)
    ]
    assert kept.computed["snapshot"] == 1 and kept.computed["basis"] == 1
    assert kept.computed["customers.firm"] == 2 and kept.computed["holds"] == 2


def test_a_new_day_is_a_new_reconciliation(firm: Store, settings: Settings) -> None:
    kept = snapshots.of(firm)
    holds_views.page(firm, settings, FIRM, TODAY)
    holds_views.page(firm, settings, FIRM, date(2026, 7, 1))
    assert kept.computed["snapshot"] == 1 and kept.computed["basis"] == 2


def test_requests_at_once_wait_for_one_computation(firm: Store) -> None:
    kept = Snapshots(firm)
    started, release = threading.Event(), threading.Event()
    made: list[int] = []

    def make() -> int:
        made.append(1)
        started.set()
        release.wait(30)
        return 42

    answers: list[int] = []
    first = threading.Thread(target=lambda: answers.append(kept.once("firm", "part", 1, make)))
    first.start()
    assert started.wait(30)
    second = threading.Thread(target=lambda: answers.append(kept.once("firm", "part", 1, make)))
    second.start()
    release.set()
    first.join(30)
    second.join(30)
    assert answers == [42, 42] and made == [1] and kept.computed["part"] == 1


def test_only_the_firms_read_last_are_kept(firm: Store) -> None:
    kept = Snapshots(firm, firms=2)
    for tid in ("a", "b", "a", "c"):
        kept.once(tid, "part", 1, lambda: 0)
    assert [kept.known(tid) for tid in ("a", "b", "c")] == [True, False, True]


def test_a_firms_pages_are_warmed_after_its_night_once_read(firm: Store, settings: Settings) -> None:
    kept = snapshots.of(firm)
    assert snapshots.warm(firm, settings, FIRM.id, NOW) is None  # after a sync, never read: nothing to warm
    assert kept.computed["snapshot"] == 0
    discrepancies_views.rows(firm, FIRM)
    _sync(firm, [_invoice(4, "c2", Decimal("60.00"))])
    thread = snapshots.warm(firm, settings, FIRM.id, NOW)
    assert thread is not None
    thread.join(60)
    assert kept.computed["snapshot"] == 2 and kept.computed["holds"] == 1 and kept.computed["reports"] == 1
    holds_views.page(firm, settings, FIRM, TODAY)
    assert discrepancies_views.rows(firm, FIRM) is discrepancies_views.rows(firm, FIRM)
    reports.reports_for(firm, FIRM, TODAY)
    assert kept.computed["snapshot"] == 2 and kept.computed["holds"] == 1 and kept.computed["reports"] == 1


def test_a_night_warms_a_firm_nobody_read_only_while_the_cache_has_room(
    firm: Store, settings: Settings
) -> None:
    kept = snapshots.of(firm)
    read = [f"read-{n}" for n in range(kept.firms)]
    for tid in read:  # a bookkeeper has looked at as many firms as the cache holds
        kept.once(tid, "part", 1, lambda: 0)
    assert not kept.has_room()
    assert snapshots.warm(firm, settings, FIRM.id, NOW, always=True) is None  # would push out a firm read
    assert kept.computed["snapshot"] == 0 and all(kept.known(tid) for tid in read)
    kept.forget(read[0])
    thread = snapshots.warm(firm, settings, FIRM.id, NOW, always=True)  # room again: warmed after its night
    assert thread is not None
    thread.join(60)
    assert kept.computed["holds"] == 1 and kept.known(FIRM.id)


def test_every_firm_is_warmed_after_its_night(firm: Store, settings: Settings) -> None:
    kept = snapshots.of(firm)
    thread = snapshots.warm(firm, settings, FIRM.id, NOW, always=True)
    assert thread is not None
    thread.join(60)
    assert kept.computed["holds"] == 1 and kept.computed["discrepancies"] == 1
    assert kept.computed["reports"] == 1 and kept.computed["customers.firm"] == 1
    holds_views.page(firm, settings, FIRM, TODAY)
    reports.reports_for(firm, FIRM, TODAY)
    assert _outstanding(firm, settings, "c2") == {"INV-0003": "£80.00"}
    assert kept.computed["holds"] == 1 and kept.computed["reports"] == 1 and kept.computed["snapshot"] == 1
    assert kept.computed["customers.firm"] == 1
