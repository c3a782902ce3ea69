"""Pacing: spacing call starts under Xero's fixed windows, limits told apart, the one retry policy."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from adapters.xero.client import retrying
from adapters.xero.pacing import Gate, LedgerTime, Limits, Pacer
from connector.ledger import RateLimited, Retriable

_ids = itertools.count()


class FakeTime:
    def __init__(self) -> None:
        self.t = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += timedelta(seconds=seconds)

    def clock(self) -> LedgerTime:
        return LedgerTime(self.now, self.sleep)


def pacer(time: FakeTime) -> Pacer:
    return Pacer("app", f"tenant-{next(_ids)}", time.clock(), Limits(), scope=f"test-{next(_ids)}")


def test_spaced_starts_never_put_more_than_the_limit_in_any_fixed_window() -> None:
    time = FakeTime()
    p = pacer(time)
    p.observe({"x-minlimit-remaining": "59"})  # the ledger enforces the minute limit
    starts = []
    for _ in range(300):
        with p.slot():
            starts.append(time.now().timestamp())
    for phase in (0.0, 0.25, 0.5, 0.99):
        windows: dict[int, int] = {}
        for s in starts:
            windows[int((s + phase) // 60)] = windows.get(int((s + phase) // 60), 0) + 1
        assert max(windows.values()) <= 59
    rate = (len(starts) - 1) / (starts[-1] - starts[0]) * 60
    assert rate >= 0.9 * 60  # and still uses over 90% of the allowed rate


def test_without_counting_headers_calls_run_flat_out() -> None:
    time = FakeTime()
    p = pacer(time)
    for _ in range(100):
        p.observe({"x-minlimit-remaining": "60"})  # a ledger with limits off reports the full limit
        with p.slot():
            pass
    assert time.slept == []


def test_a_spent_window_seen_in_the_headers_holds_calls_back() -> None:
    time = FakeTime()
    p = pacer(time)
    p.observe({"x-minlimit-remaining": "0"})  # someone else used this tenant's minute
    with p.slot():
        pass
    assert sum(time.slept) >= 60


def test_a_day_limit_429_stops_and_says_when_it_can_resume() -> None:
    time = FakeTime()
    p = pacer(time)
    error = p.rate_limited({"x-rate-limit-problem": "day", "retry-after": "3600"})
    assert (error.scope, error.retry_after) == ("day", 3600)
    assert "can resume after 2026-01-01 13:00 UTC" in str(error)
    with pytest.raises(RateLimited) as again, p.slot():
        pass
    assert again.value.scope == "day"  # no call is made while the day is spent


def test_a_day_seen_spent_in_the_headers_stops_before_calling() -> None:
    time = FakeTime()
    p = pacer(time)
    p.observe({"x-daylimit-remaining": "0"})
    with pytest.raises(RateLimited) as caught, p.slot():
        pass
    assert caught.value.scope == "day"
    assert caught.value.retry_after == 12 * 3600  # until midnight UTC, when Xero's day window ends


def test_a_minute_429_waits_retry_after_before_the_next_start() -> None:
    time = FakeTime()
    p = pacer(time)
    error = p.rate_limited({"x-rate-limit-problem": "minute", "retry-after": "17"})
    assert (error.scope, error.retry_after) == ("minute", 17)
    with p.slot():
        pass
    assert time.slept == [17]


def test_app_limit_gate_is_shared_by_tenants_of_one_app() -> None:
    time = FakeTime()
    a = Pacer("shared-app", "t1", time.clock(), scope="s")
    b = Pacer("shared-app", "t2", time.clock(), scope="s")
    assert a.app is b.app
    assert a.minute is not b.minute


def test_the_retry_policy_honours_retry_after_and_never_retries_a_spent_day() -> None:
    time = FakeTime()
    attempts = iter([RateLimited(7, "minute"), Retriable("503"), None])

    def flaky() -> str:
        error = next(attempts)
        if error is not None:
            raise error
        return "ok"

    result = None
    for attempt in retrying(time.sleep):
        with attempt:
            result = flaky()
    assert result == "ok"
    assert time.slept == [7, 1.0]  # Retry-After, then backoff for the second attempt

    calls = []

    def day_spent() -> None:
        calls.append(1)
        raise RateLimited(3600, "day")

    def run() -> None:
        for attempt in retrying(time.sleep):
            with attempt:
                day_spent()

    with pytest.raises(RateLimited):
        run()
    assert len(calls) == 1


def test_a_small_burst_starts_at_once_and_the_limit_minus_one_is_never_passed() -> None:
    gate = Gate(60, 60.0, engaged=True)
    waits = [gate.reserve(1000.0) for _ in range(60)]
    assert waits[:59] == [0.0] * 59  # a nightly sync of a few calls never waits
    assert waits[59] == pytest.approx(60.0, abs=0.01)  # the 60th waits until the first leaves the last minute


def test_spacing_can_be_switched_off_for_a_sandbox_with_limits_off() -> None:
    time = FakeTime()
    p = Pacer("app", "t-off", time.clock(), scope="off", spacing=False)  # settings.xero.pacing = false
    for remaining in range(59, 0, -1):  # a sandbox with limits off still counts calls in its headers
        p.observe({"x-minlimit-remaining": str(remaining)})
        with p.slot():
            pass
    assert time.slept == []
