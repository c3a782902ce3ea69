"""The Xero adapter: pulls, write-backs and webhooks through xero-python, against Xero or its sandbox."""

from __future__ import annotations

from adapters.base import AdapterContext, AdapterSpec, Ledger
from adapters.xero.schema import raw_schema
from connector.mapping.loader import SHIPPED


def _factory(ctx: AdapterContext) -> Ledger:
    from adapters.xero.ledger import XeroLedger  # the SDK loads only when a Xero tenant is used

    return XeroLedger(ctx)


def spec() -> AdapterSpec:
    """Register the adapter as "xero", with its shipped mapping and raw schema."""
    return AdapterSpec("xero", _factory, SHIPPED / "xero.yaml", raw_schema())
