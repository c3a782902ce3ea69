"""Runs the contract suite once per ledger harness listed in HARNESSES ("module:Class")."""

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


def _load(name: str) -> Harness:
    module_name, cls = HARNESSES[name].split(":")
    module = importlib.import_module(module_name)
    harness: Harness = getattr(module, cls)()
    return harness


def _started(name: str, store: Store, tmp_path: Path, *, limits: bool) -> Iterator[Harness]:
    harness = _load(name)
    harness.start(store, tmp_path, limits=limits)
    try:
        yield harness
    finally:
        harness.stop()


@pytest.fixture(params=list(HARNESSES))
def harness(request: pytest.FixtureRequest, store: Store, tmp_path: Path) -> Iterator[Harness]:
    """A ledger's sandbox with limits off, and its adapter."""
    yield from _started(request.param, store, tmp_path, limits=False)


@pytest.fixture(params=list(HARNESSES))
def limited(request: pytest.FixtureRequest, store: Store, tmp_path: Path) -> Iterator[Harness]:
    """A ledger's sandbox enforcing its real rate limits (on an accelerated clock)."""
    yield from _started(request.param, store, tmp_path, limits=True)
