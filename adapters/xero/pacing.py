"""Pacing under Xero's limits: keep under every window from the response headers, never provoke a 429.

Xero counts calls in fixed windows: 60 a minute and 5,000 a day per tenant, 10,000 a minute per app, and at
most 5 calls in flight per tenant. Every answer says what is left (X-MinLimit-Remaining, X-DayLimit-Remaining,
X-AppMinLimit-Remaining). A Gate lets a call start only if fewer than L - 1 calls started in the last
W + T seconds (limit L per window W, T the transit: the longest a call takes from its start to the ledger
counting it, 1 s by default). Then any W seconds of the ledger's clock count at most L - 1 of our calls: call
k + L - 1 starts at least W + T after call k, so it arrives more than W after call k did, however long call k
took (up to T) and wherever the ledger cuts its fixed minutes. A small sync runs at once, and a long one
settles at (L - 1) / L of the allowed rate less the transit (59 calls per 61 s for Xero's minute). Gates
engage once the ledger shows it counts our calls (a Remaining header below the limit), so a sandbox
reporting no limits runs flat out. When a header says a window is spent anyway (another process shares the
tenant), the gate holds calls back for a whole window. A spent day is not
waited out: the run stops saying when it can resume (the day window ends at midnight UTC).

With a shared backend (connector/ratelimits: PostgreSQL or Redis) the same budgets are counted there, by
every process: a tenant's minute and day under its tenant id, the app's minute under the client id, and
the 5 in-flight places as expiring leases. A call first takes an in-flight place, then its start slot, so
the time between admission and the ledger's count stays within the transit. The Gates then keep only what
this process learnt from the headers (held back by a spent window or a Retry-After). Shared windows bind
from the first call (other processes' calls fill them); `xero.pacing = false` turns them off against a
sandbox with limits off.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import ClassVar

from connector.ledger import RateLimited
from connector.ratelimits import Backend, Check, in_flight
from connector.ratelimits.memory import MemoryBackend

MINUTE = 60.0
DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class LedgerTime:
    """The time the ledger counts windows in, and how to wait in it (the sandbox may run it fast)."""

    now: Callable[[], datetime]
    sleep: Callable[[float], None]

    def seconds(self) -> float:
        return self.now().timestamp()


@dataclass
class Gate:
    """Keeps call starts for one limit (`limit` calls per `window` seconds) of one key (tenant or app) so
    that no span of `window` seconds holds more than `limit - 1` of them (one spare for network jitter).

    The starts (claimed ones too, which may lie ahead) are counted in a sliding window of `window + transit`
    seconds in connector/ratelimits/memory.py, the arithmetic of the shared backends."""

    limit: int
    window: float
    transit: float = 0.0  # the longest a call takes from its start to the ledger's count
    engaged: bool = False  # the ledger counts our calls against this limit (its Remaining header showed it)
    blocked_until: float = 0.0
    _starts: MemoryBackend = field(default_factory=MemoryBackend, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self._check = (Check("starts", ((max(self.limit - 1, 1), self.window + self.transit),)),)

    def reserve(self, now: float) -> float:
        """Claim the next start slot; returns how long to wait for it."""
        with self._lock:
            start = max(now, self.blocked_until)
            if self.engaged:  # the first start the window has room for (none while it is not engaged)
                verdict = self._starts.check(self._check, start)
                while not verdict.admitted:
                    start += verdict.wait
                    verdict = self._starts.check(self._check, start)
            self._starts.record(self._check, start)
            return start - now

    def observe(self, remaining: int | None, now: float) -> None:
        """Take in the ledger's count of calls left in the current window."""
        if remaining is None:
            return
        with self._lock:
            if remaining < self.limit:  # a ledger not counting (limits off) keeps reporting the full limit
                self.engaged = True
            if remaining <= 0:
                self.blocked_until = max(self.blocked_until, now + self.window)

    def hold(self, seconds: float, now: float) -> None:
        """The ledger said wait (Retry-After): no start before then."""
        with self._lock:
            self.blocked_until = max(self.blocked_until, now + seconds)


@dataclass(frozen=True, slots=True)
class Limits:
    minute: int = 60
    day: int = 5_000
    app_minute: int = 10_000
    concurrent: int = 5
    transit: float = 1.0  # seconds from a call's start to the ledger counting it, at most


