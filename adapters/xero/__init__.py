"""The Xero adapter: pulls, write-backs and webhooks through xero-python, against Xero or its sandbox."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.xero.schema import raw_schema
from connector.ledger import AdapterContext, AdapterSpec, Change, Ledger, Rejected
from connector.mapping.loader import SHIPPED


def _factory(ctx: AdapterContext) -> Ledger:
    from adapters.xero.ledger import XeroLedger  # the SDK loads only when a Xero tenant is used

    return XeroLedger(ctx)


def _webhook(settings: Any, headers: Mapping[str, str], raw_body: bytes) -> list[Change] | Rejected:
    from adapters.xero import webhooks

    return webhooks.parse(settings.xero.webhook_key, headers, raw_body)


PAYMENT_STREAMS = ("payments", "overpayments", "prepayments")


def spec() -> AdapterSpec:
    """Register the adapter as "xero", with its shipped mapping and raw schema."""
    from adapters.xero import links
    from adapters.xero.webhooks import STREAMS

    return AdapterSpec(
        "xero", _factory, SHIPPED / "xero.yaml", raw_schema(), webhook=_webhook,
        event_streams=frozenset(STREAMS.values()),  # no payment events: payments are polled
        companions={"invoices": PAYMENT_STREAMS, "credit_notes": PAYMENT_STREAMS}, refresh_idle_days=60,
        record_url=links.record_url,
    )  # fmt: skip
