"""A faithful local Xero: identity, accounting, limits, faults and webhooks, served over HTTPS on loopback.

One base URL serves Xero's three hosts:

=====================================================  ===============================================
Xero                                                   sandbox (`handle.base_url` + path)
=====================================================  ===============================================
https://login.xero.com/identity/connect/authorize      /identity/connect/authorize
https://identity.xero.com/connect/token                /connect/token
https://identity.xero.com/connect/revocation           /connect/revocation
https://api.xero.com/connections                       /connections (also /Connections, DELETE /{id})
https://api.xero.com/api.xro/2.0/...                   /api.xro/2.0/...
=====================================================  ===============================================

Xero's OpenID discovery document and signing keys (for id_tokens) are at /.well-known/openid-configuration
and /.well-known/openid-configuration/jwks.

So: xero-python `AccountingApi(client, base_url=base + "/api.xro/2.0")`, `IdentityApi(client, base_url=base)`,
`TokenApi.refresh_token_url = base + "/connect/token"`, `TokenApi.revoke_token_url = base +
"/connect/revocation"`, `Configuration.ssl_ca_cert = str(handle.ca_path)`; authlib's OAuth2Session with
`verify=str(handle.ca_path)` and the authorize/token URLs above.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Route

from adapters.sandbox.clock import SandboxClock
from adapters.sandbox.faults import Faults
from adapters.sandbox.generator import (
    Firm,
    FirmSize,
    GenCreditNote,
    GenCustomer,
    GenInvoice,
    GenPayment,
    generate,
)
from adapters.sandbox.handle import SandboxHandle, launch, prepare, run_until_interrupted, settings_env
from adapters.xero.sandbox.accounting import Accounting, xero_limits
from adapters.xero.sandbox.book import Book
from adapters.xero.sandbox.identity import Identity
from adapters.xero.sandbox.idtoken import routes_for
from adapters.xero.sandbox.webhooks import DEFAULT_KEY, Handshake, Webhooks
from adapters.xero.settings import XeroSettings

DEFAULT_CLIENT_ID = "ccm-sandbox-client"
DEFAULT_CLIENT_SECRET = "ccm-sandbox-secret"  # noqa: S105 - the sandbox's own well-known demo credential


def client_settings(
    base_url: str, ca: Path, client_id: str = DEFAULT_CLIENT_ID, client_secret: str = DEFAULT_CLIENT_SECRET
) -> XeroSettings:
    """ccm's `[xero]` settings for a sandbox at `base_url` (its one address for Xero's three hosts)."""
    return XeroSettings(client_id=client_id, client_secret=client_secret, login_url=base_url,
                        identity_url=base_url, api_url=base_url, ca_bundle=ca)  # fmt: skip


@dataclass
class XeroSandbox(SandboxHandle):
    """A running Xero sandbox: its address, state and the controls tests use to change the ledger."""

    book: Book
    identity: Identity
    accounting: Accounting
    webhooks: Webhooks
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def books(self) -> dict[str, Book]:
        """Every organisation's books by tenant id (the first is `book`)."""
        return self.accounting.books

    @property
    def tenant_id(self) -> str:
        return self.book.tenant_id

    @property
    def api_url(self) -> str:
        """The accounting base URL for xero-python's AccountingApi."""
        return f"{self.base_url}/api.xro/2.0"

    def settings(self) -> XeroSettings:
        """ccm's `[xero]` settings for this sandbox: its client, address and CA."""
        return client_settings(self.base_url, self.ca_path, self.client_id, self.client_secret)

    def env(self) -> dict[str, str]:
        """The same as `CCM_XERO__*` environment variables, for a `ccm` child process."""
        return settings_env("xero", self.settings())

    def banner(self) -> list[str]:
        return [
            f"Xero sandbox: {self.base_url}",
            f"CA certificate: {self.ca_path}",
            f"client_id: {self.client_id}  client_secret: {self.client_secret}",
            f"tenant: {self.tenant_id} ({self.book.firm_name})",
        ]

    def stop(self) -> None:
        self.webhooks.stop()
        super().stop()

    # ---- ledger changes (each moves UpdatedDateUTC on the sandbox clock) -------------------------------
    def post_payment(
        self, invoice_id: str, amount: Decimal | None = None, on: date | None = None
    ) -> GenPayment:
        with self.book.lock:
            return self.book.post_payment(invoice_id, amount, on)

    def delete_payment(self, payment_id: str) -> GenPayment:
        with self.book.lock:
            return self.book.delete_payment(payment_id)

    def post_credit_note(self, invoice_id: str, amount: Decimal) -> GenCreditNote:
        with self.book.lock:
            return self.book.post_credit_note(invoice_id, amount)

    def add_invoice(self, contact_id: str, total: Decimal, due: date | None = None) -> GenInvoice:
        with self.book.lock:
            return self.book.add_invoice(contact_id, total, due)

    def void_invoice(self, invoice_id: str) -> GenInvoice:
        with self.book.lock:
            return self.book.set_invoice_status(invoice_id, "voided")

    def delete_invoice(self, invoice_id: str) -> GenInvoice:
        with self.book.lock:
            return self.book.set_invoice_status(invoice_id, "deleted")

    def change_contact(self, contact_id: str, **changes: Any) -> GenCustomer:
        with self.book.lock:
            return self.book.change_contact(contact_id, **changes)

    def set_contact_persons(self, contact_id: str, persons: Sequence[tuple[str, str, str, bool]]) -> None:
        """The contact's ContactPersons: (first name, last name, e-mail, include in e-mails) each."""
        with self.book.lock:
            self.book.contact_persons[contact_id] = [
                {"FirstName": first, "LastName": last, "EmailAddress": email, "IncludeInEmails": include}
                for first, last, email, include in persons
            ]
            self.book.change_contact(contact_id)  # a change to the contact moves its UpdatedDateUTC

    def set_reminders(self, enabled: bool) -> None:
        """Turn Xero's own invoice reminders on or off (GET /InvoiceReminders/Settings)."""
        self.book.reminders_enabled = enabled

    # ---- connection controls ------------------------------------------------------------------------------
    def revoke_refresh_token(self, token: str) -> None:
        self.identity.revoke_refresh_token(token)

    def disconnect(self, tenant_id: str | None = None) -> None:
        self.identity.disconnect(tenant_id or self.tenant_id)

    def expire_access_tokens(self) -> None:
        self.identity.expire_access_tokens()

    # ---- webhooks -----------------------------------------------------------------------------------------
    def intent_to_receive(self, url: str | None = None) -> Handshake:
        return self.webhooks.intent_to_receive(url)

    def flush_webhooks(self, timeout: float = 10.0) -> None:
        self.webhooks.flush(timeout)


