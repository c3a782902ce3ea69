"""The bookkeeper's pages as a person uses them: a real `ccm serve`, a Xero sandbox firm whose night ran in
approve mode, a real SMTP server, and Debian's Chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from adapters.sandbox.clock import SandboxClock
from adapters.sandbox.generator import generate
from adapters.xero import sandbox as xero_sandbox
from connector.clock import Clock
from connector.config import load_settings
from connector.model import Tenant
from connector.store import Store
from connector.store.tenants import save_tenant
from connector.web import users
from connector.web.users import Role
from tests.conftest import unavailable
from tests.e2e.sandboxes import LONDON, XeroSide
from tests.serve.harness import CCM, Serve, clean_env, free_port, xero_env
from tests.smtp import Inbox, smtp_server

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
DAY = date(2026, 3, 10)  # a Tuesday: the night planned at 09:30 London, sent at 09:40
PLANNED_AT = "2026-03-10T09:30:00Z"
SEND_AT = "2026-03-10T09:40:00Z"
TENANT = "firm-xero"
OTHER = "other-firm"  # exists, granted to nobody but admins
PASSWORD = "correct horse battery staple"
# Screenshots land in the README's folder only when asked (CCM_SCREENSHOTS=docs/screenshots make test), so a
# test run never changes tracked files; otherwise in a folder of the run's own.
SHOTS = Path(os.environ.get("CCM_SCREENSHOTS") or tempfile.mkdtemp(prefix="ccm-screenshots-"))


@dataclass
class Site:
    server: Serve
    env: dict[str, str]
    inbox: Inbox
    store: Store
    browser: Any

    @property
    def url(self) -> str:
        return self.server.url

    def ccm(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([CCM, *args], env=self.env, input=stdin, capture_output=True, text=True,
                              timeout=120, check=False)  # fmt: skip

    def page(self, width: int = 1280, height: int = 900) -> Any:
        context = self.browser.new_context(viewport={"width": width, "height": height})
        return context.new_page()

    def signed_in(self, name: str, width: int = 1280, height: int = 900) -> Any:
        page = self.page(width, height)
        page.goto(self.url + "/login")
        page.get_by_label("Name").fill(name)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(self.url + "/")
        return page


def _chromium() -> None:
    if os.path.exists(CHROMIUM):
        return
    unavailable(f"Debian's Chromium is not at {CHROMIUM} (`make chromium` installs it)")


@pytest.fixture(scope="package")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    _chromium()
    from playwright.sync_api import sync_playwright

    home = tmp_path_factory.mktemp("web") / "home"
    firm = generate(3, "demo", today=DAY, name="Harbour Joinery Ltd")
    handle = xero_sandbox.start(firm, clock=SandboxClock(datetime(2026, 3, 10, 9, 0, tzinfo=UTC), 0),
                                limits=False)  # fmt: skip
    port = free_port()
    with smtp_server() as inbox:
        # The server's clock stands before the morning's send time, so its own send tick leaves the approved
        # reminders to `ccm outbox send`; its next night is the next day's.
        serve_clock = Clock(datetime(2026, 3, 10, 3, 0, tzinfo=UTC), time.time(), 1.0).spec()
        env = clean_env() | xero_env(handle, port) | {
            "CCM_HOME": str(home), "CCM_SMTP__HOST": inbox.host, "CCM_SMTP__PORT": str(inbox.port),
            "CCM_SMTP__FROM_ADDRESS": "accounts@harbour.example", "CCM_SERVE__CLOCK": serve_clock,
            "CCM_SERVE__MODE": "approve",
        }  # fmt: skip
        settings = load_settings(None, env)
        store = Store.open(settings.db_url)
        side = XeroSide(handle)
        side.connect(settings, store, Tenant(TENANT, firm.name, "xero", *LONDON))
        site = Site(Serve(env, port), env, inbox, store, None)
        done = site.ccm("run", "--approve", "-t", TENANT, "--at", PLANNED_AT)
        assert done.returncode == 0, done.stdout + done.stderr
        done = site.ccm("users", "add", "ann", "--role", "bookkeeper", "--tenants", TENANT, "--password-stdin",
                        stdin=PASSWORD + "\n")  # fmt: skip
        assert done.returncode == 0, done.stderr
        with store.begin() as conn:  # in-process: each `ccm` started costs seconds
            save_tenant(conn, Tenant(OTHER, "Other Firm Ltd", "xero", *LONDON))
            users.add(conn, "vic", Role.VIEWER, PASSWORD, datetime.now(UTC), [TENANT])
        site.server.start()
        try:
            with sync_playwright() as pw:
                site.browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
                yield site
                site.browser.close()
        finally:
            site.server.stop()
            store.close()
            handle.stop()
