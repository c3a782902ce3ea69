"""The QuickBooks sandbox with a company connected through the contract harness, for adapter tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.store import Store
from tests.contract.quickbooks_harness import QuickBooksHarness


@pytest.fixture
def harness(store: Store, tmp_path: Path) -> Iterator[QuickBooksHarness]:
    h = QuickBooksHarness()
    h.start(store, tmp_path)
    try:
        yield h
    finally:
        h.stop()
