"""QuickBooks Online: the adapter (python-quickbooks) and its local sandbox."""

from __future__ import annotations

from pathlib import Path

from adapters.base import AdapterContext, AdapterSpec, Ledger

MAPPING = Path(__file__).resolve().parents[2] / "mappings" / "quickbooks.yaml"


def _factory(context: AdapterContext) -> Ledger:
    from adapters.quickbooks.ledger import QuickBooksLedger

    return QuickBooksLedger.from_context(context)


def spec() -> AdapterSpec:
    """Register the QuickBooks Online adapter: factory, shipped mapping and raw schema."""
    from adapters.quickbooks.schema import raw_schema

    return AdapterSpec("quickbooks", _factory, MAPPING, raw_schema())
