"""The Xero Ledger: one tenant's pulls, write-backs and webhooks, composed from the modules beside it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from functools import cached_property
from typing import Any

from adapters.xero import connect, webhooks
from adapters.xero import pull as reads
from adapters.xero.client import TokenSource, XeroClient
from adapters.xero.pacing import LedgerTime, Limits, Pacer
from adapters.xero.settings import xero_settings
from adapters.xero.writes import Writer
from connector.ledger import (
    AdapterContext,
    Change,
    Cursor,
    Fatal,
    OAuthEndpoints,
    Page,
    Rejected,
    Usage,
    WriteResult,
)
from connector.mapping.loader import SHIPPED, read_yaml
from connector.oauth import TokenVault, load_key
from connector.ratelimits import backend_for
from connector.redact import register_secret

DEFAULT_HOLD_GROUP = "Credit Hold"


class XeroLedger:
    """What ccm's core needs from Xero, for one tenant (organisation)."""

    def __init__(
        self, ctx: AdapterContext, limits: Limits | None = None, hold_group: str | None = None
    ) -> None:
        """The adapter for one organisation; `limits` and `hold_group` override Xero's and the mapping's
        (tests and benches)."""
        self.settings = ctx.settings
        self.xero = xero_settings(ctx.settings)
        self.tenant_id = ctx.tenant_id
        self.external_id = ctx.external_id
        self._hold_group = hold_group
        clocked = ctx.services.clocked()
        self.clock, scope = LedgerTime(clocked.now, clocked.sleep), clocked.scope
        vault = ctx.services.vault or TokenVault(ctx.services.store, load_key(ctx.settings), self.clock.now)
        client_id = self.xero.client_id or "ccm"
        self.client = XeroClient(
            api_url=self.xero.api_url,
            ca_bundle=str(self.xero.ca_bundle) if self.xero.ca_bundle else None,
            xero_tenant_id=ctx.external_id,
            tokens=TokenSource(vault, ctx.tenant_id, connect.refresher(self.xero, self.clock.now)),
            pacer=Pacer(
                client_id,
                ctx.external_id,
                self.clock,
                limits or Limits(day=self.xero.day_limit, app_minute=self.xero.app_minute_limit),
                f"{scope}@{self.xero.api_url}",  # two sandboxes serving one org id are two ledgers
                spacing=self.xero.pacing,
                shared=backend_for(ctx.settings),
            ),
            clock=self.clock,
        )
        if self.xero.webhook_key:
            register_secret(self.xero.webhook_key)

    # ---- connecting
    def oauth_endpoints(self) -> OAuthEndpoints:
        return connect.endpoints(self.xero)

    def scopes(self) -> Sequence[str]:
        return connect.scopes(self.xero)

    # ---- reading
    def pull(self, stream: str, cursor: Cursor | None) -> Iterator[Page]:
        """Raw records of `stream` modified since the cursor, 1,000 a page, oldest change first."""
        endpoint = reads.ENDPOINTS.get(stream)
        if endpoint is None:
            raise Fatal(f"Xero has no stream {stream!r} (it has: {', '.join(reads.ENDPOINTS)})")
        return reads.pull(endpoint, cursor, self._fetch)

    def _fetch(self, endpoint: reads.Endpoint, since: datetime | None, page: int) -> reads.Fetched:
        method = getattr(self.client.accounting, endpoint.method)
        kwargs: dict[str, Any] = {
            "order": reads.ORDER,
            "page": page,
            "page_size": reads.PAGE_SIZE,
            **endpoint.params,
        }
        header = reads.if_modified_since(since)
        if header is not None:
            kwargs["if_modified_since"] = header
        before = self.client.calls
        response = self.client.call(
            f"{endpoint.key} page {page}",
            lambda: method(self.external_id, _preload_content=False, **kwargs),
        )
        records, count = reads.decode(response.data, endpoint.key)
        return reads.Fetched(records, count, self.client.calls - before)

    # ---- writing
    @cached_property
    def writer(self) -> Writer:
        return Writer(self.client, self.hold_group())

    def hold_group(self) -> str:
        """The contact group meaning "on credit hold": the tenant's mapping override, else the shipped one."""
        if self._hold_group:
            return self._hold_group
        override = self.settings.tenant_dir(self.tenant_id) / "mapping.yaml"
        for path in (override, SHIPPED / "xero.yaml"):
            if path.exists():
                options = (read_yaml(path) or {}).get("options") or {}
                if options.get("hold_group"):
                    return str(options["hold_group"])
        return DEFAULT_HOLD_GROUP

    def add_note(self, ref: str, text: str, key: str) -> WriteResult:
        return self.writer.add_note(ref, text, key)

    def set_hold(self, customer_ref: str, on: bool, reason: str, key: str) -> WriteResult:
        return self.writer.set_hold(customer_ref, on, reason, key)

    def send_via_ledger(self, invoice_ref: str, key: str) -> WriteResult:
        return self.writer.send_invoice(invoice_ref, key)

    def online_invoice_url(self, invoice_id: str) -> str | None:
        return self.writer.online_invoice_url(invoice_id)

    def extra_recipients(self, customer_id: str) -> list[str]:
        return self.writer.extra_recipients(customer_id)

    def reminders_enabled(self) -> bool:
        return self.writer.reminders_enabled()

    def usage(self) -> Usage:
        """Calls made through this ledger, 429s among them, and Xero's day limit left."""
        pacer = self.client.pacer
        return Usage(self.client.calls, self.client.throttled, pacer.day_remaining, pacer.limits.day)

    # ---- webhooks
    def parse_webhook(self, headers: Mapping[str, str], raw_body: bytes) -> list[Change] | Rejected:
        return webhooks.parse(self.xero.webhook_key, headers, raw_body)
