"""Keeping under QBO's limits per company (realm): requests per minute and requests in flight.

A sliding log of the last minute's request starts: a new request waits until fewer than `per_minute` began
in the past 60 s, so no fixed minute window (what QBO counts) can see more. A semaphore caps the requests in
flight. One Pacer per realm per process, shared by every client of that realm.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ClassVar

WINDOW_S = 60.0
QBO_PER_MINUTE = 500
QBO_CONCURRENT = 10
# A margin under QBO's 500/min: its windows and our clock do not tick together.
DEFAULT_PER_MINUTE = 475


class Pacer:
    """Admits requests of one realm at a pace its limits allow."""

    _shared: ClassVar[dict[str, Pacer]] = {}
    _guard: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        per_minute: int = DEFAULT_PER_MINUTE,
        concurrent: int = QBO_CONCURRENT,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.per_minute = per_minute
        self._slots = threading.BoundedSemaphore(concurrent)
        self._starts: deque[float] = deque()
        self._lock = threading.Lock()
        self._clock = clock
        self._sleep = sleep
        self.waited_s = 0.0

    @classmethod
    def for_realm(
        cls,
        realm: str,
        per_minute: int = DEFAULT_PER_MINUTE,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Pacer:
        """The process-wide pacer of `realm` (created on first use)."""
        with cls._guard:
            pacer = cls._shared.get(realm)
            if pacer is None or pacer.per_minute != per_minute:
                pacer = cls._shared[realm] = cls(per_minute, clock=clock, sleep=sleep)
            return pacer

    def _admit(self) -> None:
        while True:
            with self._lock:
                now = self._clock()
                while self._starts and self._starts[0] <= now - WINDOW_S:
                    self._starts.popleft()
                if len(self._starts) < self.per_minute:
                    self._starts.append(now)
                    return
                wait = self._starts[0] + WINDOW_S - now
            self.waited_s += wait
            self._sleep(wait)

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one request slot: waits for the minute budget and for a free concurrency slot."""
        with self._slots:
            self._admit()
            yield
