"""Organisations connected by one Xero consent share one rotating token set.

Xero's refresh token belongs to the consent, not to an organisation, and every refresh replaces it (the old
one is accepted for 30 minutes more). Two tenants each holding their own copy would break the day after:
the first refresh kills the other's copy. Stored as one grant, a refresh for either rewrites both.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from adapters.sandbox.clock import SandboxClock
from adapters.sandbox.generator import FirmSize, generate
from adapters.xero import connect as xero_connect
from adapters.xero import flow
from adapters.xero import sandbox as xero_sandbox
from adapters.xero.settings import XeroSettings, xero_settings
from connector.config import Settings
from connector.flow import Choice, save_grant
from connector.model import ConnectionState, Tenant
from connector.oauth import TokenVault, load_key
from connector.store import Store
from connector.store.tenants import get_connection, get_tenant
from connector.sync import run_sync
from connector.wiring import ledger_for, mapping_for

SIZE = FirmSize(5, 100, 50)


@pytest.fixture
def xero():
    # Starts at the machine's now and moves only when the test says: `flow.revoke` asks Xero with the machine's
    # clock (it takes none), so the tokens must be live on it. The firms end the day before the clock's date:
    # data and clock agree whatever the day.
    clock = SandboxClock(speed=0)
    today = clock.now().date()
    handle = xero_sandbox.start(generate(81, SIZE, today=today, name="North Ltd"), clock=clock, limits=False,
                                extra_firms=[generate(82, SIZE, today=today, name="South Ltd")])  # fmt: skip
    yield handle
    handle.stop()


def _settings(handle, tmp_path: Path) -> Settings:
    h = handle
    return Settings(data_dir=tmp_path, ledgers={"xero": XeroSettings(client_id=h.client_id, client_secret=h.client_secret,
                    login_url=h.base_url, identity_url=h.base_url, api_url=h.base_url, ca_bundle=h.ca_path)})  # fmt: skip


def _consented(xero, store: Store, settings: Settings) -> tuple[TokenVault, list[Choice]]:
    """One consent through the sandbox; each organisation saved as a tenant named after it (north, south)."""
    auth = xero_connect.begin(xero_settings(settings))
    grant = flow.exchange(settings, {"code": xero_connect.consent_code(auth, xero_settings(settings))}, auth.code_verifier,
                          xero.clock.now())  # fmt: skip
    vault = TokenVault(store, load_key(settings), xero.clock.now)
    for choice in grant.choices:
        save_grant(store, vault, Tenant(choice.name.split()[0].lower(), "", "xero"), grant, choice)
    return vault, list(grant.choices)


def _sync(store: Store, settings: Settings, tenant_id: str, clock: SandboxClock):
    with store.read() as conn:
        tenant = get_tenant(conn, tenant_id)
    ledger = ledger_for(settings, store, tenant, clock)
    return run_sync(store, tenant_id, ledger, mapping_for(settings, tenant), clock=clock.now)


def test_two_organisations_of_one_consent_outlive_a_rotation(xero, store: Store, tmp_path: Path):
    settings = _settings(xero, tmp_path)
    vault, _ = _consented(xero, store, settings)
    assert vault.sharing("north") == ["south"]

    # Each round: the tokens expire, north refreshes (rotating them), the old one's grace runs out, south syncs.
    for _ in range(3):
        xero.clock.advance(timedelta(minutes=31).total_seconds())
        assert _sync(store, settings, "north", xero.clock).outcome == "ok"
        xero.clock.advance(timedelta(minutes=45).total_seconds())  # past the old refresh token's grace
        assert _sync(store, settings, "south", xero.clock).outcome == "ok"
    assert vault.get("north") == vault.get("south")  # one token set, rewritten for both at every refresh


def test_a_dead_consent_marks_every_organisation_for_reconnecting(xero, store: Store, tmp_path: Path):
    settings = _settings(xero, tmp_path)
    _consented(xero, store, settings)
    xero.clock.advance(timedelta(days=61).total_seconds())  # the refresh token died unused
    failed = _sync(store, settings, "north", xero.clock)
    assert failed.outcome == "failed" and failed.reconnect_needed
    with store.read() as conn:
        states = {t: get_connection(conn, t).state for t in ("north", "south")}  # type: ignore[union-attr]
    assert states == {"north": ConnectionState.RECONNECT_NEEDED, "south": ConnectionState.RECONNECT_NEEDED}


def test_disconnecting_one_organisation_keeps_the_consent_for_the_other(xero, store: Store, tmp_path: Path):
    settings = _settings(xero, tmp_path)
    vault, choices = _consented(xero, store, settings)
    north_org = next(c.id for c in choices if c.name == "North Ltd")

    said = flow.revoke(settings, store, "north")
    vault.delete("north")

    assert said == "its organisation was removed from a consent south still use"
    tokens = vault.get("south")
    assert tokens is not None
    remaining = {
        o.tenant_id for o in xero_connect.connections(xero_settings(settings), tokens, xero.clock.now())
    }
    assert north_org not in remaining and len(remaining) == 1
    assert _sync(store, settings, "south", xero.clock).outcome == "ok"
    assert vault.sharing("south") == []
    said = flow.revoke(settings, store, "south")  # the last one revokes the consent itself
    assert said == "the consent was revoked at Xero"
