"""When a reminder may go out: the tenant's time zone, a send window, weekdays and public holidays.

Everything a person would call "a day" here is a local calendar day of the tenant, computed with zoneinfo,
so DST changes and instants near midnight land on the day the firm sees on its own clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

import holidays

from connector.errors import NeedsPerson

_WEEKDAYS = frozenset(range(5))  # Monday..Friday
_SEARCH_DAYS = 400  # a send slot is always found within a year and a bit


class CalendarError(NeedsPerson, ValueError):
    """An unusable calendar setting (unknown time zone or country); the message is one line."""


@dataclass(frozen=True)
class SendCalendar:
    """A tenant's sending rules. Instants in and out are UTC; days are the tenant's local days."""

    timezone: str = "Europe/London"
    country: str = "GB"
    subdivision: str | None = None
    window_start: time = time(9, 0)
    window_end: time = time(17, 0)
    weekdays: frozenset[int] = field(default=_WEEKDAYS)
    extra_closed: frozenset[date] = frozenset()  # the firm's own closing days

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (KeyError, ValueError):
            raise CalendarError(f"unknown time zone {self.timezone!r}") from None
        try:
            holidays.country_holidays(self.country, subdiv=self.subdivision)
        except NotImplementedError:
            raise CalendarError(f"no public holiday calendar for country {self.country!r}") from None
        if not self.window_start < self.window_end:
            raise CalendarError(f"send window {self.window_start}-{self.window_end} is empty")

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def _holidays(self) -> holidays.HolidayBase:
        return holidays.country_holidays(self.country, subdiv=self.subdivision)

    def holiday(self, day: date) -> str | None:
        """The public holiday's name on `day`, if any."""
        name = self._holidays.get(day)
        return str(name) if name else None

    def is_business_day(self, day: date) -> bool:
        return day.weekday() in self.weekdays and day not in self._holidays and day not in self.extra_closed

    def local_date(self, instant: datetime) -> date:
        return instant.astimezone(self.zone).date()

    def add_days(self, day: date, n: int, business: bool) -> date:
        """`day` moved by `n` days (negative: earlier), counting only business days when `business`."""
        if not business:
            return day + timedelta(days=n)
        step = 1 if n >= 0 else -1
        remaining = abs(n)
        while remaining:
            day += timedelta(days=step)
            if self.is_business_day(day):
                remaining -= 1
        return day

    def can_send_at(self, instant: datetime) -> bool:
        local = instant.astimezone(self.zone)
        return self.is_business_day(local.date()) and self.window_start <= local.time() < self.window_end

    def next_send_time(self, instant: datetime) -> datetime:
        """The first UTC instant at or after `instant` when sending is allowed."""
        if self.can_send_at(instant):
            return instant
        local = instant.astimezone(self.zone)
        day = local.date()
        if local.time() >= self.window_start:
            day += timedelta(days=1)
        for _ in range(_SEARCH_DAYS):
            if self.is_business_day(day):
                opening = datetime.combine(day, self.window_start, tzinfo=self.zone)
                return opening.astimezone(UTC)
            day += timedelta(days=1)
        raise CalendarError("no sending day within a year: check weekdays and closing days")

    def why_not(self, instant: datetime) -> str | None:
        """Why nothing may be sent at `instant` (None when it may), in words for the sync log."""
        local = instant.astimezone(self.zone)
        day = local.date()
        if day.weekday() not in self.weekdays:
            return f"{day:%A} is not a sending day"
        if name := self.holiday(day):
            return f"{day} is a public holiday ({name})"
        if day in self.extra_closed:
            return f"{day} is a closing day of the firm"
        if not self.window_start <= local.time() < self.window_end:
            return (
                f"{local:%H:%M} {self.timezone} is outside the send window "
                f"{self.window_start:%H:%M}-{self.window_end:%H:%M}"
            )
        return None
