"""ccm's Xero pacing measured where it counts: at the sandbox, on the ledger's clock.

Claim (README, adapters/xero/pacing.py): no minute of the ledger's clock, fixed (as Xero cuts its windows)
or sliding, ever counts more than 59 of ccm's calls, so the 60-a-minute limit is never reached.
Sources: LEDGER-API-FACTS.md "per tenant: 60 calls/min ... Windows are fixed, not sliding"; the sandbox's
limiter cuts fixed minutes from the epoch on its clock (adapters/sandbox/limiter.py) and records when it
counted each call (Accounting.arrivals).
"""

from __future__ import annotations

import itertools
import random
import time
from datetime import timedelta

from adapters.sandbox import SandboxClock
from adapters.xero.pacing import LedgerTime, Limits, Pacer
from adapters.xero.sandbox import start
from tests.xero_sandbox.conftest import NOON, Connected, connect

_scopes = itertools.count()


def fixed_minutes(arrivals: list[float]) -> int:
    counts: dict[int, int] = {}
    for at in arrivals:
        counts[int(at // 60)] = counts.get(int(at // 60), 0) + 1
    return max(counts.values())


def sliding_minutes(arrivals: list[float]) -> int:
    ordered = sorted(arrivals)
    return max(sum(1 for b in ordered[i:] if b < a + 60) for i, a in enumerate(ordered))


def paced_calls(conn: Connected, pacer: Pacer, count: int, transit: list[float]) -> None:
    """`count` sequential reads through ccm's pacer; call i reaches the ledger transit[i] after it starts."""
    clock = conn.sandbox.clock
    for i in range(count):
        with pacer.slot():
            if clock.speed == 0 and transit[i]:
                clock.advance(transit[i])
            answer = conn.get("Contacts", params={"pageSize": 1})
        pacer.observe(answer.headers)
        assert answer.status_code == 200, (i, answer.headers.get("X-Rate-Limit-Problem"))


def test_a_slow_first_call_does_not_put_60_calls_in_one_fixed_minute(firm):
    """The sandbox clock stands still except when ccm sleeps or a call is in transit. The first call starts
    0.2 s before a minute boundary and takes 0.3 s to be counted (after it); the next 58 follow at once.
    Spacing only by start times let the 60th call start 60 s after the first, i.e. 0.3 s before the next
    boundary: 60 calls counted in one fixed minute. ccm must keep it to 59."""
    clock = SandboxClock(NOON - timedelta(seconds=0.2), speed=0)
    sb = start(firm, clock=clock)
    try:
        conn = connect(sb)
        pacer = Pacer(
            "ccm", sb.tenant_id, LedgerTime(clock.now, clock.advance), Limits(), f"pin-{next(_scopes)}"
        )
        paced_calls(conn, pacer, 130, [0.3] + [0.0] * 129)
        arrivals = [at for _, at in sb.accounting.arrivals][-130:]
    finally:
        sb.stop()
    assert fixed_minutes(arrivals) <= 59
    assert sliding_minutes(arrivals) <= 59
    span = arrivals[-1] - arrivals[0]
    assert 129 / span * 60 >= 0.9 * 60  # and still over 90% of the allowed rate


def test_random_transits_up_to_the_bound_keep_every_minute_at_59(firm):
    """Transits drawn up to 0.9 s (under Limits.transit, 1 s) on a still clock: every fixed minute and every
    sliding minute at the sandbox counts at most 59 calls."""
    clock = SandboxClock(NOON - timedelta(seconds=0.5), speed=0)
    draw = random.Random(18)
    sb = start(firm, clock=clock)
    try:
        conn = connect(sb)
        pacer = Pacer(
            "ccm", sb.tenant_id, LedgerTime(clock.now, clock.advance), Limits(), f"rnd-{next(_scopes)}"
        )
        paced_calls(conn, pacer, 200, [draw.uniform(0, 0.9) for _ in range(200)])
        arrivals = [at for _, at in sb.accounting.arrivals][-200:]
    finally:
        sb.stop()
    assert fixed_minutes(arrivals) <= 59
    assert sliding_minutes(arrivals) <= 59


def test_on_a_running_clock_real_network_time_keeps_every_minute_at_59(firm):
    """A sandbox clock running 10x real time (so real transit and sleep overshoot count 10x): 130 calls
    across two minute boundaries; measured at the sandbox, every minute holds at most 59, none refused."""
    speed = 10.0
    clock = SandboxClock(NOON - timedelta(seconds=1), speed=speed)
    sb = start(firm, clock=clock)
    try:
        conn = connect(sb)
        pacer = Pacer(
            "ccm",
            sb.tenant_id,
            LedgerTime(clock.now, lambda s: time.sleep(s / speed)),
            Limits(),
            f"run-{next(_scopes)}",
        )
        paced_calls(conn, pacer, 130, [0.0] * 130)
        arrivals = [at for _, at in sb.accounting.arrivals][-130:]
        refused = sb.accounting.refused
    finally:
        sb.stop()
    assert refused == 0
    assert fixed_minutes(arrivals) <= 59
    assert sliding_minutes(arrivals) <= 59
