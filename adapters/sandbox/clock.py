"""Injectable time for the sandboxes: real time, a fixed instant, or an accelerated clock."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta


class SandboxClock:
    """A UTC clock that starts at `start` and runs `speed` times as fast as real time.

    `speed=0` gives a fixed clock that only `advance` moves; `speed=60` runs a minute per real second, so a
    test can cross Xero's minute windows quickly. Thread-safe: the server thread and the test both read it.
    """

    def __init__(self, start: datetime | None = None, speed: float = 1.0) -> None:
        if start is not None and start.tzinfo is None:
            raise ValueError("SandboxClock start must be timezone-aware (UTC)")
        if speed < 0:
            raise ValueError(f"SandboxClock speed must be >= 0, not {speed}")
        self._start = (start or datetime.now(UTC)).astimezone(UTC)
        self._origin = time.monotonic()
        self._speed = speed
        self._offset = 0.0
        self._lock = threading.Lock()

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> datetime:
        """The sandbox's current instant, in UTC."""
        with self._lock:
            elapsed = (time.monotonic() - self._origin) * self._speed + self._offset
        return self._start + timedelta(seconds=elapsed)

    def timestamp(self) -> float:
        """The current instant as POSIX seconds (what the limiters' windows are cut from)."""
        return self.now().timestamp()

    def advance(self, seconds: float) -> None:
        """Move the clock forward by `seconds` of sandbox time (never backward)."""
        if seconds < 0:
            raise ValueError(f"SandboxClock.advance: seconds must be >= 0, not {seconds}")
        with self._lock:
            self._offset += seconds

    def real_seconds(self, sandbox_seconds: float) -> float:
        """How long in real time `sandbox_seconds` of this clock take (inf on a fixed clock)."""
        return sandbox_seconds / self._speed if self._speed else float("inf")
