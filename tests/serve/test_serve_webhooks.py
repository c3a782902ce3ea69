"""Webhooks from the sandboxes reach `ccm serve` and lead to an incremental sync of what they name.

The sandboxes sign and deliver their events as the ledgers do (Xero per change, QuickBooks batched by its
notifier); the server answers at once, queues the sync, debounces it and runs it. A delivery with a bad
signature is refused with 401 and changes nothing; Xero's intent-to-receive handshake passes. Xero sends no
payment events: a payment posted there arrives with the invoice event's companion sync, and the server's
polling picks up payments that no event announces. How fast is not asserted here (a busy machine is
slow, not wrong): waits end on the change arriving, and WITHIN only bounds a server that never delivers.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from adapters.quickbooks import sandbox as qbo_sandbox
from adapters.sandbox.clock import SandboxClock
from adapters.sandbox.generator import generate
from adapters.sandbox.webhooks import sign
from adapters.xero import sandbox as xero_sandbox
from connector.config import load_settings
from connector.oauth import TokenVault
from connector.store import Store
from connector.store.schema import customers, invoices, payments, sync_requests, sync_runs
from tests.serve.harness import (
    CCM,
    QBO_VERIFIER,
    XERO_KEY,
    Serve,
    SimClock,
    clean_env,
    connect,
    free_port,
    qbo_env,
    serving,
    utc,
    wait_for,
    xero_env,
)

pytestmark = pytest.mark.slow
WITHIN = 30.0  # real seconds to give up on a change that never reaches ccm's store (a deadline, not a target)


@dataclass(frozen=True)
class Served:
    """One `ccm serve` with Xero tenant 'xr' and QuickBooks tenant 'qb' connected, each synced once."""

    server: Serve
    store: Store
    env: dict[str, str]
    xero: Any
    qbo: Any


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The server runs on the machine's clock: `ccm sync --now` stamps its request with it. Each sandbox's firm
    ends the day before that clock's date, so data and clocks agree whatever the day; the night (03:00) never
    counts in what the tests below assert (they look at the runs a webhook or a person asked for)."""
    port = free_port()
    real = SandboxClock()
    xero = xero_sandbox.start(generate(51, "demo", today=real.now().date()), clock=real, limits=False,
                              webhook_url=f"http://127.0.0.1:{port}/webhooks/xero")  # fmt: skip
    qbo = qbo_sandbox.start(generate(52, "demo", today=real.now().date()), seed=52, clock=real, limits=False,
                            webhook_url=f"http://127.0.0.1:{port}/webhooks/quickbooks",
                            webhook_format="cloudevents")  # fmt: skip
    home = tmp_path_factory.mktemp("webhooks") / "home"
    env = clean_env() | xero_env(xero, port) | qbo_env(qbo, port) | {
        "CCM_HOME": str(home), "CCM_SERVE__POLL_MINUTES": "0", "CCM_SERVE__DEBOUNCE_SECONDS": "1",
        "CCM_SERVE__TICK_SECONDS": "0.2", "CCM_LOG__LEVEL": "debug",  # every log line: none may hold a secret
    }  # fmt: skip
    store = Store.open(f"sqlite:///{home / 'ccm.db'}")
    try:
        with serving(env, port) as server:
            assert xero.intent_to_receive(f"{server.url}/webhooks/xero").passed
            for ledger, tenant, sandbox in (("xero", "xr", xero), ("quickbooks", "qb", qbo)):
                assert "is connected to" in connect(server, ledger, tenant, sandbox, night_time="03:00").text
                asked = subprocess.run([CCM, "sync", "--now", "-t", tenant], env=env, capture_output=True,
                                       text=True, check=False)  # fmt: skip
                assert asked.returncode == 0, asked.stderr
                assert "queued an incremental sync" in asked.stdout
                wait_for(partial(_synced_now, store, tenant), 30, f"{tenant}'s first sync")
            yield Served(server, store, env, xero, qbo)
    finally:
        xero.stop()
        qbo.stop()
        store.close()


