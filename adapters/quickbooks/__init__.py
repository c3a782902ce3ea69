"""QuickBooks Online: the adapter (python-quickbooks) and its local sandbox.

`spec()` is its registration (the `ccm.adapters` entry point "quickbooks" in pyproject.toml): everything the
core needs, so the core names no ledger.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adapters.quickbooks.flow import FLOW
from adapters.quickbooks.settings import QuickBooksSettings, quickbooks_settings
from connector.flow import follow_consent
from connector.ledger import (
    AdapterContext,
    AdapterSpec,
    Change,
    Ledger,
    Limits,
    Rejected,
    RunningSandbox,
    SandboxSpec,
)

MAPPING = Path(__file__).resolve().parents[2] / "mappings" / "quickbooks.yaml"


def _factory(context: AdapterContext) -> Ledger:
    from adapters.quickbooks.ledger import QuickBooksLedger

    return QuickBooksLedger.from_context(context)


def _webhook(settings: Any, headers: Mapping[str, str], raw_body: bytes) -> list[Change] | Rejected:
    from adapters.quickbooks import webhooks

    return webhooks.parse(headers, raw_body, quickbooks_settings(settings).webhook_verifier)


def _sandbox(*, seed: int, size: str, limits: bool, demo: bool = False) -> RunningSandbox:
    from adapters.quickbooks import sandbox

    handle = sandbox.start(seed=seed, size=size, limits=limits)
    if demo:
        handle.set_online_payments(True)  # the company takes card payments: reminders carry pay links
    return RunningSandbox(
        handle.settings(), lambda link: follow_consent(link, str(handle.ca_path)), handle.stop, handle
    )


def _serve(host: str, port: int, seed: int, size: str) -> None:
    from adapters.quickbooks import sandbox

    sandbox.run_forever(host, port, seed=seed, size=size)


def spec() -> AdapterSpec:
    """Register the QuickBooks Online adapter: factory, shipped mapping and raw schema."""
    from adapters.quickbooks import links
    from adapters.quickbooks.schema import raw_schema
    from adapters.quickbooks.webhooks import STREAMS

    return AdapterSpec(
        "quickbooks", _factory, MAPPING, raw_schema(), webhook=_webhook,
        event_streams=frozenset(STREAMS.values()), refresh_idle_days=100, record_url=links.record_url,
        display_name="QuickBooks", settings=QuickBooksSettings, connect=FLOW,
        sandbox=SandboxSpec(_sandbox, _serve),
        limits=Limits(minute_calls=500, concurrent=10),
    )  # fmt: skip
