"""Fixed-window rate limits and a concurrency gate on a sandbox clock, as the ledgers enforce them.

The windows are counted by connector/ratelimits/memory.py, ccm's one window limiter (pyrate-limiter's
FixedWindow over a log of starts per key): the sandboxes and ccm's pacers share its arithmetic.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from adapters.sandbox.clock import SandboxClock
from connector.ratelimits import Check
from connector.ratelimits.memory import MemoryBackend


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

    The windows are counted in connector/ratelimits' in-memory backend (pyrate-limiter's FixedWindow), the
    same arithmetic ccm's pacers keep to. `enabled=False` allows everything (throughput benches) while
    still reporting full remaining counts.
    """

    clock: SandboxClock
    windows: Sequence[Window]
    concurrency: int | None = None
    enabled: bool = True
    _counts: MemoryBackend = field(default_factory=MemoryBackend, init=False, repr=False)
    _checks: dict[str, list[Check]] = field(default_factory=dict, init=False, repr=False)
    _in_flight: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def _checks_of(self, key: str) -> list[Check]:
        """One check per window, in the windows' order: the app's windows under one key for every tenant."""
        checks = self._checks.get(key)
        if checks is None:
            checks = self._checks[key] = [
                Check(f"{'*app*' if w.per_app else key}:{w.problem}", ((w.limit, w.seconds),), fixed=True)
                for w in self.windows
            ]
        return checks

    def _used(self, key: str, now: float) -> list[int]:
        return [self._counts.counts(check, now)[0] for check in self._checks_of(key)]

    def remaining(self, key: str) -> dict[str, int]:
        """Calls left in each current window for `key`, without using one."""
        now = self.clock.timestamp()
        with self._lock:
            return {w.problem: w.limit - u for w, u in zip(self.windows, self._used(key, now), strict=True)}

    def acquire(self, key: str) -> Verdict:
        """Count one call for `key` if every window and the concurrency gate allow it.

        A refused call is not counted. An allowed call holds a concurrency slot until `release(key)`.
        """
        now = self.clock.timestamp()
        with self._lock:
            checks = self._checks_of(key)
            left = {w.problem: w.limit - u for w, u in zip(self.windows, self._used(key, now), strict=True)}
            if self.enabled:
                full = self._counts.check(checks, now)
                if not full.admitted:
                    problem = self.windows[[c.key for c in checks].index(full.key or "")].problem
                    return Verdict(False, left, problem, max(math.ceil(full.wait), 1))
                if self.concurrency is not None and self._in_flight.get(key, 0) >= self.concurrency:
                    return Verdict(False, left, "concurrent")
            self._in_flight[key] = self._in_flight.get(key, 0) + 1
            if not self.enabled:  # not counting: report the full limits, as a ledger without limits would
                return Verdict(True, {w.problem: w.limit for w in self.windows})
            self._counts.record(checks, now)
            return Verdict(True, {problem: max(n - 1, 0) for problem, n in left.items()})

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
