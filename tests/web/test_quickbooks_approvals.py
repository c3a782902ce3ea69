"""The approval flow in Chromium on a QuickBooks firm, as test_pages.py does it on Xero: sign in, approve one
reminder from its preview and reject another; the approved one arrives at the SMTP server, the rejected one
never does."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from adapters.quickbooks import sandbox as qbo_sandbox
from adapters.sandbox.clock import SandboxClock
from adapters.sandbox.generator import generate
from connector import outbox
from connector.clock import Clock
from connector.config import load_settings
from connector.model import Tenant
from connector.outbox import State
from connector.payloads import encode
from connector.store import Store
from tests.e2e.sandboxes import LONDON, QuickBooksSide
from tests.serve.harness import Serve, clean_env, free_port, qbo_env
from tests.smtp import smtp_server
from tests.web.conftest import DAY, PASSWORD, PLANNED_AT, SEND_AT, Site

TENANT = "firm-quickbooks"


@pytest.fixture(scope="module")
def qbo_site(tmp_path_factory: pytest.TempPathFactory, site: Site) -> Iterator[Site]:
    """A QuickBooks firm served like conftest's Xero one, in the same Chromium (one Playwright at a time)."""
    home = tmp_path_factory.mktemp("web-qbo") / "home"
    firm = generate(3, "demo", today=DAY, name="Harbour Joinery Ltd")
    handle = qbo_sandbox.start(firm, clock=SandboxClock(datetime(2026, 3, 10, 9, 0, tzinfo=UTC), 0),
                               limits=False)  # fmt: skip
    port = free_port()
    with smtp_server() as inbox:
        serve_clock = Clock(datetime(2026, 3, 10, 3, 0, tzinfo=UTC), time.time(), 1.0).spec()
        env = clean_env() | qbo_env(handle, port) | {
            "CCM_HOME": str(home), "CCM_SMTP__HOST": inbox.host, "CCM_SMTP__PORT": str(inbox.port),
            "CCM_SMTP__FROM_ADDRESS": "accounts@harbour.example", "CCM_SERVE__CLOCK": serve_clock,
            "CCM_SERVE__MODE": "approve",
        }  # fmt: skip
        settings = load_settings(None, env)
        store = Store.open(settings.db_url)
        QuickBooksSide(handle).connect(settings, store, Tenant(TENANT, firm.name, "quickbooks", *LONDON))
        qbo = Site(Serve(env, port), env, inbox, store, site.browser)
        done = qbo.ccm("run", "--approve", "-t", TENANT, "--at", PLANNED_AT)
        assert done.returncode == 0, done.stdout + done.stderr
        done = qbo.ccm("users", "add", "bea", "--role", "bookkeeper", "--tenants", TENANT, "--password-stdin",
                        stdin=PASSWORD + "\n")  # fmt: skip
        assert done.returncode == 0, done.stderr
        qbo.server.start()
        try:
            yield qbo
        finally:
            qbo.server.stop()
            store.close()
            handle.stop()


def state_of(site: Site, key: str) -> State:
    with site.store.read() as conn:
        found = outbox.get(conn, TENANT, key)
    assert found is not None
    return found.state


def test_a_bookkeeper_approves_one_quickbooks_reminder_and_rejects_another(qbo_site):
    site = qbo_site
    with site.store.read() as conn:
        waiting = outbox.actions(conn, TENANT, [State.AWAITING_APPROVAL])
    wanted = [
        a for a in waiting if a.kind == "reminder" and a.channel == "email" and encode(a.payload).get("email")
    ]
    assert len(wanted) >= 2, "the QuickBooks firm's night should plan several e-mail reminders"
    approved, rejected = wanted[0], wanted[1]

    page = site.signed_in("bea")
    page.goto(f"{site.url}/t/{TENANT}/approvals")
    card = page.locator("article").filter(has=page.locator(f'input[value="{approved.key}"]'))
    body = card.locator("iframe.mail").content_frame.locator("body").inner_text()
    assert str(encode(approved.payload)["customer_name"]) in body
    assert str(encode(approved.payload)["lines"][0]["number"]) in body
    page.locator(f'button[value="approve:{approved.key}"]').click()
    page.wait_for_url("**/approvals?done=approve&n=1")
    page.locator(f'button[value="reject:{rejected.key}"]').click()
    page.wait_for_url("**/approvals?done=reject&n=1")
    assert "1 action rejected" in page.get_by_role("status").inner_text()
    assert state_of(site, approved.key) is State.PLANNED
    assert state_of(site, rejected.key) is State.CANCELLED

    done = site.ccm("outbox", "send", "-t", TENANT, "--at", SEND_AT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [m["X-CCM-Action"] for m in site.inbox.messages] == [approved.key]
    assert [m["To"] for m in site.inbox.messages] == [encode(approved.payload)["email"]]
    assert state_of(site, approved.key) is State.SENT
    assert state_of(site, rejected.key) is State.CANCELLED  # and never sent
    page.context.close()
