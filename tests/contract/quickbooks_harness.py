"""The QuickBooks Online harness of the contract suite: Q1's sandbox, ccm's QuickBooks adapter.

The sandbox runs in-process over HTTPS on an accelerated clock; connect runs the real authorization-code
flow (authorize redirect with code and realmId, token exchange with Basic client auth). A few test controls
the sandbox lacks (a void, failing the next N calls, counting 429s) act on its in-memory state here.
"""

from __future__ import annotations

import gc
import secrets
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import requests
from cryptography.fernet import Fernet

from adapters.quickbooks import auth
from adapters.quickbooks.sandbox import QuickBooksSandbox, start
from adapters.quickbooks.sandbox.api import Answer
from adapters.quickbooks.sandbox.notify import Event, legacy_body
from adapters.quickbooks.settings import QuickBooksSettings
from adapters.quickbooks.writeback import HOLD_MARKER
from adapters.sandbox.clock import SandboxClock
from adapters.sandbox.faults import Faults
from adapters.sandbox.generator import FirmSize, generate
from adapters.sandbox.webhooks import sign
from connector import ledger as registry
from connector.config import Settings
from connector.ledger import AdapterContext, Ledger, Services
from connector.mapping import CompiledMapping, load_mapping
from connector.model import Tenant
from connector.oauth import TokenVault
from connector.store import Store
from connector.store.tenants import save_tenant
from tests import clock as tests_clock
from tests.contract.harness import Delivery, Stats

SEED = 11
SPEED = 60.0  # a sandbox minute per real second: rate windows and Retry-After pass quickly
VERIFIER = "ccm-contract-verifier"
TENANT = "qbo-contract"


