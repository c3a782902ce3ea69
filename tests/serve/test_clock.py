"""The simulated clock `ccm serve` runs tests and demos on: one spec, the same time in every process."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from connector.clock import Clock, ClockSpecError


def test_the_real_clock_is_the_default():
    clock = Clock.parse("")
    assert not clock.simulated and clock.spec() == ""
    before = datetime.now(UTC)
    shown = clock.now()
    assert before <= shown <= datetime.now(UTC)  # the machine's clock, read between two readings of it


def test_a_spec_round_trips_and_two_parsers_agree():
    text = "2026-10-24T18:00:00+00:00@1800000000.250x3600"
    one, two = Clock.parse(text), Clock.parse(text)
    assert one == two and one.spec() == text
    assert one.to_clock(1_800_000_000.25) == datetime(2026, 10, 24, 18, tzinfo=UTC)
    assert one.to_clock(1_800_000_001.25) == datetime(2026, 10, 24, 19, tzinfo=UTC)  # an hour a second
    assert one.to_real(datetime(2026, 10, 25, 18, tzinfo=UTC)) == pytest.approx(1_800_000_024.25)
    assert one.real_seconds(3600) == 1.0


def test_without_an_anchor_it_starts_now():
    before = time.time()
    clock = Clock.parse("2026-10-24T18:00:00Zx60")
    assert before <= clock.anchor <= time.time()
    assert clock.origin == datetime(2026, 10, 24, 18, tzinfo=UTC) and clock.speed == 60


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tomorrow", "clock origin is not an ISO date-time: 'tomorrow'"),
        ("2026-10-24T18:00:00x60", "clock origin needs a UTC offset (e.g. +00:00): '2026-10-24T18:00:00'"),
        ("2026-10-24T18:00:00+00:00x0", "clock speed must be above 0: '0'"),
        (
            "2026-10-24T18:00:00+00:00@abcx2",
            "not a clock spec ORIGIN[@ANCHOR][xSPEED]: '2026-10-24T18:00:00+00:00@abcx2'",
        ),
    ],
)
def test_a_bad_spec_is_one_line_naming_what_is_wrong(text: str, message: str):
    with pytest.raises(ClockSpecError) as caught:
        Clock.parse(text)
    assert str(caught.value) == message
