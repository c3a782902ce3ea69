from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from connector.mapping.values import ValueProblem, date_parser, instant_parser, to_decimal


def test_xero_ms_json_dates():
    assert instant_parser("msjson")("/Date(1573755038314+0000)/") == datetime(
        2019, 11, 14, 18, 10, 38, 314000, tzinfo=UTC
    )
    assert date_parser("auto")("/Date(1518652800000+0000)/") == date(2018, 2, 15)
    assert instant_parser("auto")("/Date(-86400000)/") == datetime(1969, 12, 31, tzinfo=UTC)
    # The offset says where it was written; the count is UTC already.
    assert instant_parser("msjson")("/Date(0+1300)/") == datetime(1970, 1, 1, tzinfo=UTC)


def test_iso_instants_become_utc_and_naive_ones_are_taken_as_utc():
    parse = instant_parser("iso")
    assert parse("2015-07-24T10:33:39-07:00") == datetime(2015, 7, 24, 17, 33, 39, tzinfo=UTC)
    assert parse("2019-11-14T18:50:38.313") == datetime(2019, 11, 14, 18, 50, 38, 313000, tzinfo=UTC)
    assert parse("2026-01-01T00:00:00Z") == datetime(2026, 1, 1, tzinfo=UTC)


def test_iso_dates_keep_the_local_calendar_day():
    assert date_parser("iso")("2015-07-24T23:30:00-07:00") == date(2015, 7, 24)


def test_strptime_patterns():
    assert date_parser("%d/%m/%Y")("31/01/2026") == date(2026, 1, 31)
    with pytest.raises(ValueProblem, match="does not match"):
        date_parser("%d/%m/%Y")("2026-01-31")


def test_bad_dates_are_value_problems():
    with pytest.raises(ValueProblem, match="not an MS-JSON date"):
        instant_parser("msjson")("2026-01-01")
    with pytest.raises(ValueProblem, match="expected a date string"):
        date_parser("iso")(20260101)


def test_decimals_are_exact():
    assert to_decimal(0.1) + to_decimal(0.2) == Decimal("0.3")
    assert to_decimal("1234.5678") == Decimal("1234.5678")
    assert to_decimal(7) == Decimal(7)
    for bad in ("NaN", "Infinity", "", True, None):
        with pytest.raises(ValueProblem):
            to_decimal(bad)
