"""The server's HTTP app in-process, over real HTTP: /healthz, /metrics, webhook edge cases, 503 when stopping."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from sqlalchemy import func, select

from adapters.quickbooks.settings import QuickBooksSettings
from adapters.sandbox.webhooks import sign
from adapters.xero.settings import XeroSettings
from connector.config import ServeSettings, Settings
from connector.model import Connection, Tenant
from connector.serve.process import Server
from connector.store import Store
from connector.store.schema import servers, sync_requests
from connector.store.tenants import save_connection, save_tenant

KEY = "app-test-webhook-key"
VERIFIER = "app-test-verifier"
METRICS_TOKEN = "app-test-metrics-token"
BEARER = {"Authorization": f"Bearer {METRICS_TOKEN}"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    settings = Settings(data_dir=tmp_path, ledgers={"xero": XeroSettings(webhook_key=KEY),
                                                    "quickbooks": QuickBooksSettings(webhook_verifier=VERIFIER)},
                        serve=ServeSettings(port=0, poll_minutes=0, debounce_seconds=3600,
                                            metrics_token=METRICS_TOKEN,
                                            # 14 hours past acme's night: nothing to catch up at start
                                            clock="2026-11-30T16:00:00+00:00", misfire_grace_hours=1))  # fmt: skip
    store = Store.open(settings.db_url)
    with store.begin() as conn:
        save_tenant(conn, Tenant("acme", "Acme Ltd", "xero"))
        save_connection(conn, Connection("acme", "xero", "org-acme"))
    running = Server(settings, store)
    running.start()
    yield running
    running.stop(5)
    store.close()


def _xero(server: Server, events: list[dict[str, str]], key: str = KEY) -> requests.Response:
    body = json.dumps(
        {"events": events, "firstEventSequence": 1, "lastEventSequence": 1, "entropy": "E"}
    ).encode()
    return requests.post(f"{server.url}/webhooks/xero", data=body, headers={"x-xero-signature": sign(body, key)},
                         timeout=5)  # fmt: skip


def _requests(server: Server) -> list[tuple[str, str | None, str]]:
    with server.rt.store.read() as conn:
        rows = conn.execute(select(sync_requests.c.tenant_id, sync_requests.c.stream, sync_requests.c.reason))
        return sorted((t, s, r) for t, s, r in rows)


def test_health_tells_anyone_how_the_server_is_and_the_operator_what_it_is_doing(server: Server):
    answer = requests.get(f"{server.url}/healthz", timeout=5)
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "ok" and body["database"] == "ok" and body["scheduler"] == "running"
    assert body["workers"] == {"busy": 0, "of": 4} and body["queue"]["servers"] == 1
    assert body["scheduled"] == 1  # acme's nightly job
    assert set(body) == {"status", "database", "scheduler", "scheduled", "workers", "queue"}  # counts only

    wrong = requests.get(f"{server.url}/healthz", headers={"Authorization": "Bearer nope"}, timeout=5)
    assert set(wrong.json()) == set(body)
    detailed = requests.get(f"{server.url}/healthz", headers=BEARER, timeout=5).json()
    assert detailed["server"] == server.rt.server_id and detailed["workers"]["tenants"] == {}
    assert "last" in detailed and "clock" in detailed


def test_an_invoice_event_queues_its_stream_and_xeros_payment_streams(server: Server):
    answer = _xero(server, [{"resourceId": "inv-1", "eventCategory": "INVOICE", "eventType": "UPDATE",
                             "tenantId": "org-acme", "eventDateUtc": "2026-11-30T10:00:00.000"}])  # fmt: skip
    assert (answer.status_code, answer.content) == (200, b"")
    assert _requests(server) == [
        ("acme", s, "webhook") for s in ("invoices", "overpayments", "payments", "prepayments")
    ]


def test_events_for_an_organisation_ccm_does_not_know_are_acknowledged_and_dropped(server: Server):
    answer = _xero(server, [{"resourceId": "c-1", "eventCategory": "CONTACT", "eventType": "UPDATE",
                             "tenantId": "org-unknown"}])  # fmt: skip
    assert answer.status_code == 200
    assert _requests(server) == []


def test_bad_deliveries_get_the_status_that_says_why(server: Server):
    assert _xero(server, [], key="wrong").status_code == 401
    assert requests.post(f"{server.url}/webhooks/sage", data=b"{}", timeout=5).status_code == 404
    huge = requests.post(f"{server.url}/webhooks/quickbooks", data=b"x" * 1_000_001, timeout=5)
    assert huge.status_code == 413
    not_json = b"not json"
    garbled = requests.post(f"{server.url}/webhooks/quickbooks", data=not_json,
                            headers={"intuit-signature": sign(not_json, VERIFIER)}, timeout=5)  # fmt: skip
    assert garbled.status_code == 400 and garbled.text == "webhook body is not JSON"
    assert _requests(server) == []


def test_metrics_are_prometheus_text_with_the_queue(server: Server):
    _xero(server, [], key="wrong")
    anonymous = requests.get(f"{server.url}/metrics", timeout=5)
    assert anonymous.status_code == 401 and "ccm_" not in anonymous.text
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    answer = requests.get(f"{server.url}/metrics", headers=BEARER, timeout=5)
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = answer.text
    for name in ("ccm_runs_total", "ccm_run_failures_total", "ccm_api_calls_total", "ccm_rate_limited_total",
                 "ccm_reminders_sent_total", "ccm_queue_depth", "ccm_workers_busy"):  # fmt: skip
        assert f"# TYPE {name.removesuffix('_total')}" in text or f"# TYPE {name}" in text, name
    assert 'ccm_webhooks_total{ledger="xero",result="rejected"} 1.0' in text
    assert 'ccm_queue_depth{queue="sync_requests"} 0.0' in text


def test_while_stopping_health_is_503_and_the_server_row_goes(server: Server):
    server.rt.stopping.set()
    answer = requests.get(f"{server.url}/healthz", timeout=5)
    assert answer.status_code == 503 and answer.json()["status"] == "stopping"
    assert server.stop(5)
    with server.rt.store.read() as conn:
        assert conn.execute(select(func.count()).select_from(servers)).scalar_one() == 0
