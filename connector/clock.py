"""The time `ccm serve` schedules and stamps by: the real clock, or a simulated one for tests and demos.

A simulated clock reads `origin` at the real POSIX instant `anchor` and runs `speed` times as fast from
there, so several processes (two servers, the sandboxes beside them) given the same spec agree on the time
to within their machines' clock skew. Its text form is `ORIGIN@ANCHORxSPEED`, e.g.
`2026-10-24T18:00:00+00:00@1795000000.5x3600` (an hour a second); `ORIGINxSPEED` anchors at the moment it
is parsed.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_SPEC = re.compile(r"^(?P<origin>[^@x]+?)(?:@(?P<anchor>\d+(?:\.\d+)?))?(?:x(?P<speed>\d+(?:\.\d+)?))?$")


class ClockSpecError(ValueError):
    """A clock spec that cannot be read; the message is one line, `reason` the same without the text."""

    def __init__(self, reason: str, text: str) -> None:
        super().__init__(f"{reason}: {text!r}")
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Clock:
    """UTC instants, real or simulated. `origin` None is the real clock."""

    origin: datetime | None = None
    anchor: float = 0.0
    speed: float = 1.0

    @property
    def simulated(self) -> bool:
        return self.origin is not None

    def now(self) -> datetime:
        """The current instant on this clock, in UTC."""
        return self.to_clock(time.time())

    def to_clock(self, real: float) -> datetime:
        """The instant this clock shows at the real POSIX time `real`."""
        if self.origin is None:
            return datetime.fromtimestamp(real, UTC)
        return self.origin + timedelta(seconds=(real - self.anchor) * self.speed)

    def to_real(self, instant: datetime) -> float:
        """The real POSIX time at which this clock shows `instant`."""
        if self.origin is None:
            return instant.timestamp()
        return self.anchor + (instant - self.origin).total_seconds() / self.speed

    def real_seconds(self, seconds: float) -> float:
        """How long `seconds` of this clock's time take in real time."""
        return seconds / self.speed

    def sleep(self, seconds: float) -> None:
        """Wait `seconds` of this clock's time."""
        if seconds > 0:
            time.sleep(self.real_seconds(seconds))

    def spec(self) -> str:
        """The text form (empty for the real clock)."""
        if self.origin is None:
            return ""
        return f"{self.origin.isoformat()}@{self.anchor:.3f}x{self.speed:g}"

    @classmethod
    def parse(cls, text: str | None) -> Clock:
        """A clock from its text form; empty or None is the real clock.

        Raises:
            ClockSpecError: the text is not `ORIGIN[@ANCHOR][xSPEED]` with an ISO instant and positive speed.
        """
        if not text or not text.strip():
            return cls()
        match = _SPEC.match(text.strip())
        if match is None:
            raise ClockSpecError("not a clock spec ORIGIN[@ANCHOR][xSPEED]", text)
        try:
            origin = datetime.fromisoformat(match["origin"].replace("Z", "+00:00"))
        except ValueError:
            raise ClockSpecError("clock origin is not an ISO date-time", match["origin"]) from None
        if origin.tzinfo is None:
            raise ClockSpecError("clock origin needs a UTC offset (e.g. +00:00)", match["origin"])
        speed = float(match["speed"] or 1)
        if speed <= 0:
            raise ClockSpecError("clock speed must be above 0", match["speed"])
        anchor = float(match["anchor"]) if match["anchor"] else time.time()
        return cls(origin.astimezone(UTC), anchor, speed)
