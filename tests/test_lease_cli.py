"""The commands that run a firm keep its run lease on the real clock, and stop when they lose it.

`ccm run`, `ccm sync` and `ccm outbox send` run in a subprocess against the Xero sandbox. The harness
(tests/killpoint.py) freezes the process (SIGSTOP) the moment it holds the tenant's lease, as a laptop lid
would; the lease runs out, another holder (a server, played by this test) takes the firm and starts sending;
then the command wakes up (SIGCONT). It must notice at its next safe point, say so in one line and exit 1,
and leave the new holder's sends alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from signal import SIGCONT, SIGKILL

import pytest
from sqlalchemy import select

from adapters.sandbox.generator import FirmSize, generate
from connector import lease, outbox
from connector.config import load_settings
from connector.demo import connect_on_sandbox
from connector.flow import follow_consent
from connector.model import Tenant
from connector.outbox import Mode, State
from connector.payloads import Kind, decode
from connector.rules.calendar import SendCalendar
from connector.store import Store
from connector.store.schema import run_leases
from tests import clock
from tests.smtp import Inbox

ROOT = Path(__file__).parents[1]
HARNESS = [sys.executable, "-m", "tests.killpoint", "--freeze-holding-lease"]
LOST = "ccm: lost the lease on tenant 'acme' (another process may run it now); stopped before "


@dataclass
class Firm:
    env: dict[str, str]
    store: Store
    at: datetime  # the tenant's next moment reminders may go out


@pytest.fixture
def firm(tmp_path: Path, inbox: Inbox) -> Iterator[Firm]:
    """Tenant 'acme' connected to a fresh Xero sandbox, with a real SMTP server; the env `ccm` runs with."""
    from adapters.xero import sandbox

    handle = sandbox.start(generate(5, FirmSize(8, 100, 60), today=clock.TODAY), clock=clock.sandbox_clock(),
                           limits=False)  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCM_")} | handle.env() | {
        "CCM_HOME": str(tmp_path / "home"),
        "CCM_SMTP__HOST": inbox.host, "CCM_SMTP__PORT": str(inbox.port),
        "CCM_SMTP__FROM_ADDRESS": "accounts@acme.example",
    }  # fmt: skip
    settings = load_settings(None, env)
    store = Store.open(settings.db_url)
    tenant = Tenant("acme", "Acme Ltd", "xero", "GBP", "Europe/London", "GB")
    try:
        connect_on_sandbox(settings, store, tenant, lambda url: follow_consent(url, str(handle.ca_path)))
        at = SendCalendar(tenant.timezone, tenant.country).next_send_time(clock.NOW)
        yield Firm(env, store, at)
    finally:
        store.close()
        handle.stop()


def _frozen(proc: subprocess.Popen[str]) -> None:
    """Wait until the process has stopped itself (state T in /proc)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"ccm ended (exit {proc.returncode}) before it froze: {err[-3000:]}")
        stat = Path(f"/proc/{proc.pid}/stat").read_text()
        if stat.rpartition(")")[2].split()[0] == "T":
            return
        time.sleep(0.02)
    pytest.fail("ccm never froze holding the lease")


def _lease_row(store: Store) -> tuple[str, datetime]:
    with store.read() as conn:
        row = conn.execute(select(run_leases).where(run_leases.c.tenant_id == "acme")).one()
    return row.holder, row.expires_at


def _start(firm: Firm, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*args], env=firm.env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip


COMMANDS = {
    "run": (("run", "--at", "{at}"), "the sync finished; nothing was planned or sent"),
    "sync": (("sync", "-t", "acme"), "the sync finished (it resumes from its last committed page)"),
    "outbox send": (("outbox", "send"), "sending anything"),
}


@pytest.mark.parametrize("command", COMMANDS)
def test_a_command_frozen_past_its_lease_stops_and_leaves_the_new_holders_sends_alone(
    command: str, firm: Firm, inbox: Inbox
) -> None:
    args, before = COMMANDS[command]
    now = datetime.now(UTC)
    in_flight = outbox.NewAction(
        "dun-in-flight", Kind.REMINDER, "email", "C-1", decode(Kind.REMINDER, {}), now
    )
    with firm.store.begin() as conn:
        outbox.plan(conn, "acme", [in_flight], Mode.AUTO, now)
    proc = _start(firm, *HARNESS, "--lease-ttl", "1", "--", *(a.format(at=firm.at.isoformat()) for a in args))
    try:
        _frozen(proc)
        holder, expires = _lease_row(firm.store)
        assert f":{proc.pid}:" in holder
        while datetime.now(UTC) <= expires:  # it cannot renew while frozen: the lease runs out
            time.sleep(0.05)
        server = lease.acquire(firm.store, "acme", "server-host:1:serve", datetime.now(UTC))  # takes the firm
        with firm.store.begin() as conn:
            assert outbox.claim(conn, "acme", in_flight.key, server.holder, datetime.now(UTC))  # and sends
        proc.send_signal(SIGCONT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.send_signal(SIGKILL)
            proc.wait()
    assert proc.returncode == 1, err
    *shown, last = err.strip().splitlines()
    assert last == LOST + before
    assert all("━" in line for line in shown), shown  # nothing else on stderr but `ccm sync`'s progress bars
    with firm.store.read() as conn:
        action = next(a for a in outbox.actions(conn, "acme") if a.key == in_flight.key)
    assert action.state is State.SENDING  # the server's send in flight is not turned `unknown` by it
    assert _lease_row(firm.store)[0] == server.holder  # nor is the server's lease released from under it
    assert inbox.messages == []


def test_outbox_send_at_a_past_instant_takes_a_lease_on_the_real_clock(firm: Firm) -> None:
    started = datetime.now(UTC)
    proc = _start(firm, *HARNESS, "--", "outbox", "send", "--at", "2020-01-06T10:00:00+00:00")
    try:
        _frozen(proc)
        holder, expires = _lease_row(firm.store)
        looked = datetime.now(UTC)
        proc.send_signal(SIGCONT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.send_signal(SIGKILL)
            proc.wait()
    assert f":{proc.pid}:" in holder
    assert started + lease.DEFAULT_TTL - timedelta(seconds=1) <= expires <= looked + lease.DEFAULT_TTL
    assert proc.returncode == 0, err
