"""The nightly trigger: once per local calendar day, at a local time, in the tenant's time zone.

APScheduler's CronTrigger fires twice on a night whose time falls in the hour a DST change repeats (01:30 on
the last Sunday of October in London) and we want exactly once, so this trigger works per local date: the
run of date D is at D's local time with `fold=0`, which is the first of two repeated instants, and for a time
that the spring change skips (01:30 in London on the last Sunday of March) the same wall time on the old
offset, i.e. an hour later on the new one. Every local date gets one instant, in order.

The trigger computes on the server's clock (connector/clock.py) and hands APScheduler real instants, so a
simulated clock running an hour a second drives real APScheduler machinery unchanged.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger

from connector.clock import Clock

_STATE_VERSION = 1


def parse_time(text: str) -> time:
    """'HH:MM' as a time (validated by config.check_time_of_day beforehand)."""
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def fire_on(day: date, at: time, zone: ZoneInfo) -> datetime:
    """The UTC instant of the run of local date `day`."""
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def next_fire(after: datetime, at: time, zone: ZoneInfo) -> datetime:
    """The first run instant at or after `after` (UTC)."""
    day = after.astimezone(zone).date() - timedelta(days=1)
    while True:
        instant = fire_on(day, at, zone)
        if instant >= after:
            return instant
        day += timedelta(days=1)


class NightlyTrigger(BaseTrigger):
    """Fires once per local date of `timezone` at `at` (HH:MM), on `clock`'s time."""

    __slots__ = ("_at", "_clock", "_zone", "at", "clock_spec", "timezone")

    def __init__(self, timezone: str, at: str, clock: Clock | None = None) -> None:
        self.timezone = timezone
        self.at = at
        self._clock = clock or Clock()
        self.clock_spec = self._clock.spec()
        self._zone = ZoneInfo(timezone)
        self._at = parse_time(at)

    @property
    def clock(self) -> Clock:
        return self._clock

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime:
        """The next real instant to fire at: after the previous firing (never it again), else from `now`."""
        if previous_fire_time is None:
            on_clock = self._clock.to_clock(now.timestamp())
        else:  # runs are on whole minutes: a second past the last one is past it, whatever float rounding did
            on_clock = self._clock.to_clock(previous_fire_time.timestamp()) + timedelta(seconds=1)
        fire = next_fire(on_clock, self._at, self._zone)
        return datetime.fromtimestamp(self._clock.to_real(fire), UTC)

    def same_schedule(self, other: object) -> bool:
        """True when `other` fires at the same times (a stored job that need not be replaced)."""
        return isinstance(other, NightlyTrigger) and (other.timezone, other.at, other.clock_spec) == (
            self.timezone,
            self.at,
            self.clock_spec,
        )

    def __getstate__(self) -> dict[str, Any]:
        return {"version": _STATE_VERSION, "timezone": self.timezone, "at": self.at, "clock": self.clock_spec}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["timezone"], state["at"], Clock.parse(state["clock"]))  # type: ignore[misc]

    def __str__(self) -> str:
        return f"nightly[{self.at} {self.timezone}]"

    def __repr__(self) -> str:
        return f"<NightlyTrigger {self.at} {self.timezone!r} clock={self.clock_spec or 'real'}>"
