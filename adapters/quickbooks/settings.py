"""The QuickBooks Online adapter's settings: `[ledgers.quickbooks]` in ccm.toml (`[quickbooks]`, the older
spelling, is the same), CCM_LEDGERS__QUICKBOOKS__<KEY> or CCM_QUICKBOOKS__<KEY> in the environment."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from connector.config import Settings
from connector.ledger import ledger_settings


class QuickBooksSettings(BaseModel):
    """The Intuit app ccm connects as, and where QuickBooks Online is."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    client_id: str | None = None
    client_secret: str | None = None
    webhook_verifier: str | None = None
    redirect_uri: str = "http://localhost:8765/oauth/quickbooks/callback"
    authorize_url: str = "https://appcenter.intuit.com/connect/oauth2"
    token_url: str = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"  # noqa: S105 - a URL
    revoke_url: str = "https://developer.api.intuit.com/v2/oauth2/tokens/revoke"
    api_url: str = "https://quickbooks.api.intuit.com"
    minor_version: int = Field(default=75, ge=75)
    ca_bundle: Path | None = None
    # space requests under QuickBooks' limits (10/s, 500/min); off only against a sandbox with limits off
    pacing: bool = True


def quickbooks_settings(settings: Settings) -> QuickBooksSettings:
    """The QuickBooks section of ccm's settings (its defaults when the file has none)."""
    return ledger_settings(settings, "quickbooks", QuickBooksSettings)
