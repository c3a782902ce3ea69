"""Runs the contract suite once per ledger harness listed in HARNESSES ("module:Class").

HARNESSES are the ledgers with an HTTP sandbox: every suite here runs against them. The contract itself
(test_contract.py) also runs against CONTRACT_ONLY, ledgers installed only for the tests through the
`ccm.adapters` entry point (tests/ledgers/memo), whose books have no wire to lose answers on.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.store import Store
from tests.contract.harness import Harness

HARNESSES = {
    "xero": "tests.contract.xero_harness:XeroHarness",
    "quickbooks": "tests.contract.quickbooks_harness:QuickBooksHarness",
}
CONTRACT_ONLY = {"memo": "tests.ledgers.memo.harness:MemoHarness"}


def _load(name: str) -> Harness:
    module_name, cls = {**HARNESSES, **CONTRACT_ONLY}[name].split(":")
    module = importlib.import_module(module_name)
    harness: Harness = getattr(module, cls)()
    return harness


def started(name: str, store: Store, tmp_path: Path, *, limits: bool) -> Iterator[Harness]:
    """The harness `name`, started (limits on or off) for the test and stopped after it."""
    harness = _load(name)
    harness.start(store, tmp_path, limits=limits)
    try:
        yield harness
    finally:
        harness.stop()


@pytest.fixture(params=list(HARNESSES))
def harness(request: pytest.FixtureRequest, store: Store, tmp_path: Path) -> Iterator[Harness]:
    """A ledger's sandbox with limits off, and its adapter."""
    yield from started(request.param, store, tmp_path, limits=False)


@pytest.fixture(params=list(HARNESSES))
def limited(request: pytest.FixtureRequest, store: Store, tmp_path: Path) -> Iterator[Harness]:
    """A ledger's sandbox enforcing its real rate limits (on an accelerated clock)."""
    yield from started(request.param, store, tmp_path, limits=True)
