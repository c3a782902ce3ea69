"""Windows and in-flight places in this process's memory: the shared stores' arithmetic, without a store.

The one window limiter of ccm: the pacers of both adapters count in it when no shared backend is set (one
process), and the sandboxes enforce the ledgers' own limits with it. Each key keeps a sorted log of call
starts (milliseconds of the caller's clock); whether a call fits, and how long it waits when it does not, is
pyrate-limiter's SlidingWindowLog or FixedWindow `decide`, as in connector/ratelimits/pgstore.py.

Invariants:
- `admit` counts a call in every window of every check, or in none (a refusal counts nowhere); it never
  waits. `check` answers the same without counting; `record` counts without asking (a start the caller
  has already decided on).
- A log keeps its starts in order whatever order the callers' clocks are read in, and drops the starts no
  window of its check can count any more (every `LEAK_EVERY` records of a key).
- An in-flight place is held until released: one process, so no lease needs to expire.
"""

from __future__ import annotations

import bisect
import threading
import uuid
from collections.abc import Sequence
from functools import partial

from pyrate_limiter import Rate

from connector.ratelimits import Check, Verdict

LEAK_EVERY = 256  # records of a key between two drops of the starts no window counts any more


class MemoryBackend:
    """Every key's starts and in-flight places, in this process (thread-safe)."""

    name = "memory"

    def __init__(self) -> None:
        self._logs: dict[str, list[int]] = {}
        self._recorded: dict[str, int] = {}
        self._places: dict[str, set[str]] = {}
        self._rates: dict[Check, list[Rate]] = {}
        self._lock = threading.Lock()

    def _rates_of(self, check: Check) -> list[Rate]:
        rates = self._rates.get(check)
        if rates is None:
            rates = self._rates[check] = check.rates()
        return rates

    def _counted(self, log: list[int], check: Check, stamp: int) -> list[int]:
        """The starts in `log` that each of the check's windows holds at `stamp`."""
        algorithm = check.algorithm()
        return [
            len(log) - bisect.bisect_left(log, algorithm.window_start(r, stamp))
            for r in self._rates_of(check)
        ]

    def _decide(self, checks: Sequence[Check], stamp: int) -> Verdict:
        for check in checks:
            log = self._logs.get(check.key, [])
            counts = self._counted(log, check, stamp)
            decision = check.algorithm().decide(
                self._rates_of(check), counts, 1, stamp, partial(_newest, log)
            )
            if not decision.allowed:
                return Verdict(max(decision.retry_after_ms or 1, 1) / 1000, check.key)
        return Verdict()

    def _record(self, checks: Sequence[Check], stamp: int) -> None:
        for check in checks:
            log = self._logs.setdefault(check.key, [])
            if log and log[-1] > stamp:
                bisect.insort(log, stamp)
            else:
                log.append(stamp)
            done = self._recorded[check.key] = self._recorded.get(check.key, 0) + 1
            if done % LEAK_EVERY == 0:
                bound = check.algorithm().leak_bound(self._rates_of(check), stamp)
                del log[: bisect.bisect_left(log, bound)]

    def check(self, checks: Sequence[Check], now: float) -> Verdict:
        """Whether a call started at `now` would fit every check (nothing is counted)."""
        with self._lock:
            return self._decide(checks, _stamp(now))

    def admit(self, checks: Sequence[Check], now: float) -> Verdict:
        """Count one call started at `now` under every check, or refuse it (counted nowhere)."""
        stamp = _stamp(now)
        with self._lock:
            verdict = self._decide(checks, stamp)
            if verdict.admitted:
                self._record(checks, stamp)
            return verdict

    def record(self, checks: Sequence[Check], now: float) -> None:
        """Count a call started at `now` under every check, whether it fits or not."""
        with self._lock:
            self._record(checks, _stamp(now))

    def counts(self, check: Check, now: float) -> list[int]:
        """The starts each of the check's windows (its `rates()`, shortest first) holds at `now`."""
        stamp = _stamp(now)
        with self._lock:
            return self._counted(self._logs.get(check.key, []), check, stamp)

    def lease(self, key: str, capacity: int) -> str | None:
        """One of `capacity` in-flight places of `key`, or None when all are taken."""
        with self._lock:
            held = self._places.setdefault(key, set())
            if len(held) >= capacity:
                return None
            token = uuid.uuid4().hex
            held.add(token)
            return token

    def release(self, key: str, token: str) -> None:
        """Give the place back (an unknown token is ignored)."""
        with self._lock:
            self._places.get(key, set()).discard(token)

    def close(self) -> None:
        """Nothing to close: the windows go with the process."""


def _stamp(now: float) -> int:
    return round(now * 1000)  # a start plus a wait in whole ms lands on its ms, whatever the float error


def _newest(log: list[int], offset: int) -> int | None:
    """The start `offset` places before the newest (0: the newest), if the log holds that many."""
    return log[-1 - offset] if offset < len(log) else None
