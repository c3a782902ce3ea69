"""Paging and cursors of adapters.xero.pull against a list that behaves like Xero's.

The stand-in list (Xero is outside our control) answers like GET /Invoices with If-Modified-Since (whole
seconds, records modified at or after it), order=UpdatedDateUTC ASC, page/pageSize and the pagination
envelope's itemCount. Tests change it between pages to show nothing is skipped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from adapters.xero.pull import ENDPOINTS, Endpoint, Fetched, if_modified_since, pull, start
from connector.ledger import Cursor, Page

T0 = datetime(2026, 1, 1, tzinfo=UTC)
INVOICES = ENDPOINTS["invoices"]


def msjson(at: datetime) -> str:
    return f"/Date({int(at.timestamp() * 1000)}+0000)/"


@dataclass
class XeroList:
    records: dict[str, datetime] = field(default_factory=dict)
    page_size: int = 3
    calls: int = 0
    before_page: Callable[[int], None] | None = None

    def touch(self, rid: str, at: datetime) -> None:
        self.records[rid] = at

    def fetch(self, endpoint: Endpoint, since: datetime | None, page: int) -> Fetched:
        self.calls += 1
        if self.before_page is not None:
            self.before_page(self.calls)
        header = if_modified_since(since)
        floor = datetime.fromisoformat(header).replace(tzinfo=UTC) if header else None
        rows = sorted((at, rid) for rid, at in self.records.items() if floor is None or at >= floor)
        chunk = rows[(page - 1) * self.page_size : page * self.page_size]
        out: list[Mapping[str, Any]] = [{"InvoiceID": rid, "UpdatedDateUTC": msjson(at)} for at, rid in chunk]
        return Fetched(out, len(rows), 1)


def ids(pages: list[Page]) -> list[str]:
    return [r["InvoiceID"] for p in pages for r in p.records]


def firm(n: int) -> XeroList:
    source = XeroList()
    for i in range(n):
        source.touch(f"i{i:02d}", T0 + timedelta(minutes=i))
    return source


def test_a_full_read_costs_ceil_records_over_page_size_calls() -> None:
    source = firm(9)
    pages = list(pull(INVOICES, None, source.fetch, page_size=3))
    assert ids(pages) == [f"i{i:02d}" for i in range(9)]
    assert source.calls == 3  # the item count says page 3 is the last: no empty fourth call
    assert pages[-1].cursor == Cursor(T0 + timedelta(minutes=8), None)
    assert [p.total_hint for p in pages] == [9, 9, 9]


def test_an_unchanged_ledger_costs_one_call() -> None:
    source = firm(9)
    final = list(pull(INVOICES, None, source.fetch, page_size=3))[-1].cursor
    source.calls = 0
    again = list(pull(INVOICES, final, source.fetch, page_size=3))
    assert source.calls == 1
    assert ids(again) == ["i08"]  # the boundary record is re-read (harmless), nothing else


def test_only_records_changed_since_the_cursor_are_read() -> None:
    source = firm(9)
    final = list(pull(INVOICES, None, source.fetch, page_size=3))[-1].cursor
    source.touch("i02", T0 + timedelta(hours=1))
    assert ids(list(pull(INVOICES, final, source.fetch, page_size=3))) == ["i08", "i02"]


def test_a_record_moved_under_a_live_pass_is_followed_by_a_repair_pass() -> None:
    source = firm(9)

    def move_early_record(call: int) -> None:
        if call == 2:  # after page 1 was read, i01 changes: every later record shifts one page-slot left
            source.touch("i01", T0 + timedelta(hours=1))

    source.before_page = move_early_record
    pages = list(pull(INVOICES, None, source.fetch, page_size=3))
    assert set(ids(pages)) == {f"i{i:02d}" for i in range(9)}  # i03 shifted into page 1 but is not lost
    assert len({p.cursor for p in pages}) == len(pages)  # distinct positions: the engine's loop guard holds


@pytest.mark.parametrize("crash_after", [1, 2])
def test_a_pull_resumed_from_any_page_cursor_misses_nothing(crash_after: int) -> None:
    source = firm(9)
    first = list(pull(INVOICES, None, source.fetch, page_size=3))[:crash_after]
    source.touch("i00", T0 + timedelta(hours=1))  # changes while the process is down shift the pages
    resumed = list(pull(INVOICES, first[-1].cursor, source.fetch, page_size=3))
    assert set(ids(first) + ids(resumed)) == {f"i{i:02d}" for i in range(9)}
    assert "i00" in ids(resumed)


def test_a_lowered_since_discards_the_page_token_and_re_reads_more() -> None:
    token_cursor = next(iter(pull(INVOICES, None, firm(9).fetch, page_size=3))).cursor
    lowered = Cursor(T0 - timedelta(days=1), token_cursor.token)
    assert start(lowered).since == lowered.since
    assert start(lowered).page == 1


def test_the_header_is_whole_seconds_a_second_early() -> None:
    assert if_modified_since(datetime(2026, 1, 1, 10, 0, 0, 500_000, tzinfo=UTC)) == "2026-01-01T09:59:59"
    assert if_modified_since(None) is None
