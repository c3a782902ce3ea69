"""The Xero adapter's settings: `[ledgers.xero]` in ccm.toml (`[xero]`, the older spelling, is the same),
CCM_LEDGERS__XERO__<KEY> or CCM_XERO__<KEY> in the environment."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from connector.config import Settings
from connector.ledger import ledger_settings


class XeroSettings(BaseModel):
    """The Xero app ccm connects as, and where Xero is (the sandbox overrides the URLs and the CA)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    client_id: str | None = None
    client_secret: str | None = None
    webhook_key: str | None = None
    redirect_uri: str = "http://localhost:8765/oauth/xero/callback"
    granular_scopes: bool = False  # apps created from March 2026 must use the granular scopes
    login_url: str = "https://login.xero.com"
    identity_url: str = "https://identity.xero.com"
    api_url: str = "https://api.xero.com"
    ca_bundle: Path | None = None  # extra CA to trust (the local sandbox's); None: the system's
    pacing: bool = True  # space calls under Xero's limits; off only against a sandbox with limits off
    day_limit: int = Field(default=5000, ge=1)  # calls a day per organisation (Xero's Starter plan: 1,000)
    app_minute_limit: int = Field(default=10_000, ge=2)  # calls a minute across all organisations of the app


def xero_settings(settings: Settings) -> XeroSettings:
    """The Xero section of ccm's settings (its defaults when the file has none)."""
    return ledger_settings(settings, "xero", XeroSettings)
