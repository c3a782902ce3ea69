"""The Xero adapter: pulls, write-backs and webhooks through xero-python, against Xero or its sandbox.

`spec()` is its registration (the `ccm.adapters` entry point "xero" in pyproject.toml): everything the core
needs, so the core names no ledger. The SDK loads only when a Xero tenant is used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters.xero.flow import FLOW
from adapters.xero.schema import raw_schema
from adapters.xero.settings import XeroSettings, xero_settings
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
from connector.mapping.loader import SHIPPED


def _factory(ctx: AdapterContext) -> Ledger:
    from adapters.xero.ledger import XeroLedger  # the SDK loads only when a Xero tenant is used

    return XeroLedger(ctx)


def _webhook(settings: Any, headers: Mapping[str, str], raw_body: bytes) -> list[Change] | Rejected:
    from adapters.xero import webhooks

    return webhooks.parse(xero_settings(settings).webhook_key, headers, raw_body)


def _sandbox(*, seed: int, size: str, limits: bool, demo: bool = False) -> RunningSandbox:
    from adapters.xero import sandbox

    handle = sandbox.start(seed=seed, size=size, limits=limits)
    return RunningSandbox(
        handle.settings(), lambda link: follow_consent(link, str(handle.ca_path)), handle.stop, handle
    )


def _serve(host: str, port: int, seed: int, size: str) -> None:
    from adapters.xero import sandbox

    sandbox.run_forever(host, port, seed=seed, size=size)


PAYMENT_STREAMS = ("payments", "overpayments", "prepayments")


def spec() -> AdapterSpec:
    """Register the adapter as "xero", with its shipped mapping and raw schema."""
    from adapters.xero import links
    from adapters.xero.webhooks import STREAMS

    return AdapterSpec(
        "xero", _factory, SHIPPED / "xero.yaml", raw_schema(), webhook=_webhook,
        event_streams=frozenset(STREAMS.values()),  # no payment events: payments are polled
        companions={"invoices": PAYMENT_STREAMS, "credit_notes": PAYMENT_STREAMS}, refresh_idle_days=60,
        record_url=links.record_url, display_name="Xero", settings=XeroSettings, connect=FLOW,
        sandbox=SandboxSpec(_sandbox, _serve),
        limits=Limits(day_calls=5000, minute_calls=60, concurrent=5),
    )  # fmt: skip
