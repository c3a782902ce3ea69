"""`ccm serve` as the tests see it: a subprocess on a simulated clock, beside sandboxes on the same clock.

The clock is `connector.clock.Clock`: an origin instant, the real moment it was read, and a speed. The
server gets its text form in CCM_SERVE__CLOCK; each sandbox gets a SandboxClock that shows the same time, so
tokens expire, limits' windows turn and records change on one timeline. Firms are connected through the
server's own connect pages over HTTP, as a person's browser would.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlparse

import requests
from sqlalchemy import select

from adapters.sandbox.clock import SandboxClock
from adapters.sandbox.generator import Firm, FirmSize, generate
from connector import invites
from connector.clock import Clock
from connector.config import load_settings
from connector.flow import flow
from connector.store import Store
from connector.store.schema import nights, sync_runs
from connector.store.tenants import UnknownTenant, get_tenant
from connector.tenantspec import build

CCM = str(Path(sys.executable).parent / "ccm")
SMALL = FirmSize(8, 100, 60)
XERO_KEY = "ccm-sandbox-webhook-key"
QBO_VERIFIER = "ccm-sandbox-verifier"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class SimClock:
    """A clock shared by the test, its sandboxes and its servers."""

    clock: Clock

    @classmethod
    def starting(cls, origin: datetime, speed: float) -> SimClock:
        return cls(Clock(origin, time.time(), speed))

    @property
    def spec(self) -> str:
        return self.clock.spec()

    def now(self) -> datetime:
        return self.clock.now()

    def sandbox(self) -> SandboxClock:
        """A sandbox clock showing this clock's time from now on."""
        return SandboxClock(self.clock.now(), self.clock.speed)

    def firm(self, seed: int, size: FirmSize = SMALL, name: str | None = None) -> Firm:
        return generate(seed, size, today=self.now().date(), name=name)

    def wait_until(self, instant: datetime, timeout: float = 120) -> None:
        """Sleep (real time) until the clock shows `instant`."""
        real = self.clock.to_real(instant) - time.time()
        if real > timeout:
            raise AssertionError(f"{instant} is {real:.0f} real seconds away, more than {timeout}")
        if real > 0:
            time.sleep(real)


def clean_env() -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CCM_")}
    return clean | {"CCM_SERVE__SAFE_NIGHTS": "0"}  # an established firm: past its safe first nights


def xero_env(handle: Any, port: int) -> dict[str, str]:
    return handle.env() | {
        "CCM_XERO__WEBHOOK_KEY": XERO_KEY, "CCM_XERO__REDIRECT_URI": f"http://127.0.0.1:{port}/oauth/xero/callback",
    }  # fmt: skip


def qbo_env(handle: Any, port: int) -> dict[str, str]:
    return handle.env() | {  # PACING: false against a sandbox with limits off (pacing it would only wait)
        "CCM_QUICKBOOKS__WEBHOOK_VERIFIER": QBO_VERIFIER,
        "CCM_QUICKBOOKS__REDIRECT_URI": f"http://127.0.0.1:{port}/oauth/quickbooks/callback",
    }


