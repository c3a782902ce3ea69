"""A test-only third ledger, "memo": books in one JSON file, plugged into ccm only through its extension point.

It is registered by the `ccm.adapters` entry point `memo = tests.ledgers.memo:spec` (tests/ledgers/memo/
install.py writes a dist-info declaring it), never by `register()`: it proves a ledger needs no edit to
the core. docs/adding-a-ledger.md walks through it.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from connector.ledger import (
    AdapterContext,
    AdapterSpec,
    Change,
    Ledger,
    Limits,
    Rejected,
    RunningSandbox,
    SandboxSpec,
    ledger_settings,
)
from tests.ledgers.memo.book import STREAMS, Book
from tests.ledgers.memo.flow import FLOW, consent
from tests.ledgers.memo.settings import MemoSettings

MAPPING = Path(__file__).with_name("memo.yaml")
MINUTE_LIMIT = 30  # calls a minute per organisation, when the books enforce it


def _factory(ctx: AdapterContext) -> Ledger:
    from tests.ledgers.memo.ledger import MemoLedger

    return MemoLedger(ctx)


def _webhook(settings: Any, headers: Mapping[str, str], raw_body: bytes) -> list[Change] | Rejected:
    from tests.ledgers.memo import webhooks

    return webhooks.parse(ledger_settings(settings, "memo", MemoSettings).webhook_secret, headers, raw_body)


def _sandbox(*, seed: int, size: str, limits: bool, demo: bool = False) -> RunningSandbox:
    """Books in a new temporary folder, as of today."""
    folder = Path(tempfile.mkdtemp(prefix="memo-"))
    book = Book.create(folder / "books.json", lambda: datetime.now(UTC), seed=seed, size=size,
                       today=datetime.now(UTC).date(), minute_limit=MINUTE_LIMIT if limits else None)  # fmt: skip
    settings = MemoSettings(book=book.path, client_secret="memo-secret", webhook_secret="memo-webhooks")
    return RunningSandbox(settings, consent, lambda: None, book)


def _serve(host: str, port: int, seed: int, size: str) -> None:
    """`ccm sandbox memo`: books in the current folder (memo has no server: its API is the file)."""
    path = Path.cwd() / f"memo-books-{seed}.json"
    Book.create(path, lambda: datetime.now(UTC), seed=seed, size=size, today=datetime.now(UTC).date())
    print(f"[ledgers.memo]\nbook = {str(path)!r}\nclient_secret = 'memo-secret'")
    threading.Event().wait()


def spec() -> AdapterSpec:
    """The memo ledger's registration: what the `ccm.adapters` entry point "memo" names."""
    return AdapterSpec(
        "memo", _factory, MAPPING, webhook=_webhook, event_streams=frozenset(STREAMS), display_name="Memo",
        settings=MemoSettings, connect=FLOW, sandbox=SandboxSpec(_sandbox, _serve),
        limits=Limits(minute_calls=MINUTE_LIMIT), refresh_idle_days=30,
    )  # fmt: skip
