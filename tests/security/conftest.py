"""Fixtures the security tests share."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.model import Connection, Tenant
from connector.store import Store
from connector.store.tenants import save_connection, save_tenant
from tests.scripted import ScriptedLedger, contact, invoice

ACME = Tenant("acme", "Acme Ltd", "scripted", "GBP", "Europe/London", "GB")


@pytest.fixture
def connected(home: Path, registered: ScriptedLedger, capsys: pytest.CaptureFixture[str]) -> ScriptedLedger:
    """The scripted firm `acme`, connected, with one customer owing one overdue invoice."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    store = Store.open(f"sqlite:///{home / 'ccm.db'}")
    with store.begin() as conn:
        save_tenant(conn, ACME)
        save_connection(conn, Connection("acme", "scripted", "org-1"))
    store.close()
    registered.put("contacts", contact("C1", "Ann's Café", EmailAddress="ann@example.com"))
    registered.put("invoices", invoice("I1", "C1", total="120.00", due="2026-11-10", Number="INV-0001"))
    capsys.readouterr()  # what setting up printed is not the command's
    return registered