class _Child:
    """A `ccm` subprocess whose stdout and stderr lines are collected as they come (by two threads)."""

    command = ""
    process: subprocess.Popen[str] | None
    lines: list[str]
    errors: list[str]

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def _spawn(self, args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
        self.process = subprocess.Popen(
            [CCM, self.command, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for stream, into in ((self.process.stdout, self.lines), (self.process.stderr, self.errors)):
            threading.Thread(target=_collect, args=(stream, into), daemon=True).start()
        return self.process

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Send `signum` and wait for the exit; returns the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
            raise AssertionError(f"ccm {self.command} did not stop within the shutdown time") from None

    def output(self) -> str:
        return "".join(self.lines) + "".join(self.errors)


@dataclass
class Serve(_Child):
    """A `ccm serve` subprocess."""

    env: dict[str, str]
    port: int
    args: tuple[str, ...] = ()  # e.g. ("--no-worker",): PostgreSQL, `ccm worker` processes do the work
    process: subprocess.Popen[str] | None = None
    lines: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    command = "serve"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> Serve:
        process = self._spawn(list(self.args), self.env | {"CCM_SERVE__PORT": str(self.port)})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"ccm serve exited {process.returncode}: {''.join(self.errors)[-2000:]}")
            try:
                if requests.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise AssertionError(f"ccm serve did not come up: {''.join(self.errors)[-2000:]}")

    def health(self) -> dict[str, Any]:
        return dict(requests.get(self.url + "/healthz", timeout=5).json())


def _collect(stream: Any, into: list[str]) -> None:
    for line in iter(stream.readline, ""):
        into.append(line)


@contextmanager
def serving(env: dict[str, str], port: int | None = None, args: tuple[str, ...] = ()) -> Iterator[Serve]:
    server = Serve(env, port or free_port(), args).start()
    try:
        yield server
    finally:
        if server.process is not None and server.process.poll() is None:
            server.stop()


@dataclass
class Worker(_Child):
    """A `ccm worker` subprocess (PostgreSQL)."""

    env: dict[str, str]
    args: tuple[str, ...] = ()
    process: subprocess.Popen[str] | None = None
    lines: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    command = "worker"

    def start(self, timeout: float = 30) -> Worker:
        process = self._spawn(list(self.args), self.env | {"PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"ccm worker exited {process.returncode}: {self.output()[-2000:]}")
            if any("ccm worker:" in line and "running" in line for line in self.lines):
                return self
            time.sleep(0.05)
        raise AssertionError(f"ccm worker did not start: {self.output()[-2000:]}")

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 40) -> int:
        return super().stop(signum, timeout)


@contextmanager
def workers(env: dict[str, str], count: int, args: tuple[str, ...] = ()) -> Iterator[list[Worker]]:
    """`count` workers, stopped (SIGTERM) at the end unless already gone."""
    started: list[Worker] = []
    try:
        for _ in range(count):
            started.append(Worker(env, args).start())
        yield started
    finally:
        for worker in started:
            if worker.process is not None and worker.process.poll() is None:
                worker.stop()


def invite(env: dict[str, str], ledger: str, tenant: str, *options: str) -> str:
    """`ccm invite` as the operator runs it on the server's machine; returns the link it printed."""
    done = subprocess.run([CCM, "invite", tenant, "--ledger", ledger, *options], env=env, capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    links = [w for w in done.stdout.split() if "/connect/" in w and "invite=" in w]
    assert len(links) == 1, done.stdout
    return links[0]


def connect(
    server: Serve,
    ledger: str,
    tenant: str,
    sandbox: Any,
    *,
    choose: str | None = None,
    allow: bool = True,
    **fields: str,
) -> requests.Response:
    """The operator's invite, then what the firm owner's browser does with it; returns the last page ccm
    showed. `fields` are the new tenant's details, as `ccm invite` options (timezone="UTC", ...)."""
    link = quick_invite(server.env, ledger, tenant, **fields)
    answer = follow(server.url, link, sandbox, choose=choose, allow=allow)
    for _ in range(2):  # on a clock at 14,400x an authorization code lives 0.02 real seconds: a slow machine
        if (
            "invalid_grant" not in answer.text
        ):  # can let it expire on the way; the owner opens the link again,
            break  # as the page tells them to
        answer = follow(server.url, link, sandbox, choose=choose, allow=allow)
    return answer


def quick_invite(env: dict[str, str], ledger: str, tenant: str, **fields: str) -> str:
    """What `ccm invite` does, in-process: tests on a fast simulated clock cannot wait for a CLI to start."""
    settings = load_settings(None, env)
    store = Store.open(settings.db_url)
    try:
        with store.begin() as conn:
            try:
                get_tenant(conn, tenant)
                new = None
            except UnknownTenant:
                new = build(tenant, fields.pop("name", ""), ledger, **fields)
            token = invites.create(conn, tenant, ledger, new, datetime.now(UTC), timedelta(hours=1), "test")
    finally:
        store.close()
    return invites.link(flow(ledger).redirect_uri(settings), ledger, token)


def follow(
    server_url: str, link: str, sandbox: Any, *, choose: str | None = None, allow: bool = True
) -> requests.Response:
    """What a person's browser does with a connect link; returns the last page ccm showed."""
    ledger = urlparse(link).path.rsplit("/", 1)[1]
    http = requests.Session()
    first = http.get(link, allow_redirects=False, timeout=30)
    assert first.status_code == 302, first.text[:500]
    authorize = first.headers["location"]
    answer = http.get(authorize, allow_redirects=False, verify=str(sandbox.ca_path), timeout=30)
    if answer.status_code == 200:  # the ledger's consent form: the person decides
        params = dict(parse_qsl(urlparse(authorize).query))
        answer = http.post(sandbox.base_url + urlparse(authorize).path,
                           data={**params, "decision": "allow" if allow else "deny"}, allow_redirects=False,
                           verify=str(sandbox.ca_path), timeout=30)  # fmt: skip
    assert answer.status_code in (302, 303), answer.text[:500]
    page = http.get(answer.headers["location"], timeout=30)
    if choose is not None and 'name="choice"' in page.text:
        state = page.text.split('name="state" value="', 1)[1].split('"', 1)[0]
        page = http.post(f"{server_url}/connect/{ledger}/choose", data={"state": state, "choice": choose},
                         timeout=30)  # fmt: skip
    return page


def wait_for(check: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    """Poll `check` until it returns something true; fail after `timeout` real seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def night_rows(store: Store) -> list[Any]:
    with store.read() as conn:
        return list(conn.execute(select(nights).order_by(nights.c.tenant_id, nights.c.night)).all())


def night_syncs(store: Store) -> list[Any]:
    """Sync runs a night started, oldest first."""
    with store.read() as conn:
        query = select(sync_runs).where(sync_runs.c.trigger == "night").order_by(sync_runs.c.run_id)
        return list(conn.execute(query).all())


def local_dates(rows: list[Any], zone: Any) -> list[date]:
    return [r.started_at.astimezone(zone).date() for r in rows]


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def hours(n: float) -> timedelta:
    return timedelta(hours=n)
