"""A process keeps one pacer per organisation (Xero) or company (QuickBooks) *and API address*.

Two sandboxes that serve the same org id (generated from the same seed) are two ledgers with limits of their
own. Keyed by the id alone, a second sandbox in the same process inherited the first one's minute window: a
test that followed another with the same seed waited out a full minute before its first call.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.quickbooks.ledger import QuickBooksLedger
from adapters.quickbooks.settings import QuickBooksSettings
from adapters.xero.ledger import XeroLedger
from adapters.xero.settings import XeroSettings
from connector.config import Settings
from connector.ledger import AdapterContext, Services
from connector.store import Store

ORG = "7c0d9b60-0000-4000-8000-00000000abcd"  # the same id at both addresses
# first, again (the same ledger), other (another ledger serving the same id)
ADDRESSES = ("https://127.0.0.1:40001", "https://127.0.0.1:40001", "https://127.0.0.1:40002")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """Only the vault's home: nothing here is stored, so one backend is enough."""
    opened = Store.open(f"sqlite:///{tmp_path / 'ccm.db'}")
    yield opened
    opened.close()


def _xero(tmp_path: Path, store: Store, api_url: str) -> XeroLedger:
    xero = XeroSettings(client_id="one-app", client_secret="s", api_url=api_url, pacing=True)
    settings = Settings(data_dir=tmp_path, ledgers={"xero": xero}, limits={"backend": "memory"})  # type: ignore[arg-type]
    return XeroLedger(AdapterContext("firm", ORG, settings, Services(store)))


def _quickbooks(tmp_path: Path, store: Store, api_url: str) -> QuickBooksLedger:
    qbo = QuickBooksSettings(client_id="one-app", client_secret="s", api_url=api_url)
    settings = Settings(data_dir=tmp_path, ledgers={"quickbooks": qbo}, limits={"backend": "memory"})  # type: ignore[arg-type]
    return QuickBooksLedger.from_context(AdapterContext("firm", "4620816365", settings, Services(store)))


def test_a_second_xero_address_with_the_same_org_id_does_not_inherit_the_first_ones_minute(
    tmp_path: Path, store: Store
) -> None:
    first, again, other = (_xero(tmp_path, store, address).client.pacer for address in ADDRESSES)
    now = time.time()
    first.minute.observe(58, now)  # the ledger counts our calls: the gate engages
    for _ in range(59):
        first.minute.reserve(now)
    assert again.minute is first.minute  # one ledger: every pacer of the org shares its window
    assert again.minute.reserve(now) > 50  # ... which is full: the next start waits most of a minute
    assert other.minute is not first.minute
    other.minute.observe(58, now)
    assert other.minute.reserve(now) == 0  # another ledger: its window is empty


def test_a_second_quickbooks_address_with_the_same_realm_id_keeps_windows_of_its_own(
    tmp_path: Path, store: Store
) -> None:
    first, again, other = (_quickbooks(tmp_path, store, address).api._pacer for address in ADDRESSES)
    assert again is first
    assert other is not first
    for _ in range(first.per_second):
        with first.slot():
            pass
    with other.slot():  # the first company's full second does not hold the other back
        pass
    assert other.waited_s == 0 and first.waited_s == 0
