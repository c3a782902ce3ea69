"""Statutory late-payment interest and compensation, against worked examples spanning rate changes."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from connector.model import Money
from connector.rules.interest import (
    RatesFileError,
    RateUnknown,
    Regime,
    claim,
    combined,
    compensation,
    load_rates,
)

RATES = load_rates()


def gbp(amount: str) -> Money:
    return Money(Decimal(amount), "GBP")


def test_uk_interest_across_a_half_year_boundary():
    # £5,000 due 31 May 2023, assessed 31 August 2023.
    # June (30 days): base rate on 31 Dec 2022 was 3.50% -> 11.50%: 5000 x 0.115 x 30/365 = 47.2603
    # July-August (62 days): base rate on 30 Jun 2023 was 5.00% -> 13.00%: 5000 x 0.13 x 62/365 = 110.4110
    result = claim(gbp("5000.00"), date(2023, 5, 31), date(2023, 8, 31), Regime.UK, RATES)
    assert [(p.start, p.end, p.rate, p.days) for p in result.periods] == [
        (date(2023, 6, 1), date(2023, 6, 30), Decimal("11.50"), 30),
        (date(2023, 7, 1), date(2023, 8, 31), Decimal("13.00"), 62),
    ]
    assert result.interest == gbp("157.67")
    assert result.compensation == gbp("70")


def test_uk_rate_changes_inside_a_half_year_do_not_move_the_reference():
    # Base rate fell on 1 Aug 2024 and 7 Nov 2024, but July-December 2024 uses the rate on 30 Jun 2024: 5.25%.
    result = claim(gbp("900.00"), date(2024, 7, 31), date(2024, 12, 31), Regime.UK, RATES)
    assert [p.rate for p in result.periods] == [Decimal("13.25")]
    assert result.periods[0].days == 153
    assert result.interest == gbp("49.99")  # 900 x 0.1325 x 153/365 = 49.9870
    assert result.compensation == gbp("40")


def test_eu_interest_uses_the_ecb_rate_on_1_january_and_1_july():
    # €800 due 20 June 2024, assessed 20 July 2024:
    # 21-30 June (10 days): MRO on 1 Jan 2024 4.50% -> 12.50%: 800 x 0.125 x 10/365 = 2.7397
    # 1-20 July (20 days): MRO on 1 Jul 2024 4.25% -> 12.25%: 800 x 0.1225 x 20/365 = 5.3699
    result = claim(Money(Decimal("800.00"), "EUR"), date(2024, 6, 20), date(2024, 7, 20), Regime.EU, RATES)
    assert [p.rate for p in result.periods] == [Decimal("12.50"), Decimal("12.25")]
    assert result.interest == Money(Decimal("8.11"), "EUR")
    assert result.compensation == Money(Decimal("40"), "EUR")


@pytest.mark.parametrize(
    ("amount", "fixed"), [("999.99", "40"), ("1000.00", "70"), ("9999.99", "70"), ("10000.00", "100")]
)
def test_uk_fixed_compensation_bands(amount, fixed):
    assert compensation(gbp(amount), Regime.UK) == gbp(fixed)


def test_nothing_is_owed_on_or_before_the_due_date():
    result = claim(gbp("500.00"), date(2024, 3, 1), date(2024, 3, 1), Regime.UK, RATES)
    assert result.periods == ()
    assert result.interest == gbp("0.00")
    assert result.compensation == gbp("0")


def test_a_reminder_line_says_what_may_be_claimed():
    line = claim(gbp("5000.00"), date(2023, 5, 31), date(2023, 8, 31), Regime.UK, RATES).describe()
    assert line == (
        "Under the Late Payment of Commercial Debts (Interest) Act 1998 we may claim interest of £157.67 "
        "(11.50% from 2023-06-01, 13.00% from 2023-07-01) and fixed compensation of £70.00."
    )


def test_a_stale_table_is_flagged_not_refused_and_a_tenant_extends_it(tmp_path: Path):
    stale = claim(gbp("100.00"), date(2027, 6, 30), date(2027, 7, 10), Regime.UK, RATES)
    assert stale.periods and stale.unconfirmed == stale.periods  # the last rate known, marked unconfirmed
    own = tmp_path / "reference_rates.yaml"
    own.write_text('checked:\n  boe_base_rate: 2027-06-30\nboe_base_rate:\n  2027-05-01: "3.25"\n')
    extended = load_rates(own)
    result = claim(gbp("100.00"), date(2027, 6, 30), date(2027, 7, 10), Regime.UK, extended)
    assert [p.rate for p in result.periods] == [Decimal("11.25")]
    assert result.unconfirmed == ()
    with pytest.raises(RateUnknown, match="no boe_base_rate rate known on 2008-12-31"):
        claim(gbp("100.00"), date(2009, 1, 1), date(2009, 2, 1), Regime.UK, RATES)  # before the table


def test_a_bad_rates_file_is_one_line(tmp_path: Path):
    own = tmp_path / "reference_rates.yaml"
    own.write_text('boe_base_rate:\n  2027-05-01: "high"\n')
    with pytest.raises(RatesFileError, match=rf"^{own}: boe_base_rate.2027-05-01: not a rate: 'high'$"):
        load_rates(own)


def test_several_invoices_share_one_line_with_summed_interest_and_compensation():
    claims = [
        claim(gbp("5000.00"), date(2023, 5, 31), date(2023, 8, 31), Regime.UK, RATES),  # 157.67, £70
        claim(gbp("900.00"), date(2024, 7, 31), date(2024, 12, 31), Regime.UK, RATES),  # 49.99, £40
        claim(gbp("10.00"), date(2024, 12, 31), date(2024, 12, 31), Regime.UK, RATES),  # not yet due anything
    ]
    assert combined(claims) == (
        "Under the Late Payment of Commercial Debts (Interest) Act 1998 we may claim interest of £207.66 and "
        "fixed compensation of £110.00 on these 2 invoices."
    )
    assert combined(claims[2:]) is None
