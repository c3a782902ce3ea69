"""A server's night, in-process, when something goes wrong that is not the tenant's: a bug is logged with its
traceback and the night `crashed` runs again at the next tick; a transient ledger error outside the sync is
retried after serve.retry_minutes, never filed as the tenant's failure.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from connector.clock import Clock
from connector.config import load_settings
from connector.ledger import Retriable
from connector.model import Connection, Tenant
from connector.serve import nights, work
from connector.serve.runtime import Runtime
from connector.store import Store
from connector.store.tenants import save_connection, save_tenant
from tests.scripted import ScriptedLedger, contact, invoice
from tests.smtp import Inbox
from tests.test_cli import ccm
from tests.test_night import MORNING

NIGHT_OF = date(2026, 11, 24)


@pytest.fixture
def rt(home: Path, registered: ScriptedLedger, inbox: Inbox) -> Iterator[Runtime]:
    """A server's runtime on a clock pinned at 09:30 in London, Acme's night of 24 November due."""
    settings = load_settings(None, {
        "CCM_HOME": str(home), "CCM_SMTP__HOST": inbox.host, "CCM_SMTP__PORT": str(inbox.port),
        "CCM_SMTP__FROM_ADDRESS": "accounts@acme.example", "CCM_SYNC__OVERLAP_SECONDS": "0",
        "CCM_SERVE__RETRY_MINUTES": "30", "CCM_SERVE__MAX_ATTEMPTS": "2",
        "CCM_SERVE__SAFE_NIGHTS": "0",  # an established firm: past its safe first nights
    })  # fmt: skip
    store = Store.open(f"sqlite:///{home / 'ccm.db'}")
    with store.begin() as conn:
        save_tenant(conn, Tenant("acme", "Acme Ltd", "scripted", "GBP", "Europe/London", "GB"))
        save_connection(conn, Connection("acme", "scripted", "org-1"))
        nights.mark_due(conn, "acme", NIGHT_OF, MORNING)
    registered.put("contacts", contact("C1", "Ann's Café", EmailAddress="ann@example.com"))
    registered.put("invoices", invoice("I1", "C1", total="120.00", due="2026-11-10", Number="INV-0001"))
    yield Runtime(settings, store, Clock(MORNING, time.time(), 1e-9), "test-server")
    store.close()


def the_night(rt: Runtime) -> nights.Night:
    with rt.store.read() as conn:
        [found] = nights.recent(conn, "acme")
    return found


def claimable(rt: Runtime) -> list[str]:
    with rt.store.read() as conn:
        return [c.tenant_id for c in nights.claimable(conn, rt.clock.now(), rt.real_now())]


def test_a_bug_in_the_night_is_logged_with_its_traceback_and_the_night_runs_again(
    rt, inbox, monkeypatch, capsys
):
    def buggy(*args: object, **kwargs: object) -> object:
        raise ValueError("a bug: not the tenant's problem")

    with monkeypatch.context() as patched:
        patched.setattr("connector.run.night.plan_holds", buggy)
        with capture_logs() as logs:
            done = work.night(rt, "acme", NIGHT_OF)

    assert done.outcome == "crashed"
    [crash] = [e for e in logs if e["event"] == "night.crashed"]
    assert crash["log_level"] == "error" and crash["exc_info"] is True  # the traceback goes to the log
    night = the_night(rt)
    assert night.state == "crashed"
    assert (
        night.summary
        == "internal error (ValueError); see the server's log; attempt 1, runs again at the next tick"
    )
    monkeypatch.setenv("COLUMNS", "250")
    code, out, _ = ccm(capsys, "schedule")
    assert code == 0 and "2026-11-24 crashed" in out  # visible to the operator

    assert claimable(rt) == ["acme"]  # the next tick takes it again
    again = work.night(rt, "acme", NIGHT_OF)
    assert again.outcome == work.JobOutcome.DONE
    assert (the_night(rt).state, the_night(rt).attempts) == (nights.NightState.DONE, 2)
    assert len(inbox.messages) == 1


def test_a_bug_that_keeps_crashing_stops_after_the_last_attempt(rt, monkeypatch):
    def buggy(*args: object, **kwargs: object) -> object:
        raise KeyError("customer_nam")

    monkeypatch.setattr("connector.run.night.plan_holds", buggy)
    with capture_logs():
        work.night(rt, "acme", NIGHT_OF)
        work.night(rt, "acme", NIGHT_OF)
    night = the_night(rt)
    assert (night.state, night.attempts) == ("crashed", 2)
    assert night.summary == "internal error (KeyError); see the server's log; gave up after 2 attempts"
    assert claimable(rt) == []  # not looped every tick: the next night will run


def test_a_transient_ledger_error_outside_the_sync_is_retried_later(rt, inbox, monkeypatch):
    def unavailable(tenant: Tenant) -> object:
        raise Retriable("Xero's identity service answered 503")

    with monkeypatch.context() as patched:
        patched.setattr(rt, "ledger", unavailable)
        done = work.night(rt, "acme", NIGHT_OF)

    assert done.outcome == work.JobOutcome.RETRY
    night = the_night(rt)
    assert night.state == nights.NightState.RETRY
    assert night.not_before == MORNING + timedelta(minutes=30)
    assert night.summary == "Xero's identity service answered 503; attempt 1, again after 10:00 UTC"
    assert claimable(rt) == []  # not before its time