def build_app(book: Book, identity: Identity, accounting: Accounting) -> Starlette:
    """The Starlette app serving identity and accounting under one base URL."""
    config, jwks = routes_for(identity.signer)
    routes = [
        Route("/.well-known/openid-configuration", config, methods=["GET"]),
        Route("/.well-known/openid-configuration/jwks", jwks, methods=["GET"]),
        Route("/identity/connect/authorize", identity.authorize, methods=["GET", "POST"]),
        Route("/connect/token", identity.token, methods=["POST"]),
        Route("/connect/revocation", identity.revoke, methods=["POST"]),
        Route("/connections", identity.connections, methods=["GET"]),
        Route("/Connections", identity.connections, methods=["GET"]),
        Route("/connections/{id}", identity.delete_connection, methods=["DELETE"]),
        Route("/Connections/{id}", identity.delete_connection, methods=["DELETE"]),
        *accounting.routes(),
    ]
    app = Starlette(routes=routes)
    app.state.book = book
    return app


def start(
    firm: Firm | None = None,
    *,
    seed: int = 1,
    size: str | FirmSize = "demo",
    clock: SandboxClock | None = None,
    limits: bool = True,
    faults: Faults | None = None,
    webhook_url: str | None = None,
    client_id: str = DEFAULT_CLIENT_ID,
    client_secret: str = DEFAULT_CLIENT_SECRET,
    auto_consent: bool = True,
    webhook_key: str = DEFAULT_KEY,
    webhook_verify: Path | str | bool = True,
    day_limit: int = 5000,
    app_minute_limit: int = 10_000,
    email_cap: int = 1000,
    host: str = "127.0.0.1",
    port: int = 0,
    extra_firms: Sequence[Firm] = (),
) -> XeroSandbox:
    """Start a Xero sandbox on a free loopback port (HTTPS, its own CA) and return its handle.

    Args:
        firm: the organisation's data; default `generate(seed, size, today=clock's date)`.
        seed: generator seed when no firm is given.
        size: generator size ("demo", "small", "large") when no firm is given.
        clock: the sandbox clock (default: real time).
        limits: False turns Xero's rate limits off (throughput benches).
        faults: fault injection, changeable while running.
        webhook_url: where to post signed events (None: no webhooks).
        client_id: the OAuth client the sandbox accepts.
        client_secret: its secret.
        auto_consent: False shows a consent form with allow/deny instead of redirecting at once.
        webhook_key: the webhook signing key.
        webhook_verify: CA bundle (or True/False) for the webhook receiver's TLS.
        day_limit: calls per tenant per day (5,000; 1,000 on Xero's Starter tier).
        app_minute_limit: calls a minute across all tenants (Xero's 10,000; lower for tests of sharing it).
        email_cap: invoice e-mails per day.
        host: the address to bind.
        port: the port (0: a free one).
        extra_firms: more organisations on the same sandbox (one consent connects them all); the handle's
            `book` and test controls are the first firm's, `books` has every one by tenant id.

    Returns:
        The XeroSandbox handle; call `stop()` when done.
    """
    clock = prepare(clock, client_secret, webhook_key)
    firm = firm or generate(seed, size, today=clock.now().date())
    books = {b.tenant_id: b for b in (Book(f, clock) for f in (firm, *extra_firms))}
    names = {tid: b.firm_name for tid, b in books.items()}
    identity = Identity(clock, client_id, client_secret, names, auto_consent)
    accounting = Accounting(
        books, identity, xero_limits(clock, day_limit, limits, app_minute_limit), email_cap
    )
    webhooks = Webhooks(webhook_url, webhook_key, clock, webhook_verify)
    for book in books.values():
        book.listeners.append(_webhook_listener(book, webhooks))
    primary = next(iter(books.values()))
    running = launch(build_app(primary, identity, accounting), clock, faults, host, port)
    return XeroSandbox(running, client_id, client_secret, primary, identity, accounting, webhooks)


def _webhook_listener(book: Book, webhooks: Webhooks) -> Callable[[str, str, str], None]:
    def on_change(category: str, resource_id: str, event: str) -> None:
        data = None
        if category == "CREDITNOTE":  # Xero's credit-note events carry the note's type and status
            note = book.credit_notes.get(resource_id)
            data = {"Type": "ACCRECCREDIT", "Status": note.status.upper()} if note else None
        webhooks.event(book.tenant_id, category, resource_id, event, data)

    return on_change


def run_forever(host: str, port: int, *, seed: int, size: str) -> None:
    """Serve a sandbox until interrupted (`ccm sandbox xero`); prints how to reach it first."""
    run_until_interrupted(lambda: start(seed=seed, size=size, host=host, port=port))
