"""Xero's rate limits in the sandbox: minute, day, app-minute and concurrency, on a clock the test controls."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import requests

from adapters.sandbox import SandboxClock
from adapters.xero.sandbox import start
from tests.xero_sandbox.conftest import NOON, connect


def test_every_answer_carries_the_remaining_counts(fixed):
    answer = fixed.get("Contacts")
    assert answer.headers["X-DayLimit-Remaining"] == "4999"
    assert answer.headers["X-MinLimit-Remaining"] == "59"
    assert answer.headers["X-AppMinLimit-Remaining"] == "9999"


def test_the_61st_call_in_a_minute_gets_429_minute_with_retry_after_until_the_window_ends(fixed):
    clock = fixed.sandbox.clock  # fixed at 12:00:00, the start of a minute window
    for _ in range(60):
        assert fixed.get("Contacts", params={"pageSize": 1}).status_code == 200
    clock.advance(20)
    refused = fixed.get("Contacts", params={"pageSize": 1})
    assert refused.status_code == 429
    assert (refused.headers["X-Rate-Limit-Problem"], refused.headers["Retry-After"]) == ("minute", "40")
    assert refused.headers["X-MinLimit-Remaining"] == "0"
    clock.advance(40)
    assert fixed.get("Contacts", params={"pageSize": 1}).status_code == 200


def test_the_day_limit_is_told_apart_and_says_when_it_resets(firm):
    sb = start(firm, day_limit=3, clock=SandboxClock(NOON, speed=0))
    try:
        conn = connect(sb)
        for _ in range(3):
            assert conn.get("Contacts", params={"pageSize": 1}).status_code == 200
        refused = conn.get("Contacts", params={"pageSize": 1})
        assert (refused.status_code, refused.headers["X-Rate-Limit-Problem"]) == (429, "day")
        assert refused.headers["Retry-After"] == str(12 * 3600)  # until UTC midnight
    finally:
        sb.stop()


def test_a_sixth_concurrent_call_is_refused_as_concurrent(firm):
    sb = start(firm, clock=SandboxClock(NOON, speed=0))
    try:
        conn = connect(sb)
        sb.accounting.service_time_s = 0.5
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(pool.map(lambda _: conn.get("Contacts", params={"pageSize": 1}), range(8)))
        refused = [a for a in answers if a.status_code == 429]
        assert refused and {a.headers["X-Rate-Limit-Problem"] for a in refused} == {"concurrent"}
        assert "Retry-After" not in refused[0].headers
        assert sum(a.status_code == 200 for a in answers) == 5
    finally:
        sb.stop()


def test_an_accelerated_clock_reopens_the_minute_window_after_retry_after_in_real_time(firm):
    # A sandbox minute lasts six real seconds: short enough to wait out, long enough that 60 calls fit in it
    # on a busy machine (at one real second, a loaded CI host could not make them in time: no 429 at all).
    sb = start(firm, clock=SandboxClock(NOON, speed=10))
    try:
        conn = connect(sb)
        answers = (conn.get("Contacts", params={"pageSize": 1}) for _ in range(200))
        refused = next(a for a in answers if a.status_code == 429)
        assert refused.headers["X-Rate-Limit-Problem"] == "minute"
        retry_after = int(refused.headers["Retry-After"])
        assert 1 <= retry_after <= 60
        time.sleep(sb.clock.real_seconds(retry_after) + 0.05)
        assert conn.get("Contacts", params={"pageSize": 1}).status_code == 200
    finally:
        sb.stop()


def test_limits_off_allows_everything(shared):
    assert all(shared.get("Contacts", params={"pageSize": 1}).status_code == 200 for _ in range(70))


def test_faults_apply_to_the_xero_api_and_clear_while_running(fixed):
    faults = fixed.sandbox.faults
    faults.error_rate = 1.0
    assert {fixed.get("Invoices").status_code for _ in range(10)} <= {500, 503}
    faults.clear()
    faults.drop_rate = 1.0
    try:
        fixed.get("Invoices")
    except requests.ConnectionError:
        dropped = True
    else:
        dropped = False
    assert dropped
    faults.clear()
    fixed.http.close()  # the dropped connection is gone; a fresh one works
    assert fixed.get("Invoices").status_code == 200
