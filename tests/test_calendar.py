"""Send timing in the tenant's own calendar: weekends, public holidays, the window, DST, midnight."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from connector.rules.calendar import CalendarError, SendCalendar

LONDON = SendCalendar("Europe/London", "GB", "ENG")
AUCKLAND = SendCalendar("Pacific/Auckland", "NZ")
NEW_YORK = SendCalendar("America/New_York", "US")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_weekends_and_public_holidays_are_not_business_days():
    assert LONDON.is_business_day(date(2026, 12, 24))  # Thursday
    assert not LONDON.is_business_day(date(2026, 12, 25))  # Christmas Day
    assert not LONDON.is_business_day(date(2026, 12, 26))  # Saturday
    assert not LONDON.is_business_day(date(2026, 12, 28))  # Boxing Day (substitute)
    assert LONDON.holiday(date(2026, 4, 3)) == "Good Friday"


def test_business_day_offsets_skip_closed_days_both_ways():
    assert LONDON.add_days(date(2026, 12, 24), 1, business=True) == date(2026, 12, 29)
    assert LONDON.add_days(date(2026, 12, 29), -1, business=True) == date(2026, 12, 24)
    assert LONDON.add_days(date(2026, 12, 24), 3, business=False) == date(2026, 12, 27)
    assert LONDON.add_days(date(2026, 12, 24), 0, business=True) == date(2026, 12, 24)


def test_the_send_window_is_local_time():
    assert LONDON.can_send_at(utc(2026, 7, 1, 8, 30))  # 09:30 BST
    assert not LONDON.can_send_at(utc(2026, 7, 1, 16, 30))  # 17:30 BST
    assert LONDON.can_send_at(utc(2026, 1, 7, 16, 30))  # 16:30 GMT


def test_a_night_run_waits_for_the_morning_of_the_next_business_day():
    # Friday 23:00 in London -> Monday 09:00
    assert LONDON.next_send_time(utc(2026, 11, 27, 23, 0)) == utc(2026, 11, 30, 9, 0)
    # Christmas Eve evening -> 29 December morning
    assert LONDON.next_send_time(utc(2026, 12, 24, 18, 0)) == utc(2026, 12, 29, 9, 0)
    # Already inside the window: now
    assert LONDON.next_send_time(utc(2026, 11, 25, 10, 0)) == utc(2026, 11, 25, 10, 0)


def test_around_midnight_the_local_day_decides():
    # 23:30 UTC on Sunday is already Monday 12:30 in Auckland: a sending day.
    instant = utc(2026, 11, 22, 23, 30)
    assert AUCKLAND.local_date(instant) == date(2026, 11, 23)
    assert AUCKLAND.can_send_at(instant)
    # 02:00 UTC on Monday is still Sunday 21:00 in New York.
    assert NEW_YORK.why_not(utc(2026, 11, 23, 2, 0)) == "Sunday is not a sending day"


def test_dst_changes_keep_the_window_on_the_local_clock():
    # London springs forward on 29 March 2026: Monday 30 March opens at 08:00 UTC, not 09:00.
    assert LONDON.next_send_time(utc(2026, 3, 27, 20, 0)) == utc(2026, 3, 30, 8, 0)
    # ... and falls back on 25 October: Monday 26 October opens at 09:00 UTC.
    assert LONDON.next_send_time(utc(2026, 10, 23, 20, 0)) == utc(2026, 10, 26, 9, 0)


def test_reasons_are_plain_words():
    assert LONDON.why_not(utc(2026, 12, 25, 10, 0)) == "2026-12-25 is a public holiday (Christmas Day)"
    assert (
        LONDON.why_not(utc(2026, 11, 25, 7, 0))
        == "07:00 Europe/London is outside the send window 09:00-17:00"
    )
    assert LONDON.why_not(utc(2026, 11, 25, 10, 0)) is None


def test_bad_settings_are_one_line_errors():
    with pytest.raises(CalendarError, match="unknown time zone 'Mars/Olympus'"):
        SendCalendar("Mars/Olympus")
    with pytest.raises(CalendarError, match="no public holiday calendar for country 'XX'"):
        SendCalendar("UTC", "XX")
    with pytest.raises(CalendarError, match="is empty"):
        SendCalendar(window_start=time(17), window_end=time(9))
