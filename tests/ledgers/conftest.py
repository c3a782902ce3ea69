"""The memo ledger installed by entry point for a test, and its books."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ledgers.memo.install import installed


@pytest.fixture
def memo_installed(tmp_path: Path) -> Iterator[Path]:
    """The memo ledger installed as a package would be (a dist-info on sys.path), for this test only."""
    with installed(tmp_path / "site") as dist:
        yield dist
