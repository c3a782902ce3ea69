"""A finished night warms the firm's page cache only in a process that serves the pages.

`ccm worker` serves no web page, so what a warm-up computes (the books, the holds and report pages with
their charts) would never be read there: it was about a third of a worker's CPU on an unchanged night.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from connector.clock import Clock
from connector.config import Settings
from connector.serve import work
from connector.serve.runtime import Runtime
from connector.store import Store

NOW = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize(("pages", "warmed"), [(True, ["acme"]), (False, [])])
def test_a_night_warms_the_pages_only_where_they_are_served(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pages: bool, warmed: list[str]
) -> None:
    rt = Runtime(Settings(data_dir=tmp_path), store, Clock(NOW, datetime.now(UTC).timestamp(), 1.0), "w-1")
    if not pages:
        rt.pages = False  # as `ccm worker` sets it; `ccm serve` keeps the default
    seen: list[str] = []
    monkeypatch.setattr(
        work.snapshots, "warm", lambda _store, _settings, tenant_id, *_a, **_k: seen.append(tenant_id)
    )
    work._finished(rt, work.Done("night", "acme", work.JobOutcome.DONE, "nothing changed"))
    assert seen == warmed
