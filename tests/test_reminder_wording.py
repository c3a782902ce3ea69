"""Holds and reminders agree (issue 12, item 8): the wording of a reminder follows the customer's state.

A customer on credit hold, or put on hold the same night, is told so (or, where the policy does not chase held
customers, not written to at all), never sent a gentle first reminder; ccm's first reminder on a debt 300-500
days old is firm, never "if payment is already on its way, thank you".
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from connector import mail
from connector.model import Money
from connector.rules.calendar import SendCalendar
from connector.rules.dunning import Debtor, DueItem, evaluate
from connector.rules.policy import PolicyFileError, load_policies, parse_policies

POLICIES = load_policies()  # high-risk (chase_on_hold: true) and standard (chase_on_hold: false), shipped
LONDON = SendCalendar("Europe/London", "GB", "ENG")
TODAY = date(2026, 11, 24)  # a Tuesday
GENTLE = "If payment is already on its way, thank you"


def overdue(
    days: int, number: str = "INV-000026", last_level: int = 0, last_sent_on: date | None = None
) -> DueItem:
    """An open invoice of £480.00, `days` past its due date, chased by ccm up to `last_level`."""
    due = TODAY - timedelta(days=days)
    return DueItem(number, due, Money(Decimal("480.00"), "GBP"), number, last_level=last_level,
                   last_sent_on=last_sent_on)  # fmt: skip


def harbour(*items: DueItem, risk: str = "high", **kw: object) -> Debtor:
    """Harbour Roofing Supplies: risk high takes the shipped high-risk policy, which chases held customers."""
    return Debtor("C-HAR", "Harbour Roofing Supplies", "accounts@harbour.example", ("Trade",), risk,
                  items=items, **kw)  # type: ignore[arg-type]  # fmt: skip


def worded(*debtors: Debtor) -> list[tuple[int, str, str]]:
    result = evaluate("acme", debtors, POLICIES, LONDON, TODAY)
    return [(r.level, r.template, r.worded_for) for r in result.reminders]


def test_a_customer_going_on_hold_tonight_gets_the_hold_wording_not_a_first_reminder():
    assert worded(harbour(overdue(10), on_hold=True)) == [(2, "hold", "the customer is on credit hold")]
    assert worded(harbour(overdue(10))) == [(2, "", "")]  # not held: the first reminder's own wording


def test_the_hold_wording_is_a_reminder_of_its_own_so_a_planned_gentle_one_is_replaced():
    gentle = evaluate("acme", [harbour(overdue(10))], POLICIES, LONDON, TODAY).reminders[0]
    held = evaluate("acme", [harbour(overdue(10), on_hold=True)], POLICIES, LONDON, TODAY).reminders[0]
    assert gentle.key != held.key


def test_ccm_s_first_reminder_on_a_debt_400_days_old_is_firm():
    assert worded(harbour(overdue(400))) == [
        (2, "overdue", "first reminder on a debt 400 days overdue (INV-000026)")
    ]


@pytest.mark.parametrize("days", [60, 300, 500])
def test_every_old_debt_first_reminder_uses_the_old_debt_wording(days: int):
    [(_, template, _)] = worded(harbour(overdue(days), risk="low"))
    assert template == "overdue"


def test_a_debt_younger_than_the_threshold_keeps_the_gentle_first_reminder():
    assert worded(harbour(overdue(59), risk="low")) == [(2, "", "")]


def test_once_ccm_has_written_about_an_old_debt_the_levels_own_wording_follows():
    sent = overdue(400, last_level=2, last_sent_on=TODAY - timedelta(days=8))
    assert worded(harbour(sent, risk="low")) == [(3, "", "")]  # second reminder: "we wrote to you ..."


def test_a_message_that_also_opens_chasing_on_an_old_debt_claims_no_earlier_reminders_for_it():
    followed = overdue(45, number="INV-000030", last_level=3, last_sent_on=TODAY - timedelta(days=8))
    first_on_old = overdue(400, number="INV-000026")
    assert worded(harbour(followed, first_on_old, risk="low")) == [
        (4, "overdue", "first reminder on a debt 400 days overdue (INV-000026)")
    ]  # not the final notice's "despite our earlier reminders": there were none about INV-000026


def test_a_level_meant_for_debts_as_old_keeps_its_own_wording():
    doc = {"version": 1, "policies": [{"name": "late-starter", "levels": [
        {"name": "final notice", "offset": 90, "channel": "email", "template": "final"},
    ]}]}  # fmt: skip
    result = evaluate("acme", [harbour(overdue(400))], parse_policies(doc, "policy.yaml"), LONDON, TODAY)
    assert [(r.level, r.template) for r in result.reminders] == [(1, "")]  # offset 90 >= 60: its own


def test_hold_wording_wins_over_old_debt_wording():
    assert worded(harbour(overdue(400), on_hold=True)) == [(2, "hold", "the customer is on credit hold")]


def test_a_policy_names_its_own_wordings_and_a_bad_one_is_a_one_line_error():
    doc: dict[str, Any] = {"version": 1, "policies": [{
        "name": "own", "hold_template": "stop", "old_debt": {"days": 120, "template": "late"},
        "levels": [{"name": "first", "offset": 3, "channel": "email", "template": "reminder"}],
    }]}  # fmt: skip
    policy = parse_policies(doc, "policy.yaml").policies[0]
    assert (policy.hold_template, policy.old_debt_days, policy.old_debt_template) == ("stop", 120, "late")
    doc["policies"][0]["old_debt"] = {"days": 0}
    with pytest.raises(PolicyFileError) as exc:
        parse_policies(doc, "policy.yaml")
    assert str(exc.value) == "policy.yaml: policies[0].old_debt.days: must be at least 1"


@pytest.mark.parametrize(("template", "says"), [("hold", "on credit hold"), ("overdue", "well past")])
def test_the_shipped_hold_and_old_debt_wordings_are_firm(template: str, says: str):
    rendered = mail.render(mail.environment(None), template, mail.SAMPLE)
    assert says in rendered.text and says in rendered.html
    assert GENTLE not in rendered.text and GENTLE not in rendered.html
