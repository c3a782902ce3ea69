"""The nightly trigger: exactly one run per local date, at the local time a person means, through DST.

A cron-style trigger (APScheduler's CronTrigger) fires twice on the night whose time falls in the hour that
summer time's end repeats; these tests pin that ours fires once, at the first of the two instants, and on
the night whose time summer time's start skips fires once, at the same wall time on the old offset.
"""

from __future__ import annotations

import itertools
import pickle
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger

from connector.clock import Clock
from connector.serve.trigger import NightlyTrigger, fire_on, next_fire, parse_time

ZONES = ["Europe/London", "America/New_York", "Australia/Sydney", "Australia/Lord_Howe", "Atlantic/Azores",
         "Pacific/Chatham", "America/Santiago", "Asia/Kolkata", "UTC"]  # fmt: skip
TIMES = ["00:00", "00:30", "01:30", "02:00", "02:30", "03:30", "23:59"]


def fires(trigger: NightlyTrigger, start: datetime, count: int) -> list[datetime]:
    """What APScheduler would get from the trigger, run after run."""
    found: list[datetime] = []
    previous = None
    now = start
    for _ in range(count):
        nxt = trigger.get_next_fire_time(previous, now)
        found.append(nxt)
        previous, now = nxt, nxt
    return found


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("at", TIMES)
def test_one_run_per_local_date_for_two_years(zone: str, at: str):
    z = ZoneInfo(zone)
    runs = fires(NightlyTrigger(zone, at), datetime(2026, 1, 1, 12, tzinfo=UTC), 730)
    days = [r.astimezone(z).date() for r in runs]
    assert days == [days[0] + timedelta(days=i) for i in range(730)]  # every date once, none skipped
    assert all(b > a for a, b in itertools.pairwise(runs))
    wanted = parse_time(at)
    for run in runs:
        local = run.astimezone(z)
        if local.time() != wanted:  # only on a day a DST change skips that wall time: moved by the gap
            naive = datetime.combine(local.date(), wanted)
            assert naive.replace(tzinfo=z).astimezone(UTC).astimezone(z).replace(tzinfo=None) != naive
            assert timedelta(0) < local.replace(tzinfo=None) - naive <= timedelta(hours=1)


def test_the_repeated_hour_runs_once_where_cron_runs_twice():
    london = ZoneInfo("Europe/London")
    start = datetime(2026, 10, 24, 12, tzinfo=UTC)
    cron = CronTrigger(hour=1, minute=30, timezone=london)
    cron_runs, previous, now = [], None, start
    for _ in range(3):
        previous = cron.get_next_fire_time(previous, now)
        cron_runs.append(previous)
        now = previous
    assert [r.astimezone(london).date() for r in cron_runs].count(date(2026, 10, 25)) == 2  # the bug we avoid

    ours = fires(NightlyTrigger("Europe/London", "01:30"), start, 3)
    assert [r.astimezone(london).date() for r in ours] == [date(2026, 10, 25), date(2026, 10, 26),
                                                           date(2026, 10, 27)]  # fmt: skip
    assert ours[0] == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 01:30 BST, the first of the two


def test_the_skipped_hour_runs_an_hour_later_on_the_new_offset():
    new_york = ZoneInfo("America/New_York")
    [run] = fires(NightlyTrigger("America/New_York", "02:30"), datetime(2027, 3, 13, 12, tzinfo=UTC), 1)
    assert run.astimezone(new_york) == datetime(2027, 3, 14, 3, 30, tzinfo=new_york)  # 02:30 EST read as EDT


def test_a_simulated_clock_hands_apscheduler_real_instants():
    clock = Clock(datetime(2026, 10, 24, 18, tzinfo=UTC), anchor=1_000_000.0, speed=3600)
    trigger = NightlyTrigger("Europe/London", "01:30", clock)
    now_real = datetime.fromtimestamp(1_000_000.0, UTC)  # the clock shows 2026-10-24 18:00 then
    nxt = trigger.get_next_fire_time(None, now_real)
    assert clock.to_clock(nxt.timestamp()) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert (nxt - now_real).total_seconds() == pytest.approx(6.5 * 3600 / 3600)  # 6.5 h of clock: 6.5 s


def test_next_fire_counts_the_instant_itself_and_moves_on_after_it():
    zone = ZoneInfo("Europe/Helsinki")
    at = parse_time("03:30")
    fired = fire_on(date(2026, 10, 25), at, zone)
    assert fired == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # 03:30 EEST, the first of the two
    assert next_fire(fired, at, zone) == fired
    assert next_fire(fired + timedelta(seconds=1), at, zone) == fire_on(date(2026, 10, 26), at, zone)


def test_the_trigger_survives_pickling_in_the_job_store():
    clock = Clock.parse("2026-10-24T18:00:00+00:00@1000000.000x3600")
    trigger = NightlyTrigger("Europe/London", "01:30", clock)
    back = pickle.loads(pickle.dumps(trigger))
    assert back.same_schedule(trigger)
    assert back.clock == clock
    assert not NightlyTrigger("Europe/London", "01:45", clock).same_schedule(trigger)
    assert not NightlyTrigger("Europe/London", "01:30").same_schedule(trigger)
    assert str(trigger) == "nightly[01:30 Europe/London]"


def test_parse_time_reads_hours_and_minutes():
    assert parse_time("00:05") == time(0, 5)
