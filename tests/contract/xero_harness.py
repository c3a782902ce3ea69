"""The contract harness for Xero: the local Xero sandbox (adapters/xero/sandbox) and the Xero adapter."""

from __future__ import annotations

import gc
import threading
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import requests

from adapters.sandbox.clock import SandboxClock
from adapters.sandbox.faults import Faults
from adapters.sandbox.generator import FirmSize
from adapters.sandbox.records import GenPhone
from adapters.xero import connect
from adapters.xero.pull import ENDPOINTS
from adapters.xero.sandbox import XeroSandbox, start
from adapters.xero.settings import XeroSettings, xero_settings
from adapters.xero.webhooks import SIGNATURE_HEADER, signature
from connector import ledger as registry
from connector.config import Settings
from connector.ledger import AdapterContext, Ledger, Services
from connector.mapping import CompiledMapping, load_mapping
from connector.model import Tenant
from connector.oauth import TokenVault, load_key
from connector.store import Store
from connector.store.tenants import get_connection
from tests.contract.harness import Delivery, Stats

WEBHOOK_KEY = "contract-webhook-key-0123456789abcdef"
HOLD_GROUP = "Credit Hold"  # mappings/xero.yaml options.hold_group


class _Receiver(BaseHTTPRequestHandler):
    """Records the webhook deliveries the sandbox makes (plain HTTP on loopback) and answers 200."""

    received: ClassVar[list[tuple[dict[str, str], bytes]]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        self.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


class _CountedFaults(Faults):
    """The sandbox's fault injection, plus "fail the next N answers" for deterministic bursts."""

    fail_next: int = 0
    fail_status: int = 503

    def draw_error(self) -> int | None:
        if self.fail_next > 0:
            self.fail_next -= 1
            return self.fail_status
        return super().draw_error()


class XeroHarness:
    name = "xero"
    # One If-Modified-Since request per stream: contacts, invoices, credit notes, payments, overpayments and
    # prepayments.
    unchanged_sync_calls = 6
    access_token_life_s = 30 * 60
    refresh_rotation_s = 0  # every refresh returns a new refresh token
    refresh_idle_life_s = 60 * 24 * 3600
    write_requests = r"^(PUT|POST|DELETE) "  # Xero reads are GETs

    def start(
        self, store: Store, tmp_path: Path, *, limits: bool = False, size: str | FirmSize = "demo",
        speed: float | None = None, day_limit: int = 5000, granular: bool = False,
    ) -> Settings:  # fmt: skip
        """Start the sandbox (the extra arguments are for the Xero-only tests in tests/xero)."""
        # 20x: a 60-second rate window passes in 3 real seconds, a 30-minute token in 90.
        speed = speed or (20.0 if limits else 60.0)
        self.clock = SandboxClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC), speed=speed)
        self.store = store
        self._received: list[tuple[dict[str, str], bytes]] = []
        handler = type("Receiver", (_Receiver,), {"received": self._received})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        serve = self._server.serve_forever
        threading.Thread(target=serve, args=(0.05,), daemon=True).start()  # polls often: stops fast
        self.faults = _CountedFaults()
        self.sandbox: XeroSandbox = start(
            seed=7, size=size, clock=self.clock, limits=limits, faults=self.faults, webhook_key=WEBHOOK_KEY,
            day_limit=day_limit,
            webhook_url=f"http://127.0.0.1:{self._server.server_address[1]}/webhooks/xero",
        )  # fmt: skip
        url = self.sandbox.base_url
        self.settings = Settings(data_dir=tmp_path / "ccm", ledgers={"xero": XeroSettings(
            client_id=self.sandbox.client_id, client_secret=self.sandbox.client_secret, webhook_key=WEBHOOK_KEY,
            login_url=url, identity_url=url, api_url=url, ca_bundle=self.sandbox.ca_path, granular_scopes=granular,
        )})  # fmt: skip
        self.vault = TokenVault(store, load_key(self.settings), self.clock.now)
        self.tenant = Tenant("acme", "Acme Ltd", "xero")
        return self.settings

    def stop(self) -> None:
        # Adapters built by ledger() sit in reference cycles with their open keep-alive connections: collect
        # them so the sandbox's server stops at once instead of waiting for those connections to go.
        gc.collect()
        self.sandbox.stop()
        self._server.shutdown()
        self._server.server_close()

    def connect(self) -> Tenant:
        auth = connect.begin(xero_settings(self.settings))
        code = connect.consent_code(auth, xero_settings(self.settings))
        tokens, orgs = connect.complete(
            xero_settings(self.settings), code, auth.code_verifier, self.clock.now()
        )
        connect.save(self.store, self.vault, self.tenant, connect.choose(orgs), tokens)
        return self.tenant

    def services(self) -> Services:
        return Services(self.store, self.clock, vault=self.vault)

    def ledger(self) -> Ledger:
        with self.store.read() as conn:
            link = get_connection(conn, self.tenant.id)
        assert link is not None
        return registry.get("xero").factory(
            AdapterContext(self.tenant.id, link.external_id, self.settings, self.services())
        )

    def mapping(self) -> CompiledMapping:
        spec = registry.get("xero")
        return load_mapping(spec.mapping, schema=spec.schema)

    def now(self) -> datetime:
        return self.clock.now()

    # ---- the books
    def expected_ids(self) -> dict[str, set[str]]:
        book = self.sandbox.book
        out: dict[str, set[str]] = {}
        with book.lock:
            for name, stream in self.mapping().streams.items():
                kind = ENDPOINTS[name].key
                ids = {
                    rid for rid, rec in book.collection(kind).by_id.items()
                    if stream.accepts(book.render(kind, rec))
                }  # fmt: skip
                out.setdefault(stream.record, set()).update(ids)
        return out

    def _open_invoice(self) -> str:
        book = self.sandbox.book
        with book.lock:
            for inv in sorted(book.invoices.by_id.values(), key=lambda i: i.id):
                if inv.kind == "sales" and book.invoice_status(inv) == "AUTHORISED" and inv.currency == "GBP":
                    return inv.id
        raise AssertionError("the demo firm has no open sales invoice")

    def pay_invoice(self) -> str:
        invoice = self._open_invoice()
        self.sandbox.post_payment(invoice, Decimal("1.00"))
        return invoice

    def void_invoice(self) -> str:
        invoice = self._open_invoice()
        self.sandbox.void_invoice(invoice)
        return invoice

    def delete_payment(self) -> str:
        book = self.sandbox.book
        with book.lock:
            payment = next(
                p.id for p in sorted(book.payments.by_id.values(), key=lambda p: p.id) if not p.deleted
            )
        self.sandbox.delete_payment(payment)
        return payment

    # ---- time, tokens, faults
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def lose_refresh_answer(self) -> None:
        tokens = self.vault.get(self.tenant.id)
        assert tokens is not None
        answer = requests.post(
            f"{self.sandbox.base_url}/connect/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens.refresh_token},
            auth=(self.sandbox.client_id, self.sandbox.client_secret), verify=str(self.sandbox.ca_path), timeout=10,
        )  # fmt: skip
        assert answer.status_code == 200  # the ledger rotated the token; the answer is thrown away here

    def spend_rate_window(self) -> None:
        limiter = self.sandbox.accounting.limiter
        while self.clock.now().timestamp() % 60 > 20:  # start early in a window so ccm's calls land in it
            self.clock.advance(1)
        tenant = self.sandbox.tenant_id
        while limiter.acquire(tenant).allowed:  # another app on the same organisation uses the minute
            limiter.release(tenant)

    def fail_next(self, count: int, status: int = 503) -> None:
        self.faults.fail_status = status
        self.faults.fail_next = count

    def stats(self) -> Stats:
        return Stats(self.sandbox.accounting.calls, self.sandbox.accounting.refused)

    def sandbox_faults(self) -> Faults:
        return self.faults

    # ---- webhooks
    def delivery(self, *, events: bool, good_signature: bool) -> Delivery:
        self._received.clear()
        if events:
            customer = self.a_customer()
            self.sandbox.change_contact(customer, email="accounts@example.test")
            self.sandbox.flush_webhooks()
            headers, body = self._received[-1]
        else:
            self.sandbox.intent_to_receive()  # posts one good and one mis-signed handshake
            headers, body = self._received[0]
        if not good_signature:
            headers = {**headers, SIGNATURE_HEADER: signature(WEBHOOK_KEY + "-not", body)}
        return Delivery(headers, body)

    # ---- write-backs
    def a_customer(self) -> str:
        book = self.sandbox.book
        with book.lock:
            return book.invoices.by_id[self._open_invoice()].customer_id

    def an_invoice(self) -> str:
        return self._open_invoice()

    def customers(self, count: int) -> list[str]:
        with self.sandbox.book.lock:
            live = [
                c.id for c in self.sandbox.book.contacts.by_id.values() if not (c.archived or c.merged_into)
            ]
        return sorted(live)[:count]

    def open_invoices(self, count: int) -> list[str]:
        book = self.sandbox.book
        with book.lock:
            found = [
                inv.id for inv in sorted(book.invoices.by_id.values(), key=lambda i: i.id)
                if inv.kind == "sales" and book.invoice_status(inv) == "AUTHORISED"
                and book.customer(inv.customer_id).email
            ]  # fmt: skip
        return found[:count]

    def notes(self, kind: str, record_id: str) -> list[str]:
        with self.sandbox.book.lock:
            return [n.details for n in self.sandbox.book.history.get(record_id, [])]

    def on_hold(self, customer_id: str) -> bool:
        book = self.sandbox.book
        with book.lock:
            return any(g.name == HOLD_GROUP and customer_id in g.members for g in book.groups.values())

    def hold_marks(self, customer_id: str) -> int:
        book = self.sandbox.book
        with book.lock:
            return sum(g.name == HOLD_GROUP and customer_id in g.members for g in book.groups.values())

    def emails_sent(self, invoice_id: str) -> int:
        with self.sandbox.book.lock:
            return self.sandbox.book.emailed.count(invoice_id)

    # ---- phones: Xero keeps them as typed parts (Phones[]: PhoneType, country, area, number)
    def a_phone(self) -> tuple[str, str]:
        book = self.sandbox.book
        with book.lock:
            c = next(c for c in sorted(book.contacts.by_id.values(), key=lambda c: c.id)
                     if c.phone is not None and not c.archived and c.merged_into is None)  # fmt: skip
            assert c.phone is not None
            return c.id, f"+{c.phone.country} {c.phone.area} {c.phone.number}"

    def change_phone(self, customer_id: str) -> str:
        self.sandbox.book.change_contact(customer_id, phone=GenPhone("44", "020", "7946 0999"))
        return "+44 20 7946 0999"  # the trunk 0 typed into the area code is not dialled from abroad

    def blank_phone(self, customer_id: str) -> None:
        self.sandbox.book.change_contact(customer_id, phone=GenPhone("44", "20", ""))
