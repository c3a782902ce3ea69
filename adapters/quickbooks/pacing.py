"""Keeping under QBO's limits per company (realm): requests per second, per minute, and in flight.

Sliding windows of request starts: a new request waits until fewer than `per_minute` began in the past 60 s
and fewer than `per_second` in the past `SECOND_WINDOW_S`, so no fixed window of QBO's (a second, a minute)
can see more. The second's window is a little longer than a second: a request reaches QBO some milliseconds
after it was admitted here, and those delays vary, so ten admissions a second apart could otherwise land
within one second there (SECOND_WINDOW_S leaves 200 ms for that). A semaphore caps the requests in
flight. Batch requests also keep under 40 a minute (39 per 61 s, the same margin). One Pacer per realm (and
API address) per process, shared by every client of that realm. `quickbooks.pacing = false` keeps only the
in-flight cap, against a sandbox with limits off (QuickBooks sends no remaining-calls headers to show whether
it counts, as Xero does).
The windows are counted in this process (connector/ratelimits/memory.py) or, with a shared backend, where
every process counts: the same checks, the same arithmetic (pyrate-limiter's SlidingWindowLog) either way.

With a shared backend (connector/ratelimits: PostgreSQL or Redis) the same windows are counted there under
the realm id, by every process, and the in-flight places are expiring leases: two processes on one company
(two ccm workers, or two firms connected to it) keep its limits together.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ClassVar

from connector.ratelimits import Backend, Check, in_flight
from connector.ratelimits.memory import MemoryBackend

WINDOW_S = 60.0
QBO_PER_SECOND = 10  # per realm and app, sandbox companies too since 2025-09-15
QBO_PER_MINUTE = 500
QBO_CONCURRENT = 10
# A margin under QBO's 500/min: its windows and our clock do not tick together.
DEFAULT_PER_MINUTE = 475
DEFAULT_PER_SECOND = QBO_PER_SECOND
# 1 s plus room for the varying delay between admission here and arrival at QBO: 100 ms was not enough on a
# loaded machine (CI's three test workers on two cores: 11 arrivals within one second at the sandbox). Ten
# requests a 1.2 s is 8.3 a second, which only a large first sync (one call per 1,000 records) ever reaches.
SECOND_WINDOW_S = 1.2
QBO_BATCHES_PER_MINUTE = 40
BATCH_BUDGET = QBO_BATCHES_PER_MINUTE - 1  # per BATCH_WINDOW_S: one spare, and a second for transit
BATCH_WINDOW_S = WINDOW_S + 1.0


class Pacer:
    """Admits requests of one realm at a pace its limits allow."""

    _shared: ClassVar[dict[str, Pacer]] = {}
    _guard: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        per_minute: int = DEFAULT_PER_MINUTE,
        concurrent: int = QBO_CONCURRENT,
        *,
        per_second: int = DEFAULT_PER_SECOND,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        shared: Backend | None = None,
        realm: str = "",
        spacing: bool = True,
    ) -> None:
        self.shared = shared
        self.spacing = spacing  # off: no windows (a sandbox with limits off); the in-flight cap still holds
        self.concurrent = concurrent
        self._key = f"qbo:{realm}"
        self._checks = Check(self._key, ((per_second, SECOND_WINDOW_S), (per_minute, WINDOW_S)))
        self._batch_check = Check(f"{self._key}:batch", ((BATCH_BUDGET, BATCH_WINDOW_S),))
        self._windows: Backend = shared or MemoryBackend()  # where the starts are counted
        self.per_minute = per_minute
        self.per_second = per_second
        self._slots = threading.BoundedSemaphore(concurrent)
        self._clock = clock
        self._sleep = sleep
        self.waited_s = 0.0

    @classmethod
    def for_realm(
        cls,
        realm: str,
        per_minute: int = DEFAULT_PER_MINUTE,
        *,
        per_second: int = DEFAULT_PER_SECOND,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        shared: Backend | None = None,
        key: str | None = None,
        spacing: bool = True,
    ) -> Pacer:
        """The process-wide pacer of `realm` (created on first use); `key` the realm id the shared backend
        counts it under (default `realm`)."""
        with cls._guard:
            pacer = cls._shared.get(realm)
            if pacer is None or (pacer.per_minute, pacer.per_second, pacer.shared, pacer.spacing) != (
                per_minute, per_second, shared, spacing
            ):  # fmt: skip
                pacer = cls(per_minute, per_second=per_second, clock=clock, sleep=sleep, shared=shared,
                            realm=key or realm, spacing=spacing)  # fmt: skip
                cls._shared[realm] = pacer
            return pacer

    def _admit(self, batch: bool) -> None:
        """Wait until the request fits the second's and the minute's windows (and the batch budget, for a
        batch), counting its start there."""
        if not self.spacing:
            return
        checks = (self._checks, self._batch_check) if batch else (self._checks,)
        while True:
            verdict = self._windows.admit(checks, self._clock())
            if verdict.admitted:
                return
            self.waited_s += verdict.wait
            self._sleep(verdict.wait)

    @contextmanager
    def slot(self, batch: bool = False) -> Iterator[None]:
        """Hold one request slot: waits for a concurrency slot and the second's and the minute's budgets (and
        the batch budget, for a batch request)."""
        if self.shared is not None:
            with in_flight(self.shared, f"{self._key}:inflight", self.concurrent):
                self._admit(batch)
                yield
            return
        with self._slots:
            self._admit(batch)
            yield
