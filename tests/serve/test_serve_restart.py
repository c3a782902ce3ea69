"""A server stopped (SIGTERM) and started again later catches up once, then keeps its schedule.

The server runs a night, is stopped gracefully (exit 0, no lease or server row left behind), stays down across
two nights, and starts again: at start the scheduler marks each tenant's latest missed night (within
serve.misfire_grace_hours) due, once, and the next night runs at its time. Reminders planned before the stop go out after the restart, once each, inside the send window.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from adapters.quickbooks import sandbox as qbo_sandbox
from adapters.xero import sandbox as xero_sandbox
from connector.store import Store
from connector.store.schema import outbox, run_leases, servers
from tests.serve.harness import (
    SimClock,
    clean_env,
    connect,
    free_port,
    night_rows,
    night_syncs,
    qbo_env,
    serving,
    utc,
    wait_for,
    xero_env,
)
from tests.smtp import Inbox

pytestmark = pytest.mark.slow
LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")


def _done(store: Store, night: date) -> set[str]:
    """The tenants whose night `night` has finished."""
    return {r.tenant_id for r in night_rows(store) if r.night == night and r.state == "done"}


def test_a_restarted_server_catches_up_the_missed_nights_once(tmp_path: Path, inbox: Inbox):
    # Tuesday 07:30 UTC, past both firms' nights of the 10th (02:00 in London and New York): 18.5 hours, about
    # eighteen real seconds at an hour a real second, to connect both before the first night (and the
    # sandboxes' five-minute authorization codes last 83 real ms, enough on a busy machine)
    clock = SimClock.starting(utc(2026, 11, 10, 7, 30), 3600)
    port = free_port()
    xero = xero_sandbox.start(clock.firm(21), clock=clock.sandbox())
    qbo = qbo_sandbox.start(clock.firm(22), clock=clock.sandbox())
    home = tmp_path / "home"
    env = clean_env() | xero_env(xero, port) | qbo_env(qbo, port) | {
        "CCM_HOME": str(home), "CCM_SERVE__CLOCK": clock.spec, "CCM_SERVE__POLL_MINUTES": "0",
        "CCM_SERVE__TICK_SECONDS": "0.1", "CCM_SMTP__HOST": inbox.host, "CCM_SMTP__PORT": str(inbox.port),
    }  # fmt: skip
    store = Store.open(f"sqlite:///{home / 'ccm.db'}")
    try:
        with serving(env, port) as first:
            assert "is connected to" in connect(first, "xero", "uk", xero, timezone="Europe/London",
                                                night_time="02:00").text  # fmt: skip
            assert "is connected to" in connect(first, "quickbooks", "us", qbo, timezone="America/New_York",
                                                night_time="02:00", country="US", base_currency="USD").text  # fmt: skip
            assert clock.now() < utc(2026, 11, 11, 2), (
                f"connecting took until {clock.now()}, past the first night"
            )
            wait_for(lambda: _done(store, date(2026, 11, 11)) == {"uk", "us"}, 60, "both nights of the 11th")
            assert first.stop() == 0, first.output()[-3000:]
        with store.read() as conn:
            assert conn.execute(select(run_leases)).all() == []  # a clean stop leaves no lease behind
            assert conn.execute(select(servers)).all() == []
        clock.wait_until(utc(2026, 11, 13, 9))  # down through the nights of the 12th and the 13th
        restarted_at = clock.now()
        with serving(env, port) as second:
            wait_for(lambda: len([r for r in night_rows(store) if r.state == "done"]) >= 4, 10,
                     "the missed night to be caught up")  # fmt: skip
            caught_up_by = clock.now()
            wait_for(lambda: _done(store, date(2026, 11, 14)) == {"uk", "us"}, 60, "both nights of the 14th")
            assert second.stop() == 0, second.output()[-3000:]
    finally:
        xero.stop()
        qbo.stop()

    rows = night_rows(store)
    for tenant, zone in (("uk", LONDON), ("us", NEW_YORK)):
        mine = {r.night: r for r in rows if r.tenant_id == tenant}
        assert sorted(mine) == [date(2026, 11, 11), date(2026, 11, 13), date(2026, 11, 14)], mine
        assert all(r.state == "done" and r.attempts == 1 for r in mine.values())
        caught = mine[date(2026, 11, 13)]
        assert restarted_at <= caught.started_at <= caught_up_by, "the missed night ran at start"
        regular = mine[date(2026, 11, 14)]
        due = datetime.combine(date(2026, 11, 14), time(2), tzinfo=zone)
        assert due <= regular.started_at < due + timedelta(hours=12), "the next night ran at its own time"
    assert Counter(r.tenant_id for r in night_syncs(store)) == {"uk": 3, "us": 3}
    with store.read() as conn:
        went = conn.execute(select(outbox.c.tenant_id, outbox.c.key, outbox.c.updated_at)
                            .where(outbox.c.kind == "reminder", outbox.c.state == "sent")).all()  # fmt: skip
    store.close()
    assert went, "reminders planned before the stop went out after the restart"
    zones = {"uk": LONDON, "us": NEW_YORK}
    for tenant_id, key, at in went:  # on a weekday, inside the send window in the tenant's zone
        local = at.astimezone(zones[tenant_id])
        assert local.weekday() < 5 and time(9) <= local.time() < time(17), (key, local)
    sent = Counter(str(m["X-CCM-Action"]) for m in inbox.messages)
    assert sorted(sent) == sorted(key for _, key, _ in went)
    assert max(sent.values()) == 1  # each once
