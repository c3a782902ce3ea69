"""Ledger rate limits shared by every process: the backend the adapters' pacers count calls in.

Without a shared backend (the default, with a SQLite store: one process) each pacer keeps its windows in
memory, as it always has. With PostgreSQL as the store, or Redis when `limits.redis_url` is set, every
process counts its calls in one place, keyed by the ledger's own units (a Xero tenant id or QuickBooks
realm id, and the app's client id), so two processes on one firm, or many firms of one app, share a limit.

Invariants:
- `admit` counts a call in every window of every check, or (PostgreSQL) in none; it never waits. A refusal
  says how long to wait, in seconds of the caller's clock (the timestamps are the caller's: a simulated
  clock works as long as every process sharing the keys runs the same one).
- Sliding windows are pyrate-limiter's SlidingWindowLog, fixed ones (Xero's day, cut at UTC midnight) its
  FixedWindow: the arithmetic is the library's, whatever the store.
- An in-flight place is a lease that expires (`LEASE_SECONDS`, real time) unless released: a process that
  dies mid-call frees its places by expiry, never holding them for good.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import structlog
from pyrate_limiter import FixedWindow, Rate, SlidingWindowLog
from pyrate_limiter.abstracts.algorithm import LogAlgorithm

from connector.errors import TryLater

if TYPE_CHECKING:
    from connector.config import Settings

log = structlog.get_logger(__name__)
LEASE_SECONDS = 300.0  # longer than any one HTTP call (their timeouts are 60 s)
_POLL_S = (0.005, 0.25)  # first and longest pause between tries for an in-flight place


@dataclass(frozen=True, slots=True)
class Check:
    """One key's windows that a call must fit in: (limit, seconds) each, sliding or cut from the epoch."""

    key: str
    windows: tuple[tuple[int, float], ...]
    fixed: bool = False

    def rates(self) -> list[Rate]:
        """The windows as pyrate-limiter rates, shortest first, without one a longer window makes moot."""
        kept: list[Rate] = []
        for limit, seconds in sorted(self.windows, key=lambda w: w[1]):
            # a longer window allowing no more calls than a shorter one: the shorter never binds
            while kept and kept[-1].limit >= limit:
                kept.pop()
            kept.append(Rate(limit, max(int(seconds * 1000), 1)))
        return kept

    def algorithm(self) -> LogAlgorithm:
        return FixedWindow() if self.fixed else SlidingWindowLog()

    @property
    def longest(self) -> float:
        return max(seconds for _, seconds in self.windows)


@dataclass(frozen=True, slots=True)
class Verdict:
    """`admit`'s answer: `wait` 0 means counted; else seconds to wait, and the key whose window is full."""

    wait: float = 0.0
    key: str | None = None

    @property
    def admitted(self) -> bool:
        return self.wait <= 0


class Backend(Protocol):
    """Where the windows and in-flight places of every process live."""

    name: str

    def admit(self, checks: Sequence[Check], now: float) -> Verdict:
        """Count one call started at `now` (POSIX seconds on the ledger's clock) under every check."""
        ...

    def lease(self, key: str, capacity: int) -> str | None:
        """One of `capacity` in-flight places of `key` (a token to release), or None when all are taken."""
        ...

    def release(self, key: str, token: str) -> None:
        """Give the place back (an unknown or expired token is ignored)."""
        ...

    def close(self) -> None: ...


class LimitsUnavailable(TryLater):
    """The shared limits store (PostgreSQL or Redis) did not answer: no call is made uncounted; the run is
    tried again later (a night after serve.retry_minutes), as for a ledger that is down."""


def _unreachable() -> tuple[type[BaseException], ...]:
    """The errors that mean the store is down or restarting (not a bug): connection and timeout errors."""
    from sqlalchemy.exc import DBAPIError

    kinds: list[type[BaseException]] = [DBAPIError, ConnectionError, TimeoutError]
    try:
        import redis

        kinds += [redis.exceptions.ConnectionError, redis.exceptions.TimeoutError]
    except ImportError:  # pragma: no cover - redis is a dependency
        pass
    return tuple(kinds)


class Guarded:
    """A backend whose store errors are `LimitsUnavailable`; a release that fails is logged (it expires)."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.name = inner.name
        self._down = _unreachable()

    def _fail(self, exc: BaseException) -> LimitsUnavailable:
        return LimitsUnavailable(
            f"the shared rate-limit store ({self.name}) is unreachable ({type(exc).__name__}); "
            "tried again later"
        )

    def admit(self, checks: Sequence[Check], now: float) -> Verdict:
        try:
            return self.inner.admit(checks, now)
        except self._down as exc:
            raise self._fail(exc) from exc

    def lease(self, key: str, capacity: int) -> str | None:
        try:
            return self.inner.lease(key, capacity)
        except self._down as exc:
            raise self._fail(exc) from exc

    def release(self, key: str, token: str) -> None:
        try:
            self.inner.release(key, token)
        except self._down as exc:  # the place expires after LEASE_SECONDS anyway
            log.warning("limits.release_failed", backend=self.name, error=type(exc).__name__)

    def close(self) -> None:
        self.inner.close()


@contextmanager
def in_flight(backend: Backend, key: str, capacity: int) -> Iterator[None]:
    """Hold one of `key`'s in-flight places for the block, waiting (real time) until one is free."""
    pause = _POLL_S[0]
    token = backend.lease(key, capacity)
    while token is None:
        time.sleep(pause)
        pause = min(pause * 2, _POLL_S[1])
        token = backend.lease(key, capacity)
    try:
        yield
    finally:
        backend.release(key, token)


_backends: dict[tuple[str, str, str], Backend] = {}
_guard = threading.Lock()
KEPT = 4  # backends kept open per process (one in production; tests open one per database schema)


def backend_for(settings: Settings) -> Backend | None:
    """The shared backend the settings choose (one per process and address), or None: in memory.

    `limits.backend` "auto": Redis when `limits.redis_url` is set, else PostgreSQL when the store is, else
    in memory.
    """
    chosen = settings.limits.backend
    if chosen == "memory":
        return None
    url = settings.limits.redis_url
    database = settings.database_url or ""
    if chosen == "redis" or (chosen == "auto" and url):
        if not url:
            raise ValueError("limits.backend is redis but limits.redis_url is not set")
        kind, address = "redis", url
    elif chosen == "postgresql" or (chosen == "auto" and database.startswith(("postgresql", "postgres"))):
        if not database.startswith(("postgresql", "postgres")):
            raise ValueError("limits.backend is postgresql but database_url is not a PostgreSQL URL")
        kind, address = "postgresql", database
    else:
        return None
    prefix = settings.limits.prefix
    with _guard:
        found = _backends.get((kind, address, prefix))
        if found is None:
            if kind == "redis":
                from connector.ratelimits.redisstore import RedisBackend

                found = RedisBackend(address, prefix)
            else:
                from connector.ratelimits.pgstore import PostgresBackend

                found = PostgresBackend(address, prefix)
            found = Guarded(found)
            while len(_backends) >= KEPT:  # the oldest: its pool is closed, it reconnects if used again
                _backends.pop(next(iter(_backends))).close()
            _backends[(kind, address, prefix)] = found
        return found
