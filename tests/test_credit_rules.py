"""Credit holds in the domain's terms: each rule, tolerance, manual overrides, automatic release."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from connector.model import Money
from connector.rules.credit import Account, CreditFileError, evaluate, load_rules

RULES = load_rules()


def gbp(amount: str) -> Money:
    return Money(Decimal(amount), "GBP")


def acct(**kw) -> Account:
    base = {"customer_id": "C1", "name": "Ann's Café", "exposure": gbp("1000"), "limit": gbp("2000")}
    return Account(**{**base, **kw})


def decide(*accounts: Account) -> list[tuple[str, str, str]]:
    return [(d.customer_id, d.action, d.reason) for d in evaluate(accounts, RULES)]


def test_a_customer_within_every_rule_is_left_alone():
    assert decide(acct()) == []


def test_over_the_limit_within_tolerance_is_fine_beyond_it_is_a_hold():
    assert decide(acct(exposure=gbp("2100"))) == []  # 5% tolerance: up to 2,100.00
    assert decide(acct(exposure=gbp("2100.01"))) == [
        ("C1", "hold", "exposure £2,100.01 is over the limit £2,000.00 by more than 5%")
    ]


def test_a_limit_in_another_currency_is_not_compared_unconverted():
    assert decide(acct(exposure=gbp("9000"), limit=Money(Decimal("100"), "EUR"))) == []


def test_long_overdue_above_an_amount_is_a_hold():
    assert decide(acct(overdue=((61, Decimal("499.99")),))) == []
    assert decide(acct(overdue=((60, Decimal("800")),))) == []
    assert decide(acct(overdue=((61, Decimal("500")), (90, Decimal("700"))))) == [
        ("C1", "hold", "an invoice is 90 days overdue (£700.00 outstanding; the rule is 60 days) "
                       "(1 more over 60 days)")
    ]  # fmt: skip


def test_an_overdue_hold_names_the_invoice():
    found = decide(
        acct(overdue=((61, Decimal("500")), (90, Decimal("700"))), overdue_numbers=("INV-7", "INV-9"))
    )
    assert found == [("C1", "hold", "INV-9 is 90 days overdue (£700.00 outstanding; the rule is 60 days) "
                                    "(1 more over 60 days)")]  # fmt: skip


def test_dunning_level_and_rating_rules():
    assert decide(acct(dunning_level=5)) == [("C1", "hold", "reminder level 5 reached")]
    assert decide(acct(rating="E")) == [("C1", "hold", "payment rating E")]
    assert decide(acct(rating="D")) == []


def test_every_firing_rule_is_a_reason():
    [(_, _, reason)] = decide(acct(rating="E", dunning_level=6))
    assert reason == "reminder level 6 reached; payment rating E"


def test_a_rule_made_hold_is_released_when_nothing_fires_and_kept_while_something_does():
    assert decide(acct(on_hold=True, held_by_rule=True)) == [
        ("C1", "release", "no hold rule applies any more")
    ]
    assert decide(acct(on_hold=True, held_by_rule=True, rating="E")) == []


def test_a_manual_hold_is_never_released_automatically():
    assert decide(acct(manual="hold", manual_reason="cheque bounced")) == [
        ("C1", "hold", "manual hold: cheque bounced")
    ]
    assert decide(acct(manual="hold", on_hold=True)) == []


def test_a_never_hold_customer_is_never_held_automatically():
    assert decide(acct(manual="never", rating="E", exposure=gbp("99999"))) == []
    assert decide(acct(manual="never", on_hold=True, held_by_rule=True)) == [
        ("C1", "release", "the customer is marked never-hold")
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 2\nrules: []\n", "version: unsupported or missing"),
        ("version: 1\nrules:\n  - {when: bankrupt}\n", "rules[0].when: must be one of over_limit, overdue"),
        (
            "version: 1\nrules:\n  - {when: overdue, days: -1}\n",
            "rules[0].days: must be a whole number, at least 0",
        ),
        ("version: 1\nrules:\n  - {when: overdue, hours: 3}\n", "rules[0].hours: unknown for overdue"),
        ("version: 1\nrules:\n  - {when: rating, in: [Z]}\n", "rules[0].in: must be a list of ratings A-E"),
    ],
)
def test_bad_rule_files_are_one_line(tmp_path: Path, text: str, message: str):
    path = tmp_path / "credit.yaml"
    path.write_text(text)
    with pytest.raises(CreditFileError) as exc:
        load_rules(path)
    assert str(exc.value).startswith(f"{path}: {message}")