def _runs(store: Store, tenant: str) -> list:
    with store.read() as conn:
        query = select(sync_runs).where(sync_runs.c.tenant_id == tenant).order_by(sync_runs.c.run_id)
        return list(conn.execute(query).all())


def _asked(store: Store, tenant: str) -> list:
    """The runs a webhook or a person asked for (not the tenant's night, which falls when the clock says)."""
    return [r for r in _runs(store, tenant) if r.trigger != "night"]


def _value(store: Store, query) -> object:
    with store.read() as conn:
        return conn.execute(query).scalar()


def _synced_now(store: Store, tenant: str) -> bool:
    return any(r.trigger == "now" and r.outcome == "ok" for r in _runs(store, tenant))


def _rename(s: Served, name: str) -> str:
    """Rename a Xero contact in the ledger and wait until ccm's store has the new name; returns its id."""
    contact = next(iter(s.xero.book.contacts.by_id))
    s.xero.change_contact(contact, name=name)
    wait_for(lambda: _value(s.store, select(customers.c.name).where(customers.c.id == contact)) == name, WITHIN,
             f"the contact renamed {name!r} in ccm")  # fmt: skip
    return contact


def _rejected(s: Served) -> dict[str, float]:
    text = requests.get(f"{s.server.url}/metrics", timeout=5).text
    found = {}
    for ledger in ("xero", "quickbooks"):
        prefix = f'ccm_webhooks_total{{ledger="{ledger}",result="rejected"}} '
        found[ledger] = next((float(line.removeprefix(prefix)) for line in text.splitlines()
                              if line.startswith(prefix)), 0.0)  # fmt: skip
    return found


def test_a_xero_contact_event_leads_to_an_incremental_sync_of_contacts_only(served: Served):
    before = len(_asked(served.store, "xr"))
    _rename(served, "Renamed By Webhook Ltd")
    new = _asked(served.store, "xr")[before:]
    assert [r.trigger for r in new] == ["webhook"]
    assert set(new[0].counts) == {"contacts"}  # incremental, and only what the event named


def test_a_xero_payment_comes_with_the_invoice_events_companion_sync(served: Served):
    open_invoice = next(i for i in served.xero.book.invoices.by_id.values()
                        if i.status == "authorised" and i.kind == "sales")  # fmt: skip
    payment = served.xero.post_payment(open_invoice.id)  # Xero sends no payment event of its own
    wait_for(lambda: _value(served.store, select(payments.c.id).where(payments.c.id == payment.id)), WITHIN,
             "the payment in ccm")  # fmt: skip


def test_a_voided_quickbooks_invoice_arrives_by_a_cloudevents_notification(served: Served):
    invoice = str(_value(served.store, select(invoices.c.id).where(invoices.c.tenant_id == "qb",
                                                                   invoices.c.status == "open")))  # fmt: skip
    served.qbo.void_invoice(invoice)
    status = select(invoices.c.status).where(invoices.c.tenant_id == "qb", invoices.c.id == invoice)
    wait_for(lambda: _value(served.store, status) == "voided", WITHIN, "the voided QuickBooks invoice in ccm")


def test_a_delivery_with_a_bad_or_no_signature_is_refused_and_queues_nothing(served: Served):
    contact = next(iter(served.xero.book.contacts.by_id))
    body = json.dumps({"events": [{"resourceId": contact, "eventCategory": "INVOICE", "eventType": "UPDATE",
                                   "tenantId": served.xero.book.tenant_id}], "firstEventSequence": 1,
                       "lastEventSequence": 1, "entropy": "X"}).encode()  # fmt: skip
    rejected = _rejected(served)
    runs = {t: len(_asked(served.store, t)) for t in ("xr", "qb")}
    for ledger, header, key in (("xero", "x-xero-signature", XERO_KEY + "-wrong"),
                                ("quickbooks", "intuit-signature", QBO_VERIFIER + "-wrong")):  # fmt: skip
        answer = requests.post(f"{served.server.url}/webhooks/{ledger}", data=body,
                               headers={header: sign(body, key)}, timeout=5)  # fmt: skip
        assert answer.status_code == 401, answer.text
        unsigned = requests.post(f"{served.server.url}/webhooks/{ledger}", data=body, timeout=5)
        assert unsigned.status_code == 401
    assert _value(served.store, select(func.count()).select_from(sync_requests)) == 0
    assert {k: v - rejected[k] for k, v in _rejected(served).items()} == {"xero": 2.0, "quickbooks": 2.0}
    # A signed event after the refused ones: once its sync has run, one they had queued would have run too
    # (the same debounce, an earlier request), and would have read invoices, which this one does not.
    _rename(served, "Renamed After The Forgeries Ltd")
    new = {t: _asked(served.store, t)[runs[t] :] for t in ("xr", "qb")}
    assert [(r.trigger, set(r.counts)) for r in new["xr"]] == [("webhook", {"contacts"})]
    assert new["qb"] == []


