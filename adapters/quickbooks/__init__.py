"""QuickBooks Online: the adapter (python-quickbooks) and its local sandbox."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from connector.ledger import AdapterContext, AdapterSpec, Change, Ledger, Rejected

MAPPING = Path(__file__).resolve().parents[2] / "mappings" / "quickbooks.yaml"


def _factory(context: AdapterContext) -> Ledger:
    from adapters.quickbooks.ledger import QuickBooksLedger

    return QuickBooksLedger.from_context(context)


def _webhook(settings: Any, headers: Mapping[str, str], raw_body: bytes) -> list[Change] | Rejected:
    from adapters.quickbooks import webhooks

    return webhooks.parse(headers, raw_body, settings.quickbooks.webhook_verifier)


def spec() -> AdapterSpec:
    """Register the QuickBooks Online adapter: factory, shipped mapping and raw schema."""
    from adapters.quickbooks import links
    from adapters.quickbooks.schema import raw_schema
    from adapters.quickbooks.webhooks import STREAMS

    return AdapterSpec(
        "quickbooks", _factory, MAPPING, raw_schema(), webhook=_webhook,
        event_streams=frozenset(STREAMS.values()), refresh_idle_days=100, record_url=links.record_url,
    )  # fmt: skip
