"""The approvals page of a firm with many reminders awaiting approval: 20 a page, only the page drafted, the
Xero sandbox's counted API calls bounded (a view again within the TTL: none; the CSV: none; a low allowance:
none, said on the page), and "approve all N awaiting" only after "I have reviewed them", each audited."""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import requests
import uvicorn
from sqlalchemy import select
from starlette.applications import Starlette

from adapters.sandbox.clock import SandboxClock
from adapters.sandbox.generator import generate
from adapters.xero import sandbox as xero_sandbox
from connector import health, outbox
from connector.clock import Clock
from connector.config import load_settings
from connector.model import Tenant
from connector.outbox import State
from connector.serve.runtime import Runtime
from connector.store import Store
from connector.store.schema import web_audit
from connector.web import approvals, preview, users
from connector.web.pages import Pages
from connector.web.users import Role
from tests.e2e.sandboxes import LONDON, XeroSide
from tests.serve.harness import CCM, clean_env, free_port, xero_env
from tests.web.conftest import DAY, PASSWORD, PLANNED_AT

TENANT = "firm-many"
NOW = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)


@dataclass
class Firm:
    rt: Runtime
    tenant: Tenant
    handle: Any

    def calls(self) -> int:
        return int(self.handle.accounting.calls)


@pytest.fixture(scope="module")
def firm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Firm]:
    """A Xero firm of 50 customers whose night ran in approve mode: more than a page awaits approval."""

    home = tmp_path_factory.mktemp("web-paging") / "home"
    ledger_firm = generate(11, "demo", today=DAY, name="Harbour Joinery Ltd")
    handle = xero_sandbox.start(ledger_firm, clock=SandboxClock(datetime(2026, 3, 10, 9, 0, tzinfo=UTC), 0),
                                limits=False)  # fmt: skip
    env = clean_env() | xero_env(handle, free_port()) | {
        "CCM_HOME": str(home), "CCM_SMTP__FROM_ADDRESS": "accounts@harbour.example",
        "CCM_SERVE__MODE": "approve",
    }  # fmt: skip
    settings = load_settings(None, env)
    store = Store.open(settings.db_url)
    tenant = Tenant(TENANT, ledger_firm.name, "xero", *LONDON)
    XeroSide(handle).connect(settings, store, tenant)
    done = subprocess.run([CCM, "run", "--approve", "-t", TENANT, "--at", PLANNED_AT], env=env,
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    with store.begin() as conn:
        users.add(conn, "bea", Role.BOOKKEEPER, PASSWORD, datetime.now(UTC), [TENANT])
    rt = Runtime(settings, store, Clock(NOW, time.time(), 1.0), "test-paging")
    try:
        yield Firm(rt, tenant, handle)
    finally:
        store.close()
        handle.stop()


@pytest.fixture
def memo(monkeypatch: pytest.MonkeyPatch) -> preview.Memo:
    """A fresh memo for previews (none of another test's answers), with a budget that does not bite."""
    fresh = preview.Memo(per_minute=10_000)
    monkeypatch.setattr(preview, "MEMO", fresh)
    return fresh


def _mails(shown: approvals.Shown) -> list[preview.Preview]:
    return [p for p in shown.previews if p.rendered is not None]


def test_a_view_drafts_only_its_page_and_a_view_again_within_the_ttl_asks_the_ledger_nothing(firm, memo):
    before = firm.calls()
    first = approvals.shown(firm.rt, firm.tenant, {})
    spent = firm.calls() - before
    total = first.paging.total
    assert total > approvals.SIZE, f"the night should leave more than a page awaiting approval, not {total}"
    assert len(first.previews) == approvals.SIZE and first.paging.pages == -(-total // approvals.SIZE)
    mails = _mails(first)
    assert len(mails) >= 10
    # at most one call per invoice's pay link and one per customer's contact people, of this page only
    bound = sum(len(p.invoices) + 1 for p in mails)
    assert 0 < spent <= bound, (spent, bound)
    assert all(p.spared == "" for p in mails)
    assert any("invoice" in p.rendered.html.lower() for p in mails if p.rendered)

    before = firm.calls()
    again = approvals.shown(firm.rt, firm.tenant, {})
    assert firm.calls() - before == 0  # within the TTL: what the ledger said is reused
    assert [p.rendered.html for p in _mails(again) if p.rendered] == [
        p.rendered.html for p in mails if p.rendered
    ]

    before = firm.calls()
    second = approvals.shown(firm.rt, firm.tenant, {"page": "2"})
    assert firm.calls() - before <= sum(len(p.invoices) + 1 for p in _mails(second))  # its own, no more
    keys = [p.action.key for p in first.previews]
    assert second.paging.number == 2 and not {p.action.key for p in second.previews} & set(keys)
    with firm.rt.store.read() as conn:
        ordered = [a.key for a in outbox.actions(conn, TENANT, [State.AWAITING_APPROVAL])]
    assert keys == ordered[: approvals.SIZE]  # the order they go out in: stable from view to view


def test_the_csv_lists_every_action_and_asks_the_ledger_nothing(firm, memo):
    before = firm.calls()
    every = approvals.listed(firm.rt, firm.tenant)
    assert firm.calls() - before == 0
    assert len(every) == approvals.shown(firm.rt, firm.tenant, {}).paging.total > approvals.SIZE
    assert any(p.rendered is not None and p.rendered.subject for p in every)


def test_previews_keep_to_their_share_of_the_minute_and_say_what_they_left_out(firm, monkeypatch):
    monkeypatch.setattr(preview, "MEMO", preview.Memo(per_minute=5))
    before = firm.calls()
    page = approvals.shown(firm.rt, firm.tenant, {})
    assert firm.calls() - before == 5
    spared = [p for p in _mails(page) if p.spared]
    assert spared and all("reload in a minute" in p.spared for p in spared)
    assert not page.low


def test_a_low_allowance_spends_no_call_and_the_page_says_so(firm, memo):
    with firm.rt.store.begin() as conn:
        health.record(conn, TENANT, [health.Issue("day_limit", "412 of 5,000 calls left today")], NOW)
    try:
        before = firm.calls()
        page = approvals.shown(firm.rt, firm.tenant, {})
        assert firm.calls() - before == 0
        assert page.low
        assert all("allowance is low" in p.spared for p in _mails(page))
    finally:
        with firm.rt.store.begin() as conn:
            health.record(conn, TENANT, [], NOW)


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


@pytest.fixture
def served(firm: Firm) -> Iterator[str]:
    """The pages of `firm`'s runtime served on loopback in this process (so the test sees its store)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(Starlette(routes=Pages(firm.rt).routes()), host="127.0.0.1",
                                          port=port, log_level="warning"))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def test_approve_all_needs_the_review_ticked_and_the_number_seen_and_audits_each(firm, memo, served):
    client = requests.Session()
    form = client.get(f"{served}/login", timeout=10)
    client.post(f"{served}/login", data={"name": "bea", "password": PASSWORD, "csrf": _csrf(form.text)},
                timeout=10)  # fmt: skip
    url = f"{served}/t/{TENANT}/approvals"
    page = client.get(url + "?page=2", timeout=60)
    assert page.status_code == 200, page.text[:300]
    total = approvals.shown(firm.rt, firm.tenant, {}).paging.total
    assert f"Approve all {total} awaiting" in page.text and "page 2 of" in page.text
    assert 'rel="prev"' in page.text
    csrf = _csrf(page.text)
    unticked = client.post(url, data={"csrf": csrf, "do": "approve_all", "count": str(total)}, timeout=10)
    assert unticked.status_code == 400 and "I have reviewed them" in unticked.text
    stale = client.post(url, data={"csrf": csrf, "do": "approve_all", "count": str(total - 1),
                                   "reviewed": "yes"}, timeout=10)  # fmt: skip
    assert stale.status_code == 409
    with firm.rt.store.read() as conn:
        assert len(outbox.actions(conn, TENANT, [State.AWAITING_APPROVAL])) == total  # nothing changed
    done = client.post(url, data={"csrf": csrf, "do": "approve_all", "count": str(total), "reviewed": "yes",
                                  "page": "2"}, allow_redirects=False, timeout=30)  # fmt: skip
    assert done.status_code == 303
    assert done.headers["location"] == f"/t/{TENANT}/approvals?done=approve&n={total}&page=2"
    with firm.rt.store.read() as conn:
        assert outbox.actions(conn, TENANT, [State.AWAITING_APPROVAL]) == []
        audited = [
            r.what for r in conn.execute(select(web_audit.c.what).where(web_audit.c.tenant_id == TENANT))
        ]
    assert len([w for w in audited if w.startswith("outbox.approve ")]) == total