class Pacer:
    """The gates of one tenant (minute, day, in-flight) plus the app-wide gate it shares with other tenants.

    Gates live as long as the process and are shared by every Pacer of the same tenant on the same clock
    and API address (`scope` tells them apart: real time or one sandbox's clock, Xero or one sandbox), so two
    ledgers of one tenant pace together.
    """

    _gates: ClassVar[dict[tuple[str, ...], Gate]] = {}
    _semaphores: ClassVar[dict[tuple[str, ...], threading.BoundedSemaphore]] = {}
    _registry_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        app: str,
        tenant: str,
        clock: LedgerTime,
        limits: Limits = Limits(),
        scope: str = "",
        spacing: bool = True,
        shared: Backend | None = None,
    ) -> None:
        # off: no spacing (a sandbox with limits off); the in-flight cap and 429 handling still apply
        self.spacing = spacing
        self.clock = clock
        self.limits = limits
        self.day_blocked_until: float = 0.0
        self.day_remaining: int | None = None
        self.shared = shared
        self._tenant_key = f"xero:{app}:{tenant}"
        span = MINUTE + limits.transit
        self._checks = (
            Check(f"{self._tenant_key}:minute", ((max(limits.minute - 1, 1), span),)),
            Check(f"xero:{app}:appminute", ((max(limits.app_minute - 1, 1), span),)),
            Check(f"{self._tenant_key}:day", ((max(limits.day - 1, 1), DAY),), fixed=True),
        )
        with Pacer._registry_lock:
            self.minute = Pacer._gates.setdefault(
                (scope, app, tenant), Gate(limits.minute, MINUTE, limits.transit)
            )
            self.app = Pacer._gates.setdefault((scope, app), Gate(limits.app_minute, MINUTE, limits.transit))
            self._in_flight = Pacer._semaphores.setdefault(
                (scope, app, tenant), threading.BoundedSemaphore(limits.concurrent)
            )

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Wait for a start slot under every limit, and hold one of the tenant's in-flight places."""
        now = self.clock.seconds()
        if self.day_remaining is not None and self.day_remaining <= 0 and self.day_blocked_until <= now:
            self.day_blocked_until = now + _until_midnight(self.clock.now())
            self.day_remaining = None
        if self.day_blocked_until > now:
            raise self._day_limited(self.day_blocked_until - now)
        if self.shared is not None:
            with in_flight(self.shared, f"{self._tenant_key}:inflight", self.limits.concurrent):
                if self.spacing:
                    self._admit_shared(self.shared)
                yield
            return
        wait = max(self.minute.reserve(now), self.app.reserve(now)) if self.spacing else 0.0
        if wait > 0:
            self.clock.sleep(wait)
        with self._in_flight:
            yield

    def _admit_shared(self, shared: Backend) -> None:
        """Wait for this process's holds, then count the start in the shared windows (waiting while full).

        A full shared window binds whether or not this process has seen the ledger count yet: the starts in
        it are other processes' calls, which the ledger counts as surely as ours.
        """
        while True:
            now = self.clock.seconds()
            held = max(self.minute.blocked_until, self.app.blocked_until) - now
            if held > 0:
                self.clock.sleep(held)
                continue
            verdict = shared.admit(self._checks, now)
            if verdict.admitted:
                return
            if verdict.key == self._checks[2].key:  # the day's budget is spent
                self.day_blocked_until = now + verdict.wait
                raise self._day_limited(verdict.wait)
            self.clock.sleep(verdict.wait)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Read the X-*-Remaining headers of an answer (any status)."""
        now = self.clock.seconds()
        self.minute.observe(_int(headers.get("x-minlimit-remaining")), now)
        self.app.observe(_int(headers.get("x-appminlimit-remaining")), now)
        day = _int(headers.get("x-daylimit-remaining"))
        if day is not None:
            self.day_remaining = day

    def rate_limited(self, headers: Mapping[str, str]) -> RateLimited:
        """The error for a 429: which limit, and how long to wait; also holds the gates back that long."""
        problem = (headers.get("x-rate-limit-problem") or "minute").lower()
        retry_after = _float(headers.get("retry-after"))
        now = self.clock.seconds()
        if problem == "day":
            wait = retry_after if retry_after is not None else _until_midnight(self.clock.now())
            self.day_blocked_until = now + wait
            return self._day_limited(wait)
        if problem == "concurrent":
            return RateLimited(retry_after or 1.0, "concurrent")
        wait = retry_after if retry_after is not None else MINUTE
        gate = self.app if problem == "appminute" else self.minute
        gate.hold(wait, now)
        return RateLimited(wait, "app" if problem == "appminute" else "minute")

    def _day_limited(self, wait: float) -> RateLimited:
        resume = self.clock.now() + timedelta(seconds=wait)
        return RateLimited(
            wait, "day", f"Xero's daily call limit is spent; can resume after {resume:%Y-%m-%d %H:%M} UTC"
        )


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _until_midnight(now: datetime) -> float:
    tomorrow = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return (tomorrow - now).total_seconds()
