"""Holds follow exposure (issue 12, item 5): nothing owed net, or less than a rule's minimum, is no hold.

Net exposure is what a customer owes less the payments and credit of theirs not yet applied. Unapplied money
beside open invoices is a question for the bookkeeper (a flag naming the customer and the amounts), and a
customer held before who now owes nothing is released, saying so.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from connector.creditcontrol import Held, held_after, unapplied_flags
from connector.model import Money
from connector.rules.credit import Account, CreditFileError, Decision, evaluate, load_rules, parse_rules

RULES = load_rules()  # over_limit 5%; overdue 60 days 500+; dunning level 5; rating E with 500+ owed
EARLIER = datetime(2026, 10, 1, tzinfo=UTC)


def gbp(amount: str) -> Money:
    return Money(Decimal(amount), "GBP")


def customer(open_: str, unapplied: str = "0", **kw: object) -> Account:
    """A customer as credit control sees them: open invoices and unapplied money, in GBP (the base)."""
    net = gbp(str(Decimal(open_) - Decimal(unapplied)))
    fields: dict[str, object] = {
        "customer_id": "C-JUN", "name": "Juniper Software Services", "exposure": net, "open": gbp(open_),
        "unapplied": gbp(unapplied), "net": net,
    }  # fmt: skip
    return Account(**{**fields, **kw})  # type: ignore[arg-type]


def decided(*accounts: Account) -> list[tuple[str, str]]:
    return [(d.action, d.reason) for d in evaluate(accounts, RULES)]


def test_a_customer_in_credit_is_not_held_whatever_their_rating_or_old_invoice():
    in_credit = customer("1000.00", "1417.90", rating="E", overdue=((90, Decimal("1000.00")),))
    assert decided(in_credit) == []


def test_a_customer_owing_exactly_nothing_net_is_not_held():
    assert decided(customer("800.00", "800.00", rating="E", dunning_level=6)) == []


def test_the_rating_rule_honours_its_minimum_an_e_payer_owing_348_is_not_held_against_500():
    assert decided(customer("348.00", rating="E")) == []
    assert decided(customer("500.00", rating="E")) == [("hold", "payment rating E")]


def test_the_overdue_rule_reads_what_is_owed_net_not_the_invoice_alone():
    old = ((90, Decimal("1000.00")),)
    assert decided(customer("1000.00", "600.00", overdue=old)) == []  # 400.00 owed net: under 500
    assert decided(customer("1000.00", overdue=old)) == [
        ("hold", "an invoice is 90 days overdue (£1,000.00 outstanding; the rule is 60 days)")
    ]


def test_every_rule_takes_a_minimum_amount():
    rules = parse_rules({"version": 1, "rules": [
        {"when": "dunning_level", "at_least": 5, "min_amount": 250},
        {"when": "over_limit", "tolerance_percent": 0, "min_amount": 250},
    ]}, "credit.yaml")  # fmt: skip
    small = customer("200.00", dunning_level=5, limit=gbp("100"))
    assert [d.reason for d in evaluate([small], rules)] == []
    larger = customer("300.00", dunning_level=5, limit=gbp("100"))
    assert [d.reason for d in evaluate([larger], rules)] == [
        "reminder level 5 reached; exposure £300.00 is over the limit £100.00"
    ]


def test_the_shipped_rating_rule_has_the_overdue_rules_minimum():
    rating = next(r for r in RULES if r.when == "rating")
    assert (rating.ratings, rating.min_amount) == (("E",), Decimal(500))


def test_a_minimum_that_is_no_amount_is_a_one_line_error_naming_the_rule():
    with pytest.raises(CreditFileError) as exc:
        parse_rules(
            {"version": 1, "rules": [{"when": "rating", "in": ["E"], "min_amount": "lots"}]}, "c.yaml"
        )
    assert str(exc.value) == "c.yaml: rules[0].min_amount: must be a number, got 'lots'"


def test_a_customer_held_before_who_is_now_in_credit_is_released_saying_why():
    held = customer("1000.00", "1417.90", rating="E", on_hold=True, held_by_rule=True)
    assert decided(held) == [(
        "release",
        "no hold rule applies any more: nothing is owed "
        "(net exposure -£417.90: open £1,000.00 less £1,417.90 unapplied)",
    )]  # fmt: skip


def test_a_person_s_hold_stays_even_when_nothing_is_owed():
    manual = customer("0", "50.00", manual="hold", manual_reason="cheque bounced", on_hold=True)
    assert decided(manual) == []


def test_unapplied_money_beside_open_invoices_is_a_question_for_the_bookkeeper():
    flags = unapplied_flags([
        customer("1000.00", "1417.90"),
        customer("2000.00", "150.00", customer_id="C-KES", name="Kestrel Motors"),
        customer("0", "75.00", customer_id="C-ELM", name="Elm Bakery"),  # nothing open: nothing to apply to
        customer("300.00", customer_id="C-ASH", name="Ashford Florist"),
    ])  # fmt: skip
    assert flags == [
        ("C-JUN", "Juniper Software Services: £1,417.90 unapplied while £1,000.00 is open (net exposure "
                  "-£417.90); apply it to the open invoices in the ledger or refund it; not held, as nothing "
                  "is owed net"),
        ("C-KES", "Kestrel Motors: £150.00 unapplied while £2,000.00 is open (net exposure £1,850.00); "
                  "apply it to the open invoices in the ledger or refund it"),
    ]  # fmt: skip


def test_who_is_on_hold_after_tonight_counts_tonight_s_holds_and_releases():
    held = {
        "C-JUN": Held(True, "rule", "payment rating E", EARLIER),
        "C-ELM": Held(True, "manual", "cheque bounced", EARLIER),
        "C-ASH": Held(False, "rule", "released", EARLIER),
    }
    tonight = [
        Decision("C-JUN", "release", ("no hold rule applies any more",)),
        Decision("C-KES", "hold", ("payment rating E",)),
    ]
    assert held_after(held, tonight) == frozenset({"C-ELM", "C-KES"})
