"""Pacing under QBO's limits, the one Retrying factory, and reading throttling from status and body."""

from __future__ import annotations

import threading

import pytest
import requests

from adapters.quickbooks.client import classify, retrying
from adapters.quickbooks.pacing import Pacer
from connector.ledger import AuthExpired, Fatal, RateLimited, Retriable

XML_THROTTLE = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><IntuitResponse time="2026-01-10T09:30:00-08:00">'
    '<Fault type="SERVICE"><Error code="3001"><Message>message=ThrottleExceeded; errorCode=003001; '
    "statusCode=429</Message></Error></Fault></IntuitResponse>"
)


class FakeTime:
    """A clock that moves only when slept on."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_no_sixty_second_window_sees_more_than_the_budget():
    t = FakeTime()
    pacer = Pacer(per_minute=5, concurrent=2, clock=t.clock, sleep=t.sleep)
    starts = []
    for _ in range(12):
        with pacer.slot():
            starts.append(t.now)
        t.now += 1.0  # each request takes a second
    for i, start in enumerate(starts):
        assert sum(1 for s in starts if start <= s < start + 60) <= 5, i
    assert starts[5] == pytest.approx(60.0, abs=0.01)  # the sixth waited for the first to leave the window
    assert pacer.waited_s > 0


def test_no_more_requests_in_flight_than_allowed():
    pacer = Pacer(per_minute=1000, concurrent=3)
    inside = 0
    peak = 0
    lock = threading.Lock()
    release = threading.Event()

    def work() -> None:
        nonlocal inside, peak
        with pacer.slot():
            with lock:
                inside += 1
                peak = max(peak, inside)
            release.wait(0.05)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=work) for _ in range(10)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert peak == 3


def test_pacing_off_spaces_nothing_but_still_caps_what_is_in_flight():
    t = FakeTime()
    paced = Pacer(per_minute=5, concurrent=2, clock=t.clock, sleep=t.sleep)
    for _ in range(12):
        with paced.slot():
            pass
    assert t.slept, "on: twelve requests under a budget of five a minute wait"
    t = FakeTime()
    off = Pacer(per_minute=5, concurrent=2, clock=t.clock, sleep=t.sleep, spacing=False)  # pacing = false
    for _ in range(12):
        with off.slot():
            pass
    assert t.slept == [] and off.waited_s == 0
    assert Pacer.for_realm("9140", spacing=False) is not Pacer.for_realm("9140"), "a change of setting counts"
    held = [off.slot() for _ in range(2)]
    for slot in held:
        slot.__enter__()
    assert not off._slots.acquire(blocking=False), "the in-flight cap holds with pacing off"
    for slot in held:
        slot.__exit__(None, None, None)


def test_one_pacer_per_realm_is_shared():
    assert Pacer.for_realm("9130") is Pacer.for_realm("9130")
    assert Pacer.for_realm("9130") is not Pacer.for_realm("9131")


def test_retrying_waits_the_retry_after_then_succeeds():
    slept: list[float] = []
    answers: list[Exception | str] = [RateLimited(7.0), Retriable("503"), "ok"]

    def call() -> str:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert retrying(sleep=slept.append)(call) == "ok"
    assert slept[0] == 7.0
    assert 0 < slept[1] <= 8.0


def test_retrying_gives_up_with_the_last_error_and_never_retries_fatal_or_long_waits():
    slept: list[float] = []
    with pytest.raises(Retriable):
        retrying(attempts=3, sleep=slept.append)(lambda: (_ for _ in ()).throw(Retriable("503")))
    assert len(slept) == 2
    for error in (Fatal("bad"), RateLimited(3600.0, "day")):
        slept.clear()
        with pytest.raises(type(error)):
            retrying(sleep=slept.append)(lambda e=error: (_ for _ in ()).throw(e))
        assert slept == []


def response(status: int, body: str, headers: dict[str, str] | None = None) -> requests.Response:
    r = requests.Response()
    r.status_code = status
    r._content = body.encode()
    r.headers.update(headers or {})
    return r


def test_a_429_with_an_xml_body_is_rate_limited_with_its_retry_after():
    error = classify(response(429, XML_THROTTLE, {"Retry-After": "12"}))
    assert isinstance(error, RateLimited)
    assert error.retry_after == 12.0


def test_a_throttle_fault_is_recognised_from_the_body_even_without_429():
    assert isinstance(classify(response(400, XML_THROTTLE)), RateLimited)
    assert isinstance(classify(response(200, '{"Fault":{"Error":[{"code":"3001","Message":"ThrottleExceeded"}]}}')),
                      RateLimited)  # fmt: skip


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [(503, "<html>busy</html>", Retriable), (500, "{}", Retriable), (403, "{}", AuthExpired),
     (400, '<Fault><Error code="2500"></Error></Fault>', Fatal)],
)  # fmt: skip
def test_other_answers_are_typed_by_what_happens_next(status, body, kind):
    assert isinstance(classify(response(status, body)), kind)


def test_a_good_answer_is_no_error():
    assert classify(response(200, '{"QueryResponse": {}}')) is None
    assert classify(response(400, '{"Fault": {"Error": [{"code": "610"}]}}')) is None  # the SDK reads it


def test_a_stale_object_is_not_resent_as_it_was():
    from adapters.quickbooks.client import StaleObject

    slept: list[float] = []
    calls = []

    def stale() -> None:
        calls.append(1)
        raise StaleObject("5010")

    with pytest.raises(StaleObject):
        retrying(sleep=slept.append)(stale)
    assert calls == [1]  # the writer re-reads and re-applies; resending the same SyncToken cannot work
