"""Webhooks from the sandboxes reach `ccm serve` and lead to an incremental sync within seconds.

The sandboxes sign and deliver their events as the ledgers do (Xero per change, QuickBooks batched by its
notifier); the server answers at once, queues the sync, debounces it and runs it. A delivery with a bad
signature is refused with 401 and changes nothing; Xero's intent-to-receive handshake passes. Xero sends no
payment events: a payment posted there arrives with the invoice event's companion sync, and the server's
polling picks up payments that no event announces.
"""

from __future__ import annotations

import json
import subprocess
import time
from decimal import Decimal
from functools import partial
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from adapters.quickbooks import sandbox as qbo_sandbox
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
WITHIN = 10.0  # real seconds from a change in the ledger to the change in ccm's store


def _runs(store: Store, tenant: str) -> list:
    with store.read() as conn:
        query = select(sync_runs).where(sync_runs.c.tenant_id == tenant).order_by(sync_runs.c.run_id)
        return list(conn.execute(query).all())


def _value(store: Store, query) -> object:
    with store.read() as conn:
        return conn.execute(query).scalar()


def _synced_now(store: Store, tenant: str) -> bool:
    return any(r.trigger == "now" and r.outcome == "ok" for r in _runs(store, tenant))


def test_webhooks_lead_to_an_incremental_sync_within_seconds(tmp_path: Path):
    port = free_port()
    xero = xero_sandbox.start(
        seed=51, size="demo", limits=False, webhook_url=f"http://127.0.0.1:{port}/webhooks/xero"
    )
    qbo = qbo_sandbox.start(seed=52, size="demo", limits=False, webhook_url=f"http://127.0.0.1:{port}/webhooks/quickbooks",
                            webhook_format="cloudevents")  # fmt: skip
    home = tmp_path / "home"
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

            # Xero: a contact renamed and an invoice voided, each announced by an event.
            contact = next(iter(xero.book.contacts.by_id))
            before = len(_runs(store, "xr"))
            changed_at = time.monotonic()
            xero.change_contact(contact, name="Renamed By Webhook Ltd")
            wait_for(lambda: _value(store, select(customers.c.name).where(customers.c.id == contact))
                     == "Renamed By Webhook Ltd", WITHIN, "the renamed contact in ccm")  # fmt: skip
            assert time.monotonic() - changed_at < WITHIN
            new = _runs(store, "xr")[before:]
            assert [r.trigger for r in new] == ["webhook"]
            assert set(new[0].counts) == {"contacts"}  # incremental, and only what the event named

            # Xero: a payment (no event of its own) comes with the invoice event's companion sync.
            open_invoice = next(i for i in xero.book.invoices.by_id.values()
                                if i.status == "authorised" and i.kind == "sales")  # fmt: skip
            payment = xero.post_payment(open_invoice.id)
            wait_for(lambda: _value(store, select(payments.c.id).where(payments.c.id == payment.id)), WITHIN,
                     "the payment in ccm")  # fmt: skip

            # QuickBooks (CloudEvents): an invoice voided.
            qbo_invoice = _value(store, select(invoices.c.id).where(invoices.c.tenant_id == "qb",
                                                                    invoices.c.status == "open"))  # fmt: skip
            qbo.void_invoice(str(qbo_invoice))
            wait_for(lambda: _value(store, select(invoices.c.status).where(invoices.c.tenant_id == "qb",
                                                                           invoices.c.id == str(qbo_invoice)))
                     == "voided", WITHIN, "the voided QuickBooks invoice in ccm")  # fmt: skip

            # Bad signatures: 401, nothing queued, nothing synced.
            runs = len(_runs(store, "xr")) + len(_runs(store, "qb"))
            body = json.dumps({"events": [{"resourceId": contact, "eventCategory": "CONTACT", "eventType": "UPDATE",
                                           "tenantId": xero.book.tenant_id}], "firstEventSequence": 1,
                               "lastEventSequence": 1, "entropy": "X"}).encode()  # fmt: skip
            for ledger, header, key in (("xero", "x-xero-signature", XERO_KEY + "-wrong"),
                                        ("quickbooks", "intuit-signature", QBO_VERIFIER + "-wrong")):  # fmt: skip
                answer = requests.post(f"{server.url}/webhooks/{ledger}", data=body,
                                       headers={header: sign(body, key)}, timeout=5)  # fmt: skip
                assert answer.status_code == 401, answer.text
                unsigned = requests.post(f"{server.url}/webhooks/{ledger}", data=body, timeout=5)
                assert unsigned.status_code == 401
            assert _value(store, select(func.count()).select_from(sync_requests)) == 0
            time.sleep(2)  # longer than the debounce: a queued sync would have run by now
            assert len(_runs(store, "xr")) + len(_runs(store, "qb")) == runs
            listed = subprocess.run(
                [CCM, "log", "-t", "xr"], env=env, capture_output=True, text=True, check=False
            )
            assert "webhook" in listed.stdout and "now" in listed.stdout  # why each sync ran
            planned = subprocess.run([CCM, "schedule"], env=env, capture_output=True, text=True, check=False)
            assert f"serving: {server.url}" in planned.stdout
            assert "xr" in planned.stdout and "03:00" in planned.stdout
            metrics = requests.get(f"{server.url}/metrics", timeout=5).text
            assert 'ccm_webhooks_total{ledger="xero",result="rejected"} 3.0' in metrics  # + the handshake's
            assert 'ccm_webhooks_total{ledger="quickbooks",result="rejected"} 2.0' in metrics
            assert server.stop() == 0
            logged = server.output()
            assert "sync.finish" in logged  # debug logging was on
            vault_tokens = [TokenVault.open(store, load_settings(None, env)).get(t) for t in ("xr", "qb")]
            secrets = [xero.client_secret, qbo.client_secret, XERO_KEY, QBO_VERIFIER]
            secrets += [s for t in vault_tokens if t for s in (t.access_token, t.refresh_token)]
            assert not [s for s in secrets if s in logged]
    finally:
        xero.stop()
        qbo.stop()
        store.close()


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