class QuickBooksHarness:
    name = "quickbooks"
    unchanged_sync_calls = 1  # one CDC request serves all four streams
    access_token_life_s = 3600
    refresh_rotation_s = 24 * 3600  # a refresh hands back a NEW refresh token value only after a day
    refresh_idle_life_s = 100 * 24 * 3600
    write_requests = r"^POST (?!.*/query$)"  # every POST but a query

    def __init__(self, *, size: str | FirmSize = "demo", speed: float = SPEED) -> None:
        self.size = size
        self.speed = speed
        self.throttled = 0
        self._fail: list[int] = []
        self._spend_window = False

    # ---- life cycle
    def start(self, store: Store, tmp_path: Path, *, limits: bool = False) -> Settings:
        self.store = store
        self.clock = SandboxClock(start=tests_clock.NOW, speed=self.speed)
        firm = generate(SEED, self.size, today=self.clock.now().date())
        self.sb: QuickBooksSandbox = start(firm, seed=SEED, clock=self.clock, limits=limits,
                                           webhook_verifier=VERIFIER)  # fmt: skip
        self._instrument()
        self.qbo = QuickBooksSettings(
            client_id=self.sb.client_id, client_secret=self.sb.client_secret, webhook_verifier=VERIFIER,
            authorize_url=self.sb.authorize_url, token_url=self.sb.token_url, revoke_url=self.sb.revoke_url,
            api_url=self.sb.base_url, ca_bundle=self.sb.ca_path, pacing=limits,
        )  # fmt: skip
        self.settings = Settings(
            data_dir=tmp_path, vault_key=Fernet.generate_key().decode(), ledgers={"quickbooks": self.qbo}
        )
        self.vault = TokenVault(store, self.settings.vault_key.encode(), self.clock.now)  # type: ignore[union-attr]
        return self.settings

    def _instrument(self) -> None:
        """Count 429s, spend a window and fail the next N calls, by wrapping the sandbox's request handler."""
        api = self.sb.api
        handle, throttled = api.handle, api.throttled

        def counted_throttle(detail: str) -> Answer:
            self.throttled += 1
            return throttled(detail)

        def failing_handle(*args: Any, **kwargs: Any) -> Answer:
            if self._spend_window:
                self._spend_window = False
                self._use_up_window()
            if self._fail:
                return Answer(self._fail.pop(), '{"error": "injected"}')
            return handle(*args, **kwargs)

        api.throttled = counted_throttle  # type: ignore[method-assign]
        api.handle = failing_handle  # type: ignore[method-assign]

    def stop(self) -> None:
        gc.collect()  # close the dropped adapters' keep-alive connections: the server then stops at once
        self.sb.stop()

    def connect(self) -> Tenant:
        state = secrets.token_hex(8)
        url = auth.authorization_url(self.qbo, state)
        answer = requests.get(url, verify=str(self.sb.ca_path), allow_redirects=False, timeout=10)
        assert answer.status_code == 302, answer.text
        callback = parse_qs(urlparse(answer.headers["location"]).query)
        assert callback["state"] == [state]
        tenant = Tenant(TENANT, self.sb.company.firm.name, "quickbooks")
        with self.store.begin() as conn:
            save_tenant(conn, tenant)
        auth.complete(self.qbo, self.store, self.vault, tenant.id, callback["code"][0], callback["realmId"][0],
                      now=self.clock.now)  # fmt: skip
        return tenant

    def ledger(self) -> Ledger:
        spec = registry.get("quickbooks")
        return spec.factory(AdapterContext(TENANT, self.sb.realm, self.settings, self.services()))

    def mapping(self) -> CompiledMapping:
        spec = registry.get("quickbooks")
        return load_mapping(spec.mapping, schema=spec.schema)

    def services(self) -> Services:
        return Services(self.store, self.clock, vault=self.vault)

    def now(self) -> object:
        return self.clock.now()

    # ---- what the books hold
    def _rows(self, entity: str) -> list[Any]:
        table = self.sb.company.tables[entity]
        return [row for row in table.by_id.values() if not row.deleted]

    def _field(self, entity: str, row: Any, name: str) -> Any:
        value = self.sb.company.doc(entity, row).get(name)
        return Decimal(str(value)) if name == "Balance" else value

    def doc(self, entity: str, record_id: str) -> dict[str, Any]:
        company = self.sb.company
        return company.doc(entity, company.get(entity, record_id))

    def expected_ids(self) -> dict[str, set[str]]:
        kinds = {
            "customer": "Customer",
            "invoice": "Invoice",
            "payment": "Payment",
            "credit_note": "CreditMemo",
        }
        return {kind: {str(row.id) for row in self._rows(entity)} for kind, entity in kinds.items()}

    def _open_invoice(self, skip: int = 0) -> str:
        found = [str(r.id) for r in self._rows("Invoice") if self._field("Invoice", r, "Balance") > 0]
        return sorted(found, key=int)[skip]

    # ---- changes
    def pay_invoice(self) -> str:
        invoice = self._open_invoice()
        self.sb.post_payment(invoice, Decimal("1.00"))
        return invoice

    def void_invoice(self) -> str:
        invoice = self._open_invoice(skip=1)
        self.sb.void_invoice(invoice)
        return invoice

    def delete_payment(self) -> str:
        payment = sorted((str(r.id) for r in self._rows("Payment")), key=int)[0]
        self.sb.delete("Payment", payment)
        return payment

    # ---- time, tokens and faults
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def lose_refresh_answer(self) -> None:
        tokens = self.vault.get(TENANT)
        assert tokens is not None
        requests.post(self.sb.token_url, data={"grant_type": "refresh_token", "refresh_token": tokens.refresh_token},
                      auth=(self.sb.client_id, self.sb.client_secret), verify=str(self.sb.ca_path), timeout=10)  # fmt: skip

    def spend_rate_window(self) -> None:
        # Spent when ccm's next request arrives: at 60x a minute window lasts one real second, and spent
        # now, it could end before that request (a loaded machine) and no 429 would come.
        self._spend_window = True

    def _use_up_window(self) -> None:
        limiter = self.sb.api.limiter
        while limiter.acquire(self.sb.realm).allowed:
            limiter.release(self.sb.realm)

    def fail_next(self, count: int, status: int = 503) -> None:
        self._fail.extend([status] * count)

    def stats(self) -> Stats:
        return Stats(sum(self.sb.api.calls.values()), self.throttled)

    def sandbox_faults(self) -> Faults:
        return self.sb.faults

    # ---- webhooks
    def delivery(self, *, events: bool, good_signature: bool) -> Delivery:
        changes = (Event("Invoice", self._open_invoice(), "Update", self.clock.now()),) if events else ()
        body = legacy_body(self.sb.realm, changes)
        key = VERIFIER if good_signature else "not-the-verifier"
        return Delivery({"intuit-signature": sign(body, key)}, body)

    # ---- write-back checks
    def a_customer(self) -> str:
        return sorted(
            (str(r.id) for r in self._rows("Customer") if self._field("Customer", r, "Active")), key=int
        )[0]

    def an_invoice(self) -> str:
        """An open invoice QBO can e-mail (it has a BillEmail)."""
        return self.open_invoices(1)[0]

    def customers(self, count: int) -> list[str]:
        active = [str(r.id) for r in self._rows("Customer") if self._field("Customer", r, "Active")]
        return sorted(active, key=int)[:count]

    def open_invoices(self, count: int) -> list[str]:
        company = self.sb.company
        found = [str(r.id) for r in self._rows("Invoice")
                 if self._field("Invoice", r, "Balance") > 0 and company.doc("Invoice", r).get("BillEmail")]  # fmt: skip
        return sorted(found, key=int)[:count]

    def notes(self, kind: str, record_id: str) -> list[str]:
        entity = {"invoice": "Invoice", "customer": "Customer"}[kind]
        out = []
        for row in self._rows("Attachable"):
            doc = self.doc("Attachable", str(row.id))
            refs = [r.get("EntityRef", {}) for r in doc.get("AttachableRef", [])]
            if any(r.get("type") == entity and str(r.get("value")) == record_id for r in refs):
                out.append(str(doc.get("Note", "")))
        return out

    def on_hold(self, customer_id: str) -> bool:
        notes = str(self.doc("Customer", customer_id).get("Notes") or "")
        return any(line.startswith(HOLD_MARKER) for line in notes.split("\n"))

    def hold_marks(self, customer_id: str) -> int:
        notes = str(self.doc("Customer", customer_id).get("Notes") or "")
        return sum(line.startswith(HOLD_MARKER) for line in notes.split("\n"))

    def emails_sent(self, invoice_id: str) -> int:
        with self.sb.company.lock:
            return self.sb.company.emailed.count(invoice_id)

    # ---- phones: QBO keeps free text (PrimaryPhone, Mobile: FreeFormNumber)
    def a_phone(self) -> tuple[str, str]:
        for row in sorted(self._rows("Customer"), key=lambda r: int(r.id)):
            doc = self.doc("Customer", str(row.id))
            number = (doc.get("PrimaryPhone") or doc.get("Mobile") or {}).get("FreeFormNumber")
            if number and doc.get("Active"):
                return str(row.id), str(number)
        raise AssertionError("the demo company has no customer with a phone number")

    def change_phone(self, customer_id: str) -> str:
        self.sb.company.edit(
            "Customer", customer_id, {"PrimaryPhone": {"FreeFormNumber": "+1 415  555-0199"}}
        )
        return "+1 415 555-0199"  # spaces as typed collapse

    def blank_phone(self, customer_id: str) -> None:
        empty = {"FreeFormNumber": " "}
        self.sb.company.edit(
            "Customer", customer_id, {"PrimaryPhone": empty, "Mobile": {"FreeFormNumber": "-"}}
        )
