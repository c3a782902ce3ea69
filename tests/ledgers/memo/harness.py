"""The contract harness for the memo ledger (tests/contract/harness.py says what a harness does).

The memo ledger is installed by entry point into the test's folder at `start` and uninstalled at `stop`; the
harness reaches it only through the registry, as the core does. Its books are the sandbox: the changes,
faults and counts below act on them directly. It runs the contract (tests/contract/test_contract.py); the
suites about HTTP answers lost on the wire (lost answers, outages, vanishing records) are the sandboxes'.
"""

from __future__ import annotations

import json
import secrets
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapters.sandbox.clock import SandboxClock
from connector import ledger as registry
from connector.config import Settings
from connector.flow import flow, save_grant
from connector.ledger import AdapterContext, Ledger, Services
from connector.mapping import CompiledMapping, load_mapping
from connector.model import Tenant
from connector.oauth import TokenVault, load_key
from connector.store import Store
from connector.store.tenants import get_connection
from tests.contract.harness import Delivery, Stats
from tests.ledgers.memo import MINUTE_LIMIT
from tests.ledgers.memo.book import Book
from tests.ledgers.memo.flow import consent
from tests.ledgers.memo.install import installed
from tests.ledgers.memo.settings import MemoSettings
from tests.ledgers.memo.webhooks import HEADER, signature

SECRET = "memo-contract-secret"
WEBHOOK_SECRET = "memo-contract-webhooks"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class MemoHarness:
    name = "memo"
    unchanged_sync_calls = 4  # one read per stream that finds nothing changed
    access_token_life_s = 30 * 60
    refresh_rotation_s = 0  # every refresh hands out a new refresh token
    refresh_idle_life_s = 30 * 24 * 3600
    write_requests = r"^POST "

    def start(self, store: Store, tmp_path: Path, *, limits: bool = False) -> Settings:
        self._stack = ExitStack()
        self._stack.enter_context(installed(tmp_path / "site"))
        self.store = store
        # Limits on: a stopped clock that only waiting moves (a spent window stays spent until the adapter
        # waits it out). Off: a minute in a real second, so tokens expire while a test runs.
        self.clock = SandboxClock(START, speed=0.0 if limits else 60.0)
        self.book = Book.create(tmp_path / "books.json", self.clock.now, seed=7, today=START.date(),
                                client_secret=SECRET, minute_limit=MINUTE_LIMIT if limits else None)  # fmt: skip
        config = MemoSettings(book=self.book.path, client_secret=SECRET, webhook_secret=WEBHOOK_SECRET)
        self.settings = Settings(data_dir=tmp_path / "ccm", ledgers={"memo": config})
        self.vault = TokenVault(store, load_key(self.settings), self.clock.now)
        self.tenant = Tenant("acme", "Acme Ltd", "memo")
        return self.settings

    def stop(self) -> None:
        self._stack.close()

    def connect(self) -> Tenant:
        """The flow the registry gives for "memo", then the core's save, as `ccm connect memo` does."""
        connect = flow("memo")
        state = secrets.token_hex(8)
        url, verifier = connect.begin(self.settings, state)
        callback = consent(url, self.clock.now())  # the person consents (the books issue a code)
        assert callback["state"] == state
        grant = connect.exchange(self.settings, callback, verifier, self.clock.now())
        save_grant(self.store, self.vault, self.tenant, grant, grant.choose(None, "organisation"))
        return self.tenant

    def services(self) -> Services:
        return Services(self.store, self.clock, vault=self.vault)

    def ledger(self) -> Ledger:
        with self.store.read() as conn:
            link = get_connection(conn, self.tenant.id)
        assert link is not None
        return registry.get("memo").factory(
            AdapterContext(self.tenant.id, link.external_id, self.settings, self.services())
        )

    def mapping(self) -> CompiledMapping:
        spec = registry.get("memo")
        return load_mapping(spec.mapping, schema=spec.schema)

    def now(self) -> datetime:
        return self.clock.now()

    # ---- the books
    def _data(self) -> dict[str, Any]:
        return self.book.snapshot()

    def expected_ids(self) -> dict[str, set[str]]:
        data = self._data()
        kinds = {
            "customer": "customers",
            "invoice": "invoices",
            "credit_note": "credit_notes",
            "payment": "payments",
        }
        return {kind: set(data[stream]) for kind, stream in kinds.items()}

    def pay_invoice(self) -> str:
        return self.book.pay()

    def void_invoice(self) -> str:
        return self.book.void()

    def delete_payment(self) -> str:
        return self.book.delete_payment()

    # ---- time, tokens and faults
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def lose_refresh_answer(self) -> None:
        tokens = self.vault.get(self.tenant.id)
        assert tokens is not None
        self.book.token("memo-app", SECRET, refresh_token=tokens.refresh_token)  # the answer is dropped

    def spend_rate_window(self) -> None:
        self.book.spend_window()

    def fail_next(self, count: int, status: int = 503) -> None:
        self.book.fail_next(count, status)

    def stats(self) -> Stats:
        counted = self._data()["stats"]
        return Stats(counted["calls"], counted["throttled"])

    # ---- webhooks
    def delivery(self, *, events: bool, good_signature: bool) -> Delivery:
        data = self._data()
        listed = [
            {"org": data["org"]["id"], "kind": "invoice", "id": sorted(data["invoices"])[0], "op": "update"}
        ]
        body = json.dumps({"events": listed if events else []}).encode()
        signed = signature(WEBHOOK_SECRET if good_signature else "not-the-secret", body)
        return Delivery({HEADER: signed, "content-type": "application/json"}, body)

    # ---- write-back checks
    def a_customer(self) -> str:
        return sorted(self._data()["customers"])[0]

    def an_invoice(self) -> str:
        return next(i for i, inv in sorted(self._data()["invoices"].items()) if inv["Status"] == "open")

    def notes(self, kind: str, record_id: str) -> list[str]:
        return list(self._data()["notes"].get(f"{kind}:{record_id}", []))

    def on_hold(self, customer_id: str) -> bool:
        return bool(self._data()["holds"].get(customer_id, False))

    def hold_marks(self, customer_id: str) -> int:
        return int(self.on_hold(customer_id))

    def emails_sent(self, invoice_id: str) -> int:
        return int(self._data()["emails"].get(invoice_id, 0))
