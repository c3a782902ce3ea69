"""The sandbox clock and the fixed-window limiter: Xero's windows, on a clock a test controls."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from adapters.sandbox import SandboxClock, Window, WindowLimiter

START = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)


def test_a_fixed_clock_moves_only_when_advanced():
    clock = SandboxClock(START, speed=0)
    assert clock.now() == START
    clock.advance(90)
    assert (clock.now() - START).total_seconds() == 90
    with pytest.raises(ValueError, match="must be >= 0"):
        clock.advance(-1)


def test_an_accelerated_clock_runs_faster_than_real_time():
    clock = SandboxClock(START, speed=3600)
    time.sleep(0.02)
    assert (clock.now() - START).total_seconds() >= 60


def test_a_naive_start_is_refused():
    with pytest.raises(ValueError, match="timezone-aware"):
        SandboxClock(datetime(2026, 1, 1))


def xero_limiter(clock, **kw):
    windows = [
        Window("day", 5000, 86_400),
        Window("appminute", 10_000, 60, per_app=True),
        Window("minute", 60, 60),
    ]
    return WindowLimiter(clock, windows, concurrency=5, **kw)


def test_the_sixty_first_call_in_a_minute_is_refused_until_the_window_ends():
    clock = SandboxClock(START.replace(second=15), speed=0)
    limiter = xero_limiter(clock)
    for n in range(60):
        with limiter.call("t1") as verdict:
            assert verdict.allowed
            assert verdict.remaining["minute"] == 59 - n
    with limiter.call("t1") as refused:
        assert not refused.allowed
        assert (refused.problem, refused.retry_after) == ("minute", 45)
    assert limiter.remaining("t1")["minute"] == 0  # the refused call was not counted
    assert limiter.remaining("t1")["day"] == 4940
    assert limiter.acquire("t2").allowed  # other tenants have their own windows
    clock.advance(45)
    assert limiter.acquire("t1").allowed


def test_the_day_limit_resets_at_utc_midnight_and_says_so():
    clock = SandboxClock(datetime(2026, 11, 23, 23, 0, tzinfo=UTC), speed=0)
    limiter = WindowLimiter(clock, [Window("day", 3, 86_400), Window("minute", 60, 60)])
    for _ in range(3):
        limiter.release("t") if limiter.acquire("t").allowed else pytest.fail("refused early")
    verdict = limiter.acquire("t")
    assert (verdict.allowed, verdict.problem, verdict.retry_after) == (False, "day", 3600)
    clock.advance(3600)
    assert limiter.acquire("t").allowed


def test_the_app_minute_window_counts_every_tenant():
    clock = SandboxClock(START, speed=0)
    limiter = WindowLimiter(clock, [Window("appminute", 3, 60, per_app=True), Window("minute", 60, 60)])
    for tenant in ("a", "b", "c"):
        assert limiter.acquire(tenant).allowed
    verdict = limiter.acquire("d")
    assert (verdict.allowed, verdict.problem) == (False, "appminute")


def test_the_concurrency_gate_refuses_a_sixth_call_in_flight_without_retry_after():
    limiter = xero_limiter(SandboxClock(START, speed=0))
    for _ in range(5):
        assert limiter.acquire("t").allowed
    verdict = limiter.acquire("t")
    assert (verdict.allowed, verdict.problem, verdict.retry_after) == (False, "concurrent", None)
    limiter.release("t")
    assert limiter.acquire("t").allowed


def test_a_disabled_limiter_allows_everything():
    limiter = xero_limiter(SandboxClock(START, speed=0), enabled=False)
    assert all(limiter.acquire("t").allowed for _ in range(200))


def test_a_disabled_limiter_reports_the_full_limits_like_a_ledger_that_does_not_count():
    limiter = xero_limiter(SandboxClock(START, speed=0), enabled=False)
    for _ in range(100):
        verdict = limiter.acquire("t")
        limiter.release("t")
    assert verdict.remaining == {"day": 5000, "appminute": 10_000, "minute": 60}
