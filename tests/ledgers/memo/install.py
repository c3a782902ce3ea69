"""Install the memo ledger as a package would: a `*.dist-info` declaring the `ccm.adapters` entry point, in a
folder put on sys.path. Nothing registers it by hand; ccm finds it by the entry point, as it finds the built-ins.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from connector import ledger as registry

DIST = "ccm_memo_ledger-0.1.dist-info"
ENTRY_POINTS = "[ccm.adapters]\nmemo = tests.ledgers.memo:spec\n"


@contextmanager
def installed(site: Path) -> Iterator[Path]:
    """The memo ledger installed in `site` for the duration; uninstalled (and forgotten) after."""
    dist = site / DIST
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: ccm-memo-ledger\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    try:
        yield dist
    finally:
        sys.path.remove(str(site))
        importlib.invalidate_caches()
        registry.forget("memo")
