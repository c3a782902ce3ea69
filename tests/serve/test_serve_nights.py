"""`ccm serve` as a subprocess on a fast clock, against both sandboxes: one run per local night.

Three tenants in three time zones on both ledgers (London and the Azores on Xero, Helsinki on QuickBooks)
are connected through the server's own connect pages. Their night times sit in the hour each zone repeats
when summer time ends (2026-10-25) or skips when it starts (2027-03-28), where a cron-style schedule fires
twice or not at all. The clock runs two hours a real second, the sandboxes on the same clock, across three
nights; the proof is read off the store: which nights ran, when, and how many nightly syncs each tenant had.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from adapters.quickbooks import sandbox as qbo_sandbox
from adapters.xero import sandbox as xero_sandbox
from connector.store import Store
from connector.store.schema import sync_runs
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
SPEED = 3600  # an hour of the clock per real second: 36 real seconds to connect three firms on a busy machine
TENANTS = {  # tenant: (ledger, zone, night time in the hour that zone repeats in October and skips in March)
    "lon": ("xero", "Europe/London", "01:30"),
    "azo": ("xero", "Atlantic/Azores", "00:30"),
    "hel": ("quickbooks", "Europe/Helsinki", "03:30"),
}
CHANGES = {
    "summer time ends": (utc(2026, 10, 23, 12), [date(2026, 10, 24), date(2026, 10, 25), date(2026, 10, 26)]),
    "summer time starts": (utc(2027, 3, 26, 12), [date(2027, 3, 27), date(2027, 3, 28), date(2027, 3, 29)]),
}


def first_instant(day: date, at: str, zone: ZoneInfo) -> datetime:
    """When a person in `zone` means `at` on `day`: the first of two repeated times, or the skipped time
    read on the old offset (an hour later on the new one)."""
    hour, minute = (int(p) for p in at.split(":"))
    return datetime.combine(day, time(hour, minute), tzinfo=zone)


@pytest.mark.parametrize("change", list(CHANGES))
def test_each_tenant_runs_once_per_local_night_across_a_dst_change(change: str, tmp_path: Path, inbox: Inbox):
    start, expected = CHANGES[change]
    clock = SimClock.starting(start, SPEED)
    port = free_port()
    london, azores = clock.firm(11, name="London Trading Ltd"), clock.firm(12, name="Azores Export Lda")
    xero = xero_sandbox.start(london, clock=clock.sandbox(), extra_firms=[azores],
                              webhook_url=f"http://127.0.0.1:{port}/webhooks/xero")  # fmt: skip
    qbo = qbo_sandbox.start(clock.firm(13), clock=clock.sandbox(),
                            webhook_url=f"http://127.0.0.1:{port}/webhooks/quickbooks")  # fmt: skip
    xero.set_reminders(True)  # London's Xero chases customers itself: the firm must hear of it, once
    home = tmp_path / "home"
    env = clean_env() | xero_env(xero, port) | qbo_env(qbo, port) | {
        "CCM_HOME": str(home), "CCM_SERVE__CLOCK": clock.spec, "CCM_SERVE__POLL_MINUTES": "0",
        "CCM_SERVE__TICK_SECONDS": "0.1", "CCM_SERVE__DEBOUNCE_SECONDS": "0.5",
        "CCM_SMTP__HOST": inbox.host, "CCM_SMTP__PORT": str(inbox.port),
        "CCM_SMTP__FROM_ADDRESS": "accounts@firm.example",
    }  # fmt: skip
    orgs = {"lon": xero.book.tenant_id, "azo": azores_id(xero)}
    try:
        with serving(env, port) as server:
            for tenant, (ledger, zone, at) in TENANTS.items():
                page = connect(server, ledger, tenant, xero if ledger == "xero" else qbo,
                               choose=orgs.get(tenant), timezone=zone, night_time=at,
                               contact_email=f"owner@{tenant}.example")  # fmt: skip
                assert "is connected to" in page.text, page.text
            first = datetime.combine(expected[0], time(0, 0), tzinfo=ZoneInfo("UTC"))
            assert clock.now() < first, f"connecting took until {clock.now()}, past the first night"
            clock.wait_until(datetime.combine(expected[-1], time(4, 0), tzinfo=ZoneInfo("UTC")))
            every = {
                (t, d) for t in TENANTS for d in expected
            }  # a busy machine may finish the last ones late
            watch = Store.open(f"sqlite:///{home / 'ccm.db'}")
            try:
                wait_for(lambda: every <= {(r.tenant_id, r.night) for r in night_rows(watch) if r.state == "done"},
                         60, "every expected night done")  # fmt: skip
            finally:
                watch.close()
            assert server.stop() == 0, server.output()[-3000:]
    finally:
        xero.stop()
        qbo.stop()

    store = Store.open(f"sqlite:///{home / 'ccm.db'}")
    rows = night_rows(store)
    for tenant, (_, zone, at) in TENANTS.items():
        mine = [r for r in rows if r.tenant_id == tenant]
        assert [(r.night, r.state, r.attempts) for r in mine] == [(d, "done", 1) for d in expected], mine
        for row in mine:
            assert row.due_at == first_instant(row.night, at, ZoneInfo(zone)).astimezone(row.due_at.tzinfo)
    syncs = night_syncs(store)
    assert Counter(r.tenant_id for r in syncs) == dict.fromkeys(TENANTS, len(expected))  # no night twice
    for tenant, (_, zone, at) in TENANTS.items():
        started = [r.started_at for r in syncs if r.tenant_id == tenant]
        for day, at_instant in zip(expected, started, strict=True):
            due = first_instant(day, at, ZoneInfo(zone))
            # at its time, never before (the offset is right), and for that night, not the next one: a busy
            # machine may start it a real second or two late, which is hours on this clock
            assert due <= at_instant < due + timedelta(hours=12), (tenant, day, at_instant)
    with store.read() as conn:
        assert conn.execute(sync_runs.select().where(sync_runs.c.outcome == "running")).all() == []
    store.close()
    notices = [m for m in inbox.messages if "action needed" in str(m["Subject"])]
    assert [str(m["To"]) for m in notices] == ["owner@lon.example"]  # once, not every night
    body = notices[0].get_body(("plain",))
    assert body is not None and "invoice reminders are switched on" in body.get_content()
    keys = Counter(str(m["X-CCM-Action"]) for m in inbox.messages)
    assert all(n == 1 for n in keys.values()), keys  # nothing went out twice


def azores_id(xero: xero_sandbox.XeroSandbox) -> str:
    return next(tid for tid in xero.books if tid != xero.book.tenant_id)
