"""The harness interface: what the contract suite needs from one ledger's sandbox and adapter.

Every adapter passes the same suite (tests/contract/test_contract.py). To plug a ledger in, write a class
with the methods of `Harness` below (tests/contract/xero_harness.py is the Xero one) and list it in
`HARNESSES` in tests/contract/conftest.py as "module:Class". The suite creates one harness per test, calls
`start`, and `stop` at the end. Where ledgers differ in their numbers (token lifetimes, calls per sync) the
suite reads them from the harness, never from one ledger's constants. Cases only one ledger has go in a
module of its own (tests/contract/test_quickbooks_contract.py), never a copy of a shared test.

Rules the suite relies on:
- `start` runs the ledger's sandbox in-process over HTTPS with a small seeded firm ("demo" size), its clock
  accelerated so a token lifetime or a rate window passes in real seconds, and returns the ccm Settings
  pointing at it (client id/secret, CA bundle, URLs, webhook key). `limits=True` enforces the ledger's
  real rate limits; False turns them off.
- `connect` runs the ledger's REAL authorization-code flow against the sandbox (authorize, callback code,
  token exchange, organisation choice) and stores the tenant, its connection and its tokens (vault).
- `ledger()` builds a NEW adapter instance through the registry's factory, as a fresh process would
  (nothing cached in memory survives between two calls but what the store holds).
- `services()` is what the factory gets (`connector.ledger.Services`): the store, the sandbox clock, the vault.
- The change methods alter the sandbox's books as a person using the ledger would, and return the id of
  the record whose canonical form changed (an invoice id, a payment id).
- The fault methods act on the NEXT calls only; `stats()` reports what the sandbox served.
- `sandbox_faults()` is the sandbox's own fault injection (adapters/sandbox/faults.py), changeable live;
  `write_requests` picks the ledger's writes out of its requests ("METHOD /path") for the apply-then-drop
  fault (QBO reads by POSTing queries, so "every POST" will not do).
- Effects of write-backs are counted in the sandbox's own books (notes, e-mails sent, hold marks), never
  in what ccm or the adapter says it did.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from adapters.sandbox.faults import Faults
from connector.config import Settings
from connector.ledger import Ledger, Services
from connector.mapping import CompiledMapping
from connector.model import Tenant
from connector.store import Store


@dataclass(frozen=True, slots=True)
class Stats:
    """What the sandbox served so far: API calls (accounting/data endpoints) and how many got a 429."""

    calls: int
    throttled: int


@dataclass(frozen=True, slots=True)
class Delivery:
    """A webhook delivery as the ledger would post it."""

    headers: dict[str, str]
    body: bytes


class Harness(Protocol):
    name: str  # the adapter's registry name ("xero", "quickbooks")

    # ---- the ledger's numbers, as its sandbox plays them (seconds are on the sandbox clock)
    unchanged_sync_calls: int  # API calls an incremental sync of unchanged books costs
    access_token_life_s: int  # how long an access token lives
    refresh_rotation_s: int  # a refresh hands out a NEW refresh token this long after the last (0: always)
    refresh_idle_life_s: int  # a refresh token unused this long dies
    write_requests: str  # a regex matching the ledger's write requests as "METHOD /path"

    # ---- life cycle
    def start(self, store: Store, tmp_path: Path, *, limits: bool = False) -> Settings: ...

    def stop(self) -> None: ...

    def connect(self) -> Tenant: ...

    def ledger(self) -> Ledger: ...

    def mapping(self) -> CompiledMapping: ...

    def services(self) -> Services: ...

    def now(self) -> object: ...  # the sandbox clock's current instant (a UTC datetime)

    # ---- what the books hold: canonical record kind -> ids the mapping must produce from a full sync
    def expected_ids(self) -> dict[str, set[str]]: ...

    # ---- changes in the ledger (each moves the record's change time on the sandbox clock)
    def pay_invoice(self) -> str: ...  # a new payment on an open invoice; returns the invoice id

    def void_invoice(self) -> str: ...  # an open invoice voided; returns its id

    def delete_payment(self) -> str: ...  # a live payment deleted; returns its id

    # ---- time, tokens and faults
    def advance(self, seconds: float) -> None: ...  # move the sandbox clock (tokens expire, windows roll)

    def lose_refresh_answer(self) -> None: ...  # refresh at the ledger now and drop the answer

    def spend_rate_window(self) -> None: ...  # from outside ccm, use up the window ccm's next call lands in

    def fail_next(self, count: int, status: int = 503) -> None: ...  # the next `count` API calls fail

    def stats(self) -> Stats: ...

    def sandbox_faults(self) -> Faults: ...  # the sandbox's fault injection, changeable while it serves

    # ---- webhooks
    def delivery(self, *, events: bool, good_signature: bool) -> Delivery: ...

    # ---- write-back checks
    def a_customer(self) -> str: ...  # a customer id the write-backs may act on

    def an_invoice(self) -> str: ...  # an open sales invoice id

    def customers(self, count: int) -> list[str]: ...  # `count` different customers write-backs may act on

    def open_invoices(self, count: int) -> list[str]: ...  # `count` open sales invoices the ledger can e-mail

    def notes(self, kind: str, record_id: str) -> list[str]: ...  # notes ("invoice"/"customer") as stored

    def on_hold(self, customer_id: str) -> bool: ...

    def hold_marks(self, customer_id: str) -> int: ...  # hold lines / hold-group memberships the books hold

    def emails_sent(self, invoice_id: str) -> int: ...

    # ---- a customer's phone number (as a person keeps it in the ledger)
    def a_phone(self) -> tuple[str, str]: ...  # a live customer with a number, and that number as dialled

    def change_phone(self, customer_id: str) -> str: ...  # a new number typed in; returns it as dialled

    def blank_phone(self, customer_id: str) -> None: ...  # the number emptied, its entry left in the ledger
