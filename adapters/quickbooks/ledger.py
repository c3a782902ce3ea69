"""The QuickBooks Online Ledger: one company (realm) of one tenant, on python-quickbooks."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime

from adapters.quickbooks import auth, webhooks
from adapters.quickbooks.client import QboApi
from adapters.quickbooks.pacing import Pacer
from adapters.quickbooks.pull import Puller
from adapters.quickbooks.settings import QuickBooksSettings, quickbooks_settings
from adapters.quickbooks.writeback import Writer
from connector.ledger import (
    AdapterContext,
    Change,
    Cursor,
    OAuthEndpoints,
    Page,
    Rejected,
    Services,
    Usage,
    WriteResult,
)
from connector.oauth import TokenVault, load_key
from connector.ratelimits import Backend, backend_for
from connector.redact import register_secret


class QuickBooksLedger:
    """What ccm needs from one QBO company: pulls, write-backs, webhooks."""

    def __init__(self, settings: QuickBooksSettings, api: QboApi,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:  # fmt: skip
        self.settings = settings
        register_secret(settings.webhook_verifier)
        register_secret(settings.client_secret)
        self.api = api
        self.puller = Puller(api, now=now)
        self.writer = Writer(api, now=now)

    @classmethod
    def from_context(cls, context: AdapterContext) -> QuickBooksLedger:
        """The adapter for a connected tenant: its realm, its tokens from the vault.

        `context.services` may lend a clock (e.g. a sandbox's, which then also paces requests) and a vault
        (a TokenVault on that clock).
        """
        settings = context.settings
        qbo = quickbooks_settings(settings)
        now, pacer, sleep = _time(context.services, context.external_id, qbo, backend_for(settings))
        vault = context.services.vault or TokenVault(context.services.store, load_key(settings), now)
        tokens = auth.VaultTokens(vault, context.tenant_id, auth.refresher(qbo, now), now)
        api = QboApi(context.external_id, qbo.api_url, qbo.minor_version, tokens, verify=auth.verify(qbo),
                     pacer=pacer, sleep=sleep)  # fmt: skip
        return cls(qbo, api, now)

    def oauth_endpoints(self) -> OAuthEndpoints:
        return auth.endpoints(self.settings)

    def scopes(self) -> Sequence[str]:
        return auth.SCOPES

    def pull(self, stream: str, cursor: Cursor | None) -> Iterator[Page]:
        return self.puller.pull(stream, cursor)

    def add_note(self, ref: str, text: str, key: str) -> WriteResult:
        return self.writer.add_note(ref, text, key)

    def set_hold(self, customer_ref: str, on: bool, reason: str, key: str) -> WriteResult:
        return self.writer.set_hold(customer_ref, on, reason, key)

    def send_via_ledger(self, invoice_ref: str, key: str) -> WriteResult:
        return self.writer.send_invoice(invoice_ref, key)

    def parse_webhook(self, headers: Mapping[str, str], raw_body: bytes) -> list[Change] | Rejected:
        return webhooks.parse(headers, raw_body, self.settings.webhook_verifier)

    def online_invoice_url(self, invoice_id: str) -> str | None:
        """The invoice's pay-online link (its InvoiceLink): QBO gives one when the company takes online
        payments and the invoice has a BillEmail; None otherwise."""
        link = self.api.read("Invoice", invoice_id, include="invoiceLink").get("InvoiceLink")
        return str(link) if link else None

    def invoice_pdf(self, invoice_id: str) -> bytes:
        """The invoice as PDF, as QBO prints it: attached to reminders."""
        return self.api.pdf("Invoice", invoice_id)

    def usage(self) -> Usage:
        """Requests made for this company and how many QuickBooks throttled (it has no day limit)."""
        return Usage(self.api.calls, self.api.throttled)


def _time(
    services: Services, realm: str, qbo: QuickBooksSettings, shared: Backend | None = None
) -> tuple[Callable[[], datetime], Pacer, Callable[[float], None] | None]:
    """The clock QBO counts in (the services' clock, else real time), a pacer on it (counting in `shared`, the
    limits every process shares, when there is one), and how to wait on it.

    A process keeps one pacer per realm *at one API address*: two sandboxes that happen to serve the same
    realm id are two companies with limits of their own (in production the address is always Intuit's).
    `qbo.pacing` false (a sandbox with limits off) keeps only the in-flight cap."""
    clocked = services.clocked()
    source = clocked.source
    where = f"{realm}@{qbo.api_url}"
    if source is None:
        # wall time when shared: the shared windows are compared across processes and machines
        tick = time.time if shared is not None else time.monotonic
        pacer = Pacer.for_realm(where, clock=tick, shared=shared, key=realm, spacing=qbo.pacing)
        return clocked.now, pacer, None
    pacer = Pacer.for_realm(
        f"{where}@{id(source)}",
        clock=lambda: source.now().timestamp(),
        sleep=clocked.sleep,
        shared=shared,
        key=realm,
        spacing=qbo.pacing,
    )
    return source.now, pacer, clocked.sleep
