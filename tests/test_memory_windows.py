"""The in-process window limiter (connector/ratelimits/memory.py): the shared backends' arithmetic in memory.

The pacers of both adapters count in it without a shared backend, and the sandboxes enforce the ledgers'
limits with it, so its answers must be the shared stores' answers: tests/test_shared_limits.py asks all
three the same questions. Here: what only the in-process backend offers (counts, check, record, its leases
across threads, its memory kept bounded).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from connector.ratelimits import Check
from connector.ratelimits.memory import LEAK_EVERY, MemoryBackend


def test_a_fixed_day_counts_from_zero_after_utc_midnight() -> None:
    windows = MemoryBackend()
    day = Check("tenant-a:day", ((2, 86_400.0),), fixed=True)
    evening = datetime(2026, 3, 2, 23, 59, 58, tzinfo=UTC).timestamp()
    windows.record([day], evening)
    windows.record([day], evening + 1)
    assert windows.counts(day, evening + 1) == [2]
    assert windows.admit([day], evening + 2).admitted
    assert windows.counts(day, evening + 2) == [1]


def test_a_refused_call_is_counted_nowhere_and_check_counts_nothing() -> None:
    windows = MemoryBackend()
    tenant, app = Check("t1:minute", ((5, 60.0),)), Check("app:minute", ((1, 60.0),))
    assert windows.admit([tenant, app], 0.0).admitted
    refused = windows.admit([tenant, app], 1.0)
    assert refused.key == "app:minute" and refused.wait == pytest.approx(59.0, abs=0.01)
    assert windows.counts(tenant, 1.0) == [1]  # the tenant's window kept no trace of the refused call
    assert not windows.check([tenant, app], 2.0).admitted
    assert windows.check([tenant], 2.0).admitted and windows.counts(tenant, 2.0) == [1]


def test_recorded_starts_count_in_order_even_when_they_come_out_of_order() -> None:
    windows = MemoryBackend()
    check = Check("gate", ((3, 10.0),))
    for start in (5.0, 1.0, 3.0):  # a start claimed ahead, then earlier ones
        windows.record([check], start)
    assert windows.counts(check, 11.5) == [2]  # 1.0 has left the window [1.5, 11.5]; 3.0 and 5.0 have not
    refused = windows.check([check], 6.0)
    assert refused.wait == pytest.approx(5.0, abs=0.01)  # until 1.0 leaves, at 11.0


def test_starts_no_window_counts_are_dropped() -> None:
    windows = MemoryBackend()
    check = Check("busy", ((10_000, 1.0),))
    for i in range(3 * LEAK_EVERY):
        windows.record([check], i * 0.01)
    assert len(windows._logs["busy"]) <= LEAK_EVERY + 100  # only about the last second's starts are kept
    assert windows.counts(check, 3 * LEAK_EVERY * 0.01) == [100]


def test_in_flight_places_are_capped_and_released_across_threads() -> None:
    windows = MemoryBackend()
    tokens: list[str | None] = []
    threads = [threading.Thread(target=lambda: tokens.append(windows.lease("t1", 3))) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    taken = [t for t in tokens if t is not None]
    assert len(taken) == 3 and len(set(taken)) == 3
    assert windows.lease("t2", 3) is not None  # another key's places
    windows.release("t1", taken[0])
    windows.release("t1", "unknown")  # ignored
    assert windows.lease("t1", 3) is not None and windows.lease("t1", 3) is None
