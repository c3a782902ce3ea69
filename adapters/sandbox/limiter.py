"""Fixed-window rate limits and a concurrency gate on a sandbox clock, as the ledgers enforce them."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from adapters.sandbox.clock import SandboxClock


@dataclass(frozen=True, slots=True)
class Window:
    """At most `limit` calls per fixed window of `seconds`, counted per tenant or for the whole app.

    `problem` names the window in answers (Xero's X-Rate-Limit-Problem: "minute", "day", "appminute").
    Windows are cut from the epoch on the sandbox clock, so a day window ends at UTC midnight.
    """

    problem: str
    limit: int
    seconds: int
    per_app: bool = False


@dataclass(frozen=True, slots=True)
class Verdict:
    """The limiter's answer for one call: allowed, or the problem and seconds to wait (None if unknown)."""

    allowed: bool
    remaining: Mapping[str, int]  # per window problem, calls left in the current window after this one
    problem: str | None = None
    retry_after: int | None = None


@dataclass
class WindowLimiter:
    """Fixed windows keyed by tenant (or app-wide), plus at most `concurrency` calls in flight per tenant.

    `enabled=False` allows everything (throughput benches) while still reporting full remaining counts.
    """

    clock: SandboxClock
    windows: Sequence[Window]
    concurrency: int | None = None
    enabled: bool = True
    _counts: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict, init=False, repr=False)
    _in_flight: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def _slot(self, window: Window, key: str, now: float) -> tuple[tuple[str, str], int, int]:
        ident = ("*app*" if window.per_app else key, window.problem)
        index = int(now // window.seconds)
        start, used = self._counts.get(ident, (index, 0))
        return ident, index, used if start == index else 0

    def remaining(self, key: str) -> dict[str, int]:
        """Calls left in each current window for `key`, without using one."""
        now = self.clock.timestamp()
        with self._lock:
            return {w.problem: w.limit - self._slot(w, key, now)[2] for w in self.windows}

    def acquire(self, key: str) -> Verdict:
        """Count one call for `key` if every window and the concurrency gate allow it.

        A refused call is not counted. An allowed call holds a concurrency slot until `release(key)`.
        """
        now = self.clock.timestamp()
        with self._lock:
            slots = [(w, *self._slot(w, key, now)) for w in self.windows]
            if self.enabled:
                for window, _, index, used in slots:
                    if used >= window.limit:
                        wait = math.ceil((index + 1) * window.seconds - now)
                        left = {w.problem: w.limit - u for w, _, _, u in slots}
                        return Verdict(False, left, window.problem, max(wait, 1))
                if self.concurrency is not None and self._in_flight.get(key, 0) >= self.concurrency:
                    return Verdict(False, {w.problem: w.limit - u for w, _, _, u in slots}, "concurrent")
            self._in_flight[key] = self._in_flight.get(key, 0) + 1
            if not self.enabled:  # not counting: report the full limits, as a ledger without limits would
                return Verdict(True, {w.problem: w.limit for w in self.windows})
            for _, ident, index, used in slots:
                self._counts[ident] = (index, used + 1)
            return Verdict(True, {w.problem: max(w.limit - u - 1, 0) for w, _, _, u in slots})

    def release(self, key: str) -> None:
        """The call that `acquire(key)` allowed has finished."""
        with self._lock:
            self._in_flight[key] = max(self._in_flight.get(key, 0) - 1, 0)

    @contextmanager
    def call(self, key: str) -> Iterator[Verdict]:
        """`acquire` for the length of a block, releasing the slot only if the call was allowed."""
        verdict = self.acquire(key)
        try:
            yield verdict
        finally:
            if verdict.allowed:
                self.release(key)