def test_the_intent_to_receive_handshake_passes_and_its_bad_half_is_counted(served: Served):
    rejected = _rejected(served)["xero"]
    assert served.xero.intent_to_receive(f"{served.server.url}/webhooks/xero").passed
    assert _rejected(served)["xero"] == rejected + 1  # the handshake's badly signed delivery: refused


def test_ccm_log_says_why_each_sync_ran_and_ccm_schedule_finds_the_server(served: Served):
    _rename(served, "Renamed For The Log Ltd")  # a webhook's sync, beside the first one a person asked for
    listed = subprocess.run([CCM, "log", "-t", "xr"], env=served.env, capture_output=True, text=True,
                            check=False)  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert "webhook" in listed.stdout and "now" in listed.stdout
    planned = subprocess.run([CCM, "schedule"], env=served.env, capture_output=True, text=True, check=False)
    assert f"serving: {served.server.url}" in planned.stdout
    assert "xr" in planned.stdout and "03:00" in planned.stdout


def test_last_the_server_stops_cleanly_and_its_debug_log_holds_no_secret(served: Served):
    """Stops the module's server: it stays the last test of this module (pytest keeps file order)."""
    assert served.server.stop() == 0
    logged = served.server.output()
    assert "sync.finish" in logged  # debug logging was on
    vault = TokenVault.open(served.store, load_settings(None, served.env))
    secrets = [served.xero.client_secret, served.qbo.client_secret, XERO_KEY, QBO_VERIFIER]
    secrets += [s for t in (vault.get("xr"), vault.get("qb")) if t for s in (t.access_token, t.refresh_token)]
    assert not [s for s in secrets if s in logged]


def test_payments_no_event_announces_are_polled(tmp_path: Path):
    clock = SimClock.starting(utc(2026, 11, 24, 10), 60)  # a minute a second: polls every 5 s
    port = free_port()
    xero = xero_sandbox.start(clock.firm(53), clock=clock.sandbox(), limits=False)  # no webhooks at all
    home = tmp_path / "home"
    env = clean_env() | xero_env(xero, port) | {
        "CCM_HOME": str(home), "CCM_SERVE__CLOCK": clock.spec, "CCM_SERVE__POLL_MINUTES": "5",
        "CCM_SERVE__DEBOUNCE_SECONDS": "0", "CCM_SERVE__TICK_SECONDS": "0.2",
    }  # fmt: skip
    store = Store.open(f"sqlite:///{home / 'ccm.db'}")
    try:
        with serving(env, port) as server:
            assert "is connected to" in connect(server, "xero", "xr", xero, night_time="03:00").text
            wait_for(lambda: any(r.trigger == "poll" for r in _runs(store, "xr")), 20, "a first poll")
            invoice = next(
                i for i in xero.book.invoices.by_id.values() if i.status == "authorised" and i.kind == "sales"
            )
            payment = xero.post_payment(invoice.id, Decimal("1.00"))
            wait_for(lambda: _value(store, select(payments.c.id).where(payments.c.id == payment.id)), 20,
                     "the payment, polled")  # fmt: skip
            polls = [r for r in _runs(store, "xr") if r.trigger == "poll"]
            assert all(set(r.counts) <= {"payments", "overpayments", "prepayments"} for r in polls)
            assert server.stop() == 0
    finally:
        xero.stop()
        store.close()
