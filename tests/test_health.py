"""Connection health: what it finds, told to the firm once per appearance, shown by `ccm connections`."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.quickbooks import sandbox as qbo_sandbox
from adapters.quickbooks.settings import quickbooks_settings
from adapters.sandbox.generator import generate
from adapters.xero.settings import xero_settings
from connector import health
from connector.config import HealthSettings, Settings
from connector.ledger import Usage
from connector.model import Connection, ConnectionState, Tenant
from connector.oauth import TokenVault, load_key
from connector.payloads import encode
from connector.run.night import check_health, run_night
from connector.store import Store
from connector.store.tenants import get_connection, save_tenant
from tests import clock
from tests.e2e.sandboxes import QuickBooksSide, XeroSide, connected, settings_for, start
from tests.smtp import Inbox

NOW = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
RULES = HealthSettings()
ACME = Tenant("acme", "Acme Ltd", "xero", contact_email="owner@acme.example")
LINK = Connection("acme", "xero", "org-1")


def kinds(found: list[health.Issue]) -> list[str]:
    return [i.kind for i in found]


def assess(**over: object) -> list[health.Issue]:
    args: dict[str, object] = {"tenant": ACME, "link": LINK, "tokens": health.Tokens(None, NOW - timedelta(days=1)),
                               "idle_days": 60, "usage": None, "reminders_on": False, "now": NOW, "rules": RULES}  # fmt: skip
    args.update(over)
    return health.assess(
        args["tenant"], args["link"], args["tokens"], idle_days=args["idle_days"], usage=args["usage"],  # type: ignore[arg-type]
        reminders_on=args["reminders_on"], now=NOW, rules=RULES,  # type: ignore[arg-type]
    )  # fmt: skip


def test_a_healthy_connection_has_nothing_to_say():
    assert assess() == []


def test_a_xero_refresh_token_unused_for_fifty_days_is_about_to_die():
    assert assess(tokens=health.Tokens(None, NOW - timedelta(days=49))) == []
    [issue] = assess(tokens=health.Tokens(None, NOW - timedelta(days=50)))
    assert issue.kind == "refresh_idle"
    assert issue.message.startswith(
        "the Xero refresh token has not been used for 50 days and dies on 2026-12-10"
    )


def test_a_consent_at_its_hard_end_needs_a_person_whatever_ccm_does():
    qbo = replace(ACME, ledger="quickbooks")
    refreshed = NOW - timedelta(hours=1)  # refreshed last night, yet the grant ends in 20 days: a hard end
    [issue] = assess(tenant=qbo, idle_days=100, tokens=health.Tokens(NOW + timedelta(days=20), refreshed))
    assert issue.kind == "consent_ending"
    assert issue.message == (
        "the QuickBooks consent ends on 2026-12-20 whatever ccm does: someone at the firm must connect again "
        "before then (`ccm connect quickbooks -t acme`)"
    )
    assert assess(tenant=qbo, idle_days=100, tokens=health.Tokens(NOW + timedelta(days=99), refreshed)) == []


def test_reconnect_needed_day_limit_and_the_ledgers_own_reminders():
    dead = replace(LINK, state=ConnectionState.RECONNECT_NEEDED, message="reconnect needed: invalid_grant")
    found = assess(link=dead, usage=Usage(6, 0, 400, 5000), reminders_on=True)
    assert kinds(found) == ["reconnect_needed", "day_limit", "ledger_reminders"]
    assert found[0].message.startswith("ccm can no longer reach Xero (invalid_grant): someone at the firm")
    assert found[1].message.startswith("only 400 of 5000 daily Xero API calls were left")
    assert kinds(assess(usage=Usage(6, 0, 501, 5000))) == []  # over 10% left


def test_an_issue_is_told_once_per_appearance(store: Store):
    with store.begin() as conn:
        save_tenant(conn, ACME)
    reminders = [health.Issue("ledger_reminders", "on")]
    with store.begin() as conn:
        assert [i.kind for i in health.record(conn, "acme", reminders, NOW)] == ["ledger_reminders"]
        first = health.notices(conn, ACME, NOW)
    assert [encode(a.payload)["email"] for a in first] == ["owner@acme.example"]
    with store.begin() as conn:  # the next night: still there, nothing new to tell
        assert health.record(conn, "acme", reminders, NOW + timedelta(days=1)) == []
        assert health.notices(conn, ACME, NOW + timedelta(days=1)) == []
        health.record(conn, "acme", [], NOW + timedelta(days=2))  # fixed: closed
        assert health.open_issues(conn, "acme") == []
        health.record(conn, "acme", reminders, NOW + timedelta(days=3))  # back again: told again
        again = health.notices(conn, ACME, NOW + timedelta(days=3))
    assert len(again) == 1 and again[0].key != first[0].key


def test_no_contact_address_tells_nobody_until_one_is_set(store: Store):
    silent = replace(ACME, contact_email=None)
    with store.begin() as conn:
        save_tenant(conn, silent)
        health.record(conn, "acme", [health.Issue("day_limit", "low")], NOW)
        assert health.notices(conn, silent, NOW) == []
        assert len(health.notices(conn, ACME, NOW + timedelta(hours=1))) == 1  # an address now: told


@pytest.fixture
def xero_side():
    side = start("xero", seed=7)
    yield side
    side.handle.stop()


def test_a_night_tells_the_firm_once_that_xeros_own_reminders_are_on(xero_side: XeroSide, tmp_path: Path,
                                                                      store: Store, inbox: Inbox):  # fmt: skip
    settings = settings_for(xero_side, tmp_path / "data", inbox)
    tenant = connected(xero_side, settings, store)
    with store.begin() as conn:
        save_tenant(conn, replace(tenant, contact_email="owner@firm.example"))
    xero_side.handle.set_reminders(True)
    nights = [clock.NOW + timedelta(days=d) for d in range(4)]  # the sandbox's calendar

    first = run_night(store, settings, tenant.id, now=nights[0])
    second = run_night(store, settings, tenant.id, now=nights[1])

    notices = [m for m in inbox.messages if str(m["To"]) == "owner@firm.example"]
    assert len(notices) == 1 and first.outcome is not None and len(first.outcome.notices) == 1
    assert second.outcome is not None and second.outcome.notices == []
    assert [i.kind for i in second.health] == ["ledger_reminders"]
    xero_side.handle.set_reminders(False)
    assert run_night(store, settings, tenant.id, now=nights[2]).health == []
    xero_side.handle.set_reminders(True)
    run_night(store, settings, tenant.id, now=nights[3])
    assert len([m for m in inbox.messages if str(m["To"]) == "owner@firm.example"]) == 2  # a new appearance


def test_quickbooks_hard_expiry_is_seen_after_five_years_of_refreshes(
    tmp_path: Path, store: Store, inbox: Inbox
):
    fixed = clock.sandbox_clock(speed=0)
    firm = generate(9, "demo", today=clock.TODAY)
    side = QuickBooksSide(qbo_sandbox.start(firm, seed=9, limits=False, clock=fixed))
    try:
        settings = settings_for(side, tmp_path / "data", inbox)
        tenant = connected(side, settings, store)
        from adapters.quickbooks import auth

        vault = TokenVault(store, load_key(settings), lambda: datetime.now(UTC))
        refresh = auth.refresher(quickbooks_settings(settings))
        for step in [99] * 18 + [18]:  # every refresh rolls the grant 100 days on, never past five years
            fixed.advance(timedelta(days=step).total_seconds())
            vault.refresh(tenant.id, refresh, force=True)
        found = check_health(store, settings, tenant, None, datetime.now(UTC))
    finally:
        side.handle.stop()
    assert [i.kind for i in found] == ["consent_ending"]
    assert "the QuickBooks consent ends on" in found[0].message


def test_ccm_connections_shows_a_xero_token_unused_for_fifty_one_days(xero_side: XeroSide, tmp_path: Path,
                                                                      store: Store, inbox: Inbox):  # fmt: skip
    home = tmp_path / "home"
    settings = settings_for(xero_side, home, inbox)
    db = Store.open(f"sqlite:///{home / 'ccm.db'}")
    tenant = connected(xero_side, settings, db)
    vault = TokenVault(db, load_key(settings))
    tokens = vault.get(tenant.id)
    assert tokens is not None
    long_ago = TokenVault(db, load_key(settings), lambda: datetime.now(UTC) - timedelta(days=51))
    long_ago.put(tenant.id, tokens)  # as ccm left them when it last refreshed, 51 days ago
    with db.read() as conn:
        assert get_connection(conn, tenant.id) is not None
    db.close()
    env = {"CCM_HOME": str(home), "PATH": "/usr/bin:/bin"}
    listed = subprocess.run([str(Path(sys.executable).parent / "ccm"), "connections"], env=env,
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert "refresh_idle" in listed.stdout
    assert f"{tenant.id}: refresh_idle: the Xero refresh token has not been used for 51 days" in listed.stdout


def test_settings_are_the_defaults_the_docs_state():
    rules = Settings().health
    assert (rules.refresh_warn_days, rules.reconsent_warn_days, rules.day_limit_warn_percent) == (10, 30, 10)


def test_the_day_limit_xero_reports_reaches_the_health_check(tmp_path: Path, store: Store, inbox: Inbox):
    from adapters.xero import sandbox as xero_sandbox

    side = XeroSide(
        xero_sandbox.start(seed=8, size="demo", day_limit=40, clock=clock.sandbox_clock())
    )  # a Starter-tier-like allowance
    try:
        settings = settings_for(side, tmp_path / "data", inbox)
        settings = settings.model_copy(update={
            "health": HealthSettings(day_limit_warn_percent=90),
            "ledgers": {"xero": xero_settings(settings).model_copy(update={"day_limit": 40})},
        })  # fmt: skip
        tenant = connected(side, settings, store)
        night = run_night(store, settings, tenant.id, now=clock.NOW)
    finally:
        side.handle.stop()
    [issue] = [i for i in night.health if i.kind == "day_limit"]
    assert issue.message.startswith("only ") and " of 40 daily Xero API calls were left" in issue.message


def test_with_notify_off_the_issue_is_recorded_and_nobody_is_mailed(xero_side: XeroSide, tmp_path: Path,
                                                                    store: Store, inbox: Inbox):  # fmt: skip
    settings = settings_for(xero_side, tmp_path / "data", inbox)
    settings = settings.model_copy(update={"health": HealthSettings(notify=False)})
    tenant = connected(xero_side, settings, store)
    with store.begin() as conn:
        save_tenant(conn, replace(tenant, contact_email="owner@firm.example"))
    xero_side.handle.set_reminders(True)
    night = run_night(store, settings, tenant.id, now=clock.NOW)
    assert [i.kind for i in night.health] == ["ledger_reminders"]
    assert [m for m in inbox.messages if str(m["To"]) == "owner@firm.example"] == []
