"""The tests' today: the one date every fixture whose outcome depends on the calendar starts from.

Invariants:
- No test's outcome depends on the day it runs. A fixture that generates a firm, starts a sandbox clock or
  picks "now" for a night takes it from here (`TODAY`, `NOW`, `sandbox_clock`, `serve_clock`), never from
  `date.today()` / `datetime.now()` / the generator's default.
- `CCM_TEST_DATE_SHIFT_DAYS` (default 0, may be negative) moves that date by whole days, so a run shows
  that the suite passes on another day (CI exports 365: a year on). The base is a Tuesday in March, no
  holiday in England, Scotland or the United States; a shift may land on any weekday, month end or DST change.
- The tests' today lies in the machine's past, by design, for any shift up to 365 days: ccm stamps some rows
  with the machine's clock whatever instant a test runs it "as if" (token refreshes, leases, invites), and a
  night on the tests' calendar comes after them only as the real calendar moves on, never before.
- Tests that must use the real clock (run leases, token expiry the SDKs check against the machine's clock,
  real-time waits, a `ccm` subprocess that reads it) keep `time.time()` / `datetime.now(UTC)` but compare only
  durations, never dates; a sandbox beside them runs on the machine's clock too, with its firm generated
  for that clock's date, so the data and the clock agree on any day.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, date, datetime, timedelta

from adapters.sandbox.clock import SandboxClock
from connector.clock import Clock

SHIFT_VARIABLE = "CCM_TEST_DATE_SHIFT_DAYS"


def shift_days(env: dict[str, str] | None = None) -> int:
    """Whole days the tests' today lies after the base date; a bad value is a one-line error naming it."""
    text = (os.environ if env is None else env).get(SHIFT_VARIABLE, "").strip() or "0"
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{SHIFT_VARIABLE}={text!r}: expected a whole number of days, e.g. 365") from None


BASE = date(2025, 3, 11)
TODAY: date = BASE + timedelta(days=shift_days())
NOW: datetime = datetime(TODAY.year, TODAY.month, TODAY.day, 9, 0, tzinfo=UTC)  # mid-morning in London


def at(hour: int, minute: int = 0, *, days: int = 0) -> datetime:
    """An instant on the tests' calendar: `days` after TODAY at hour:minute UTC."""
    day = TODAY + timedelta(days=days)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def sandbox_clock(start: datetime = NOW, speed: float = 1.0) -> SandboxClock:
    """A sandbox clock showing `start` now and running `speed` times as fast as real time."""
    return SandboxClock(start, speed)


def serve_clock(start: datetime = NOW, speed: float = 1.0) -> Clock:
    """The server's clock (CCM_SERVE__CLOCK is its `.spec()`) showing `start` now."""
    return Clock(start, time.time(), speed)
