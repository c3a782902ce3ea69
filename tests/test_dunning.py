"""Dunning in the domain's terms: a small firm's open invoices in, today's reminders and skips out."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal

import pytest

from connector.model import Money
from connector.rules.calendar import SendCalendar
from connector.rules.dunning import Debtor, DueItem, Skip, evaluate
from connector.rules.policy import load_policies

POLICIES = load_policies()  # standard: courtesy -3, first +3, second +14, final +30, call +45 (calendar days)
LONDON = SendCalendar("Europe/London", "GB", "ENG")
DUE = date(2026, 11, 2)  # a Monday


def gbp(amount: str) -> Money:
    return Money(Decimal(amount), "GBP")


def invoice(iid: str = "INV-1", due: date = DUE, amount: str = "120.00", **kw) -> DueItem:
    return DueItem(iid, due, gbp(amount), number=iid, **kw)


def anns_cafe(*items: DueItem, **kw) -> Debtor:
    return Debtor("C-ANN", "Ann's Café", "ann@example.com", ("Retail",), "low", items=items, **kw)


def run(*debtors: Debtor, today: date):
    return evaluate("acme", debtors, POLICIES, LONDON, today)


def levels(result) -> list[tuple[str, str, int]]:
    return [
        (r.customer_id, line.item.invoice_id, line.level.number) for r in result.reminders for line in r.lines
    ]


def test_nothing_is_sent_before_the_first_level_is_due():
    assert levels(run(anns_cafe(invoice()), today=DUE - timedelta(days=4))) == []


def test_a_courtesy_note_three_days_before_the_due_date():
    result = run(anns_cafe(invoice()), today=DUE - timedelta(days=3))
    assert levels(result) == [("C-ANN", "INV-1", 1)]
    assert result.reminders[0].lines[0].level.name == "courtesy"
    assert result.reminders[0].lines[0].days_overdue == -3


def test_an_unsent_courtesy_note_expires_at_the_due_date():
    result = run(anns_cafe(invoice()), today=DUE + timedelta(days=5))
    assert levels(result) == [("C-ANN", "INV-1", 2)]


def test_escalation_follows_the_levels():
    item = invoice(last_level=2, last_sent_on=DUE + timedelta(days=3))
    assert levels(run(anns_cafe(item), today=DUE + timedelta(days=13))) == []
    assert levels(run(anns_cafe(item), today=DUE + timedelta(days=14))) == [("C-ANN", "INV-1", 3)]


def test_a_missed_week_catches_up_once_at_the_next_level_never_skipping_one():
    item = invoice(last_level=2, last_sent_on=DUE + timedelta(days=3))
    result = run(anns_cafe(item), today=DUE + timedelta(days=40))
    assert levels(result) == [("C-ANN", "INV-1", 3)]  # second reminder, not the final notice


def test_too_soon_after_the_previous_reminder_waits():
    item = invoice(last_level=2, last_sent_on=DUE + timedelta(days=10))
    result = run(anns_cafe(item), today=DUE + timedelta(days=14))
    assert levels(result) == []
    assert [(s.invoice_id, s.level, s.reason, s.detail) for s in result.skipped] == [
        ("INV-1", 3, Skip.TOO_SOON, "4 of 7 days")
    ]


def test_a_paid_invoice_is_never_chased():
    assert levels(run(anns_cafe(invoice(amount="0.00")), today=DUE + timedelta(days=20))) == []


def test_one_combined_message_per_customer_lists_every_invoice_due():
    result = run(
        anns_cafe(invoice("INV-1"), invoice("INV-2", due=DUE - timedelta(days=20), last_level=2,
                                            last_sent_on=DUE - timedelta(days=17))),
        today=DUE + timedelta(days=5),
    )  # fmt: skip
    assert len(result.reminders) == 1
    assert levels(result) == [("C-ANN", "INV-2", 3), ("C-ANN", "INV-1", 2)]
    assert result.reminders[0].level == 3
    assert [line.days_overdue for line in result.reminders[0].lines] == [25, 5]


def test_a_phone_call_is_a_separate_task():
    late = invoice("INV-9", due=DUE - timedelta(days=60), last_level=4, last_sent_on=DUE - timedelta(days=30))
    result = run(anns_cafe(invoice("INV-1"), late), today=DUE + timedelta(days=5))
    assert sorted((r.channel, len(r.lines)) for r in result.reminders) == [("call_task", 1), ("email", 1)]


def test_keys_are_deterministic_and_independent_of_order():
    a, b = invoice("INV-1"), invoice("INV-2")
    first = run(anns_cafe(a, b), today=DUE + timedelta(days=5))
    second = run(anns_cafe(b, a), today=DUE + timedelta(days=5))
    assert first == second
    assert first.reminders[0].key.startswith("dun-")
    again_later = run(anns_cafe(a, b), today=DUE + timedelta(days=6))
    assert (
        again_later.reminders[0].key == first.reminders[0].key
    )  # same invoices, same level: the same action


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        ({"do_not_chase": True}, Skip.DO_NOT_CHASE),
        ({"paused_until": DUE + timedelta(days=10)}, Skip.PAUSED),
        ({"on_plan": True}, Skip.PAYMENT_PLAN),
        ({"promise_until": DUE + timedelta(days=7)}, Skip.PROMISE),
        ({"on_hold": True}, Skip.ON_HOLD),
        ({"unapplied": gbp("50.00")}, Skip.UNAPPLIED_CASH),
        ({"last_contacted_on": DUE + timedelta(days=5)}, Skip.CONTACTED_TODAY),
        ({"email": None}, Skip.NO_ADDRESS),
    ],
)
def test_every_exclusion_is_a_skip_with_its_reason(state, reason):
    result = run(replace(anns_cafe(invoice()), **state), today=DUE + timedelta(days=5))
    assert result.reminders == ()
    assert [(s.invoice_id, s.reason) for s in result.skipped] == [("INV-1", reason)]


def test_a_disputed_invoice_is_skipped_and_the_rest_still_chased():
    result = run(anns_cafe(invoice("INV-1", disputed=True), invoice("INV-2")), today=DUE + timedelta(days=5))
    assert levels(result) == [("C-ANN", "INV-2", 2)]
    assert [(s.invoice_id, s.reason) for s in result.skipped] == [("INV-1", Skip.DISPUTED)]


def test_unapplied_cash_is_flagged_for_the_bookkeeper():
    result = run(anns_cafe(invoice(), unapplied=gbp("120.00")), today=DUE + timedelta(days=5))
    assert result.flags == (
        "Ann's Café: £120.00 unapplied while 1 invoice(s) are due a reminder; apply it in the ledger or refund it",
    )


def test_a_broken_promise_re_enters_the_sequence_where_it_left():
    item = invoice(last_level=2, last_sent_on=DUE + timedelta(days=3))
    promised = anns_cafe(item, promise_until=DUE + timedelta(days=20))
    assert levels(run(promised, today=DUE + timedelta(days=20))) == []
    assert levels(run(promised, today=DUE + timedelta(days=21))) == [("C-ANN", "INV-1", 3)]


def test_under_the_minimum_is_skipped():
    result = run(anns_cafe(invoice(amount="0.50")), today=DUE - timedelta(days=3))
    assert [(s.reason, s.detail) for s in result.skipped] == [(Skip.UNDER_MINIMUM, "£0.50 < 1")]


def test_high_risk_customers_get_the_firmer_business_day_policy_even_on_hold():
    risky = Debtor("C-BOB", "Bob's Bikes", "bob@example.com", ("Retail",), "high", on_hold=True,
                   items=(invoice("INV-7", due=date(2026, 12, 23)),))  # fmt: skip
    # first reminder at +1 business day: 24 December (Thursday); 25-28 December are not business days.
    assert levels(run(risky, today=date(2026, 12, 23))) == []
    result = run(risky, today=date(2026, 12, 24))
    assert levels(result) == [("C-BOB", "INV-7", 2)]
    assert result.reminders[0].policy == "high-risk"


def test_evaluation_does_not_depend_on_the_order_of_debtors():
    debtors = [anns_cafe(invoice()), *(
        Debtor(f"C-{i}", f"Customer {i}", f"c{i}@example.com", items=(invoice(f"I-{i}", due=DUE - timedelta(days=i)),))
        for i in range(20)
    )]  # fmt: skip
    shuffled = debtors[:]
    random.Random(4).shuffle(shuffled)
    assert run(*debtors, today=DUE + timedelta(days=5)) == run(*shuffled, today=DUE + timedelta(days=5))
