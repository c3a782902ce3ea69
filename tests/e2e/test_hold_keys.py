"""A customer released from hold and over the limit again later the same day must be held again."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from connector import credit
from connector.config import Settings, load_settings
from connector.model import Connection, Money, Tenant
from connector.run.night import run_night
from connector.store import Store
from connector.store.tenants import save_connection, save_tenant
from tests.scripted import ScriptedLedger, contact, invoice, payment
from tests.smtp import Inbox

MORNING = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path: Path, inbox: Inbox) -> Settings:
    return load_settings(None, {
        "CCM_HOME": str(tmp_path / "home"), "CCM_SMTP__HOST": inbox.host, "CCM_SMTP__PORT": str(inbox.port),
        "CCM_SYNC__OVERLAP_SECONDS": "0",
    })  # fmt: skip


@pytest.fixture
def firm(store: Store, registered: ScriptedLedger) -> ScriptedLedger:
    with store.begin() as conn:
        save_tenant(conn, Tenant("acme", "Acme Ltd", "scripted", "GBP", "Europe/London", "GB"))
        save_connection(conn, Connection("acme", "scripted", "org-1"))
        credit.set_limit(conn, "acme", "C1", Money(Decimal(1000), "GBP"), MORNING, "set")
    registered.put("contacts", contact("C1", "Ann's Café", EmailAddress="ann@example.com"))
    registered.put("invoices", invoice("I1", "C1", total="1500.00", due="2026-12-20", Number="INV-0001"))
    return registered


def test_held_released_and_over_the_limit_again_the_same_day_is_held_again(store, settings, firm):
    run_night(store, settings, "acme", now=MORNING, ledger=firm)
    assert firm.held == {"C1"}
    firm.put("payments", payment("P1", "I1", "1500.00", "C1"))
    released = run_night(store, settings, "acme", now=MORNING.replace(hour=11), ledger=firm)
    assert [h.action for h in released.holds] == ["release"]
    assert firm.held == set()
    firm.put("invoices", invoice("I2", "C1", total="2000.00", due="2026-12-24", Number="INV-0002"))

    again = run_night(store, settings, "acme", now=MORNING.replace(hour=14), ledger=firm)

    assert [h.action for h in again.holds] == ["hold"]  # the rules decide to hold...
    assert firm.held == {"C1"}  # ...and the ledger must show it
