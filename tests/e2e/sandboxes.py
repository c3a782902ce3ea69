"""The two sandboxes as the end-to-end tests see them: started in-process, connected through real OAuth.

Each side knows how to read what a credit hold looks like in its ledger's own book, how to count the
writes the ledger received (state the sandbox recorded, not calls ccm says it made) and how a customer pays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import requests

from adapters.quickbooks import auth as qbo_auth
from adapters.quickbooks import sandbox as qbo_sandbox
from adapters.quickbooks.settings import QuickBooksSettings, quickbooks_settings
from adapters.quickbooks.writeback import HOLD_MARKER
from adapters.sandbox.generator import generate
from adapters.xero import connect as xero_connect
from adapters.xero import sandbox as xero_sandbox
from adapters.xero.settings import XeroSettings, xero_settings
from connector.config import Settings, SmtpSettings
from connector.model import Tenant
from connector.oauth import TokenVault, new_state
from connector.store import Store
from connector.store.tenants import save_tenant
from tests import clock
from tests.smtp import Inbox

HOLD_GROUP = "Credit Hold"  # mappings/xero.yaml options.hold_group
LONDON = ("GBP", "Europe/London", "GB")


@dataclass
class XeroSide:
    handle: Any
    changes: list[tuple[str, str, str]] = field(default_factory=list)
    name: str = "xero"

    def __post_init__(self) -> None:
        self.handle.book.listeners.append(lambda *event: self.changes.append(event))

    @property
    def book(self) -> Any:
        return self.handle.book

    def writes(self) -> int:
        """Every change the book recorded: History notes, groups made, contacts and invoices touched."""
        with self.book.lock:
            notes = sum(len(n) for n in self.book.history.values())
            return notes + len(self.book.groups) + len(self.changes)

    def on_hold(self, customer_id: str) -> bool:
        with self.book.lock:
            return any(
                g.name == HOLD_GROUP and g.status == "ACTIVE" and customer_id in g.members
                for g in self.book.groups.values()
            )

    def notes(self, customer_id: str) -> list[str]:
        with self.book.lock:
            return [n.details for n in self.book.history.get(customer_id, ())]

    def pay(self, invoice_id: str, amount: Decimal) -> None:
        self.handle.post_payment(invoice_id, amount)

    def settings(self) -> XeroSettings:
        h = self.handle
        return XeroSettings(client_id=h.client_id, client_secret=h.client_secret, login_url=h.base_url,
                            identity_url=h.base_url, api_url=h.base_url, ca_bundle=h.ca_path)  # fmt: skip

    def connect(self, settings: Settings, store: Store, tenant: Tenant) -> None:
        authorization = xero_connect.begin(xero_settings(settings))
        code = xero_connect.consent_code(authorization, xero_settings(settings))
        xero_connect.connect_with_code(settings, store, tenant, code, authorization.code_verifier)


@dataclass
class QuickBooksSide:
    handle: Any
    changes: list[tuple[str, str, str]] = field(default_factory=list)
    name: str = "quickbooks"

    def __post_init__(self) -> None:
        forward = self.handle.api.on_change

        def counted(entity: str, id_: str, operation: str) -> None:
            self.changes.append((entity, id_, operation))
            forward(entity, id_, operation)

        self.handle.api.on_change = counted

    @property
    def company(self) -> Any:
        return self.handle.company

    def writes(self) -> int:
        """Every write the API accepted (updates, Attachables, sends), as the sandbox's change hook saw them."""
        return len(self.changes)

    def customer_notes(self, customer_id: str) -> str:
        with self.company.lock:
            return str(
                self.company.doc("Customer", self.company.get("Customer", customer_id)).get("Notes", "")
            )

    def set_customer_notes(self, customer_id: str, text: str) -> None:
        """The firm's own text in Customer.Notes, typed in QuickBooks by a person."""
        row = self.company.get("Customer", customer_id)
        body = {"Id": customer_id, "SyncToken": str(row.sync_token), "sparse": True, "Notes": text}
        self.company.update("Customer", body)

    def on_hold(self, customer_id: str) -> bool:
        return any(line.startswith(HOLD_MARKER) for line in self.customer_notes(customer_id).split("\n"))

    def notes(self, customer_id: str) -> list[str]:
        """The Attachable notes linked to the customer, oldest first."""
        found = []
        with self.company.lock:
            for row in sorted(self.company.tables["Attachable"].by_id.values(), key=lambda r: r.id):
                refs = [r.get("EntityRef") or {} for r in row.doc.get("AttachableRef") or []]
                if any(r.get("type") == "Customer" and str(r.get("value")) == customer_id for r in refs):
                    found.append(str(row.doc["Note"]))
        return found

    def pay(self, invoice_id: str, amount: Decimal) -> None:
        self.handle.post_payment(invoice_id, amount)

    def settings(self) -> QuickBooksSettings:
        h = self.handle
        return QuickBooksSettings(client_id=h.client_id, client_secret=h.client_secret,
                                  authorize_url=h.authorize_url, token_url=h.token_url, revoke_url=h.revoke_url,
                                  api_url=h.base_url, ca_bundle=h.ca_path, pacing=h.limits)  # fmt: skip

    def connect(self, settings: Settings, store: Store, tenant: Tenant) -> None:
        state = new_state()
        url = qbo_auth.authorization_url(quickbooks_settings(settings), state)
        answer = requests.get(url, allow_redirects=False, verify=str(self.handle.ca_path), timeout=30)
        query = parse_qs(urlparse(answer.headers["location"]).query)
        assert query["state"] == [state], "the consent redirect must carry our state back"
        with store.begin() as conn:
            save_tenant(conn, tenant)
        vault = TokenVault.open(store, settings)
        qbo_auth.complete(
            quickbooks_settings(settings), store, vault, tenant.id, query["code"][0], query["realmId"][0]
        )


Side = XeroSide | QuickBooksSide


def start(ledger: str, seed: int = 3) -> Side:
    """A demo-size sandbox of `ledger` on the tests' calendar (tests/clock.py), limits off (pacing is not the
    point here)."""
    if ledger == "xero":
        return XeroSide(xero_sandbox.start(seed=seed, size="demo", clock=clock.sandbox_clock(), limits=False))
    firm = generate(seed, "demo", today=clock.TODAY)
    return QuickBooksSide(qbo_sandbox.start(firm, seed=seed, clock=clock.sandbox_clock(), limits=False))


def settings_for(side: Side, data_dir: Path, inbox: Inbox) -> Settings:
    smtp = SmtpSettings(host=inbox.host, port=inbox.port, from_address="accounts@firm.example")
    if isinstance(side, XeroSide):
        return Settings(data_dir=data_dir, ledgers={"xero": side.settings()}, smtp=smtp)
    return Settings(data_dir=data_dir, ledgers={"quickbooks": side.settings()}, smtp=smtp)


def connected(side: Side, settings: Settings, store: Store) -> Tenant:
    """The firm as a ccm tenant, connected through the ledger's real authorization-code flow."""
    tenant = Tenant(f"firm-{side.name}", f"Firm on {side.name}", side.name, *LONDON)
    side.connect(settings, store, tenant)
    return tenant
