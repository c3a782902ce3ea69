"""The memo ledger's settings: `[ledgers.memo]` in ccm.toml, CCM_LEDGERS__MEMO__<KEY> in the environment."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from connector.config import Settings
from connector.ledger import ledger_settings


class MemoSettings(BaseModel):
    """Where the books are, and the app ccm connects to them as."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    book: Path | None = None  # the JSON file holding the books (the memo "API" reads and writes it)
    client_id: str = "memo-app"
    client_secret: str | None = None
    webhook_secret: str | None = None
    redirect_uri: str = "http://localhost:8765/oauth/memo/callback"
    page_size: int = Field(default=25, ge=1, le=1000)


def memo_settings(settings: Settings) -> MemoSettings:
    """The memo section of ccm's settings (its defaults when none was given)."""
    return ledger_settings(settings, "memo", MemoSettings)
