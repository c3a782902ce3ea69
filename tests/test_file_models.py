"""The rules files' pydantic models (connector/yamlfile.py FileModel): one line naming file and key path.

The policy, credit and reference-rate files each have their own tests for their rules; these pin what the
shared machinery does for all three: where a problem is said to be, in whose words, and that only the first
problem is told.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any

import pytest
from pydantic import Field, StrictInt, field_validator

from connector.rules.credit import CreditFileError, load_rules
from connector.rules.interest import RatesFileError, load_rates
from connector.rules.policy import PolicyFileError, load_policies
from connector.yamlfile import FileModel, FileProblem, at, key_path, required, validated, worded


class _Item(FileModel):
    count: Annotated[StrictInt, Field(ge=1), worded("must be a whole number, got {got}")] = required()
    size: Annotated[StrictInt, Field(ge=0), worded(None, greater_than_equal="must be 0 or more")] = 0


class _Doc(FileModel):
    items: Annotated[list[_Item], worded("must be a list of items", shallow=True)] = required()

    @field_validator("items")
    @classmethod
    def _distinct(cls, items: list[_Item]) -> list[_Item]:
        for i, item in enumerate(items[1:], start=1):
            if item.count == items[0].count:
                raise at((i, "count"), f"same as the first item's ({item.count})")
        return items


def problem_of(doc: Any) -> str:
    with pytest.raises(FileProblem) as found:
        validated(_Doc, doc, "doc.yaml", FileProblem)
    assert "\n" not in str(found.value)
    return str(found.value)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (None, "doc.yaml: expected a mapping"),
        ({"items": [{"count": 1}], "colour": "red"}, "doc.yaml: colour: unknown key (allowed: items)"),
        ({}, "doc.yaml: items: must be a list of items"),  # a required key left out: the field's own words
        ({"items": "x"}, "doc.yaml: items: must be a list of items"),
        ({"items": [5]}, "doc.yaml: items[0]: expected a mapping"),  # shallow: an item keeps its words
        ({"items": [{"count": 1, "weight": 2}]}, "doc.yaml: items[0].weight: unknown key (allowed: count, size)"),
        ({"items": [{"count": "x" * 100}]}, f"doc.yaml: items[0].count: must be a whole number, got '{'x' * 59}…"),
        ({"items": [{"count": 0}]}, "doc.yaml: items[0].count: must be a whole number, got 0"),
        ({"items": [{"count": 1, "size": -1}]}, "doc.yaml: items[0].size: must be 0 or more"),
        ({"items": [{"count": 1, "size": "x"}]}, "doc.yaml: items[0].size: must be a valid integer"),
        ({"items": [{"count": 2}, {"count": 2}]}, "doc.yaml: items[1].count: same as the first item's (2)"),
        ({"items": [{"count": 0}, {"count": 1, "size": -1}]}, "doc.yaml: items[0].count: must be a whole number, got 0"),
    ],
)  # fmt: skip
def test_a_problem_is_one_line_naming_the_key_path_in_the_files_words(doc: Any, message: str) -> None:
    assert problem_of(doc) == message


def test_a_good_document_is_a_frozen_model() -> None:
    doc = validated(_Doc, {"items": [{"count": 1}, {"count": 2, "size": 3}]}, "doc.yaml", FileProblem)
    assert [(i.count, i.size) for i in doc.items] == [(1, 0), (2, 3)]
    with pytest.raises(ValueError, match="frozen"):
        doc.items[0].count = 5


def test_the_key_path_reads_as_the_file_does() -> None:
    assert key_path(("policies", 0, "levels", 1, "offset")) == "policies[0].levels[1].offset"
    assert key_path(("boe_base_rate", "2026-02-30", "[key]")) == "boe_base_rate.2026-02-30"
    assert key_path(()) == ""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


LEVEL = "{name: a, offset: 1, channel: email, template: t}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 1\n", "policies: must be a non-empty list of policies"),
        ("version: 1\npolicies:\n  - {levels: [" + LEVEL + "]}\n", "policies[0].name: must be non-empty text"),
        ("version: 1\npolicies:\n  - {name: ' ', levels: [" + LEVEL + "]}\n", "policies[0].name: must be non-empty text"),
        ("version: 1\npolicies:\n  - {name: p}\n", "policies[0].levels: must be a non-empty list of levels"),
        (
            "version: 1\npolicies:\n  - {name: p, levels: [{name: a, channel: email, template: t}]}\n",
            "policies[0].levels[0].offset: must be a whole number of days, got None",
        ),
        (
            "version: 1\npolicies:\n  - {name: p, levels: [{name: a, offset: true, channel: email, template: t}]}\n",
            "policies[0].levels[0].offset: must be a whole number of days, got True",
        ),
        (
            "version: 1\npolicies:\n  - {name: p, levels: [{name: a, offset: 1, channel: email, template: t, min_amount: -1}]}\n",
            "policies[0].levels[0].min_amount: must be a non-negative amount, got -1",
        ),
        (
            "version: 1\npolicies:\n  - {name: p, days: weekly, levels: [" + LEVEL + "]}\n",
            "policies[0].days: must be calendar or business, got 'weekly'",
        ),
        (
            "version: 1\npolicies:\n  - {name: p, when: {segments: Retail}, levels: [" + LEVEL + "]}\n",
            "policies[0].when.segments: must be a list of names",
        ),
        (
            "version: 1\npolicies:\n  - {name: p, old_debt: {weeks: 2}, levels: [" + LEVEL + "]}\n",
            "policies[0].old_debt.weeks: unknown key (allowed: days, template)",
        ),
        (
            "version: 1\npolicies:\n  - {name: p, levels: [{name: a, offset: 1, channel: email, template: t, interest: yes please}]}\n",
            "policies[0].levels[0].interest: must be true or false",
        ),
    ],
)  # fmt: skip
def test_policy_files_keep_their_words(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, "policy.yaml", text)
    with pytest.raises(PolicyFileError) as found:
        load_policies(path)
    assert str(found.value) == f"{path}: {message}"


def test_a_policys_version_is_the_digest_of_its_wording_as_before(tmp_path: Path) -> None:
    """Reminders already planned carry the version in their keys: reading the file anew must not change it."""
    path = write(tmp_path, "own.yaml", "version: 1\npolicies:\n  - {name: p, levels: [" + LEVEL + "]}\n")
    assert load_policies(path).policies[0].version == "eddc3636416d"  # as the hand-written checks made it
    cut = write(
        tmp_path,
        "cut.yaml",
        "version: 1\npolicies:\n  - {name: p, backlog_days: 9, levels: [" + LEVEL + "]}\n",
    )
    assert load_policies(cut).policies[0].version == "eddc3636416d"  # the cutoff is not wording


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 1\n", "rules: must be a list of rules"),
        ("[]\n", "version: unsupported or missing (supported: 1)"),
        ("version: 1\nrules:\n  - 5\n", "rules[0].when: must be one of over_limit, overdue, dunning_level, rating"),
        (
            "version: 1\nrules:\n  - {when: over_limit, days: 3}\n",
            "rules[0].days: unknown for over_limit (allowed: tolerance_percent, min_amount)",
        ),
        ("version: 1\nrules:\n  - {when: overdue, days: 1.5}\n", "rules[0].days: must be a whole number, at least 0, got 1.5"),
        ("version: 1\nrules:\n  - {when: over_limit, tolerance_percent: -1}\n",
         "rules[0].tolerance_percent: must be a number, at least 0, got -1"),
        ("version: 1\nrules: []\nrating:\n  a_min_on_time_percent: lots\n", "rating.a_min_on_time_percent: must be a number, got 'lots'"),
        ("version: 1\nrules: []\nrating:\n  a_max_days: 20\n", "rating.b_max_days: must be at least a_max_days (20), got 10"),
    ],
)  # fmt: skip
def test_credit_files_keep_their_words(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, "credit.yaml", text)
    with pytest.raises(CreditFileError) as found:
        load_rules(path)
    assert str(found.value) == f"{path}: {message}"


def test_a_credit_file_reads_as_before(tmp_path: Path) -> None:
    path = write(
        tmp_path, "credit.yaml",
        "version: 1\nrules:\n  - {when: over_limit, tolerance_percent: 2.5}\n  - {when: overdue, days: 30}\n"
        "  - {when: dunning_level, at_least: 3, min_amount: '100.50'}\n  - {when: rating, in: [D, E]}\n",
    )  # fmt: skip
    found = [
        (r.when, r.tolerance_percent, r.days, r.at_least, r.ratings, r.min_amount) for r in load_rules(path)
    ]
    assert found == [
        ("over_limit", Decimal("2.5"), 0, 0, (), Decimal(0)),
        ("overdue", Decimal(0), 30, 0, (), Decimal(0)),
        ("dunning_level", Decimal(0), 0, 3, (), Decimal("100.50")),
        ("rating", Decimal(0), 0, 0, ("D", "E"), Decimal(0)),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[]\n", "expected a mapping of series"),
        ("boe_bank_rate: {}\n", "boe_bank_rate: unknown series (known: boe_base_rate, ecb_mro_rate)"),
        ("boe_base_rate: [4]\n", "boe_base_rate: expected date: rate entries"),
        ("boe_base_rate:\n  soon: '4.00'\n", "boe_base_rate.soon: not a date (YYYY-MM-DD)"),
        ("boe_base_rate:\n  2027-05-01: .nan\n", "boe_base_rate.2027-05-01: not a rate: nan"),
        ("checked: [boe_base_rate]\n", "checked: expected series: date entries"),
        ("checked:\n  boe_bank_rate: 2027-01-01\n", "checked.boe_bank_rate: unknown series"),
        ("checked:\n  boe_base_rate: soon\n", "checked.boe_base_rate: not a date (YYYY-MM-DD): 'soon'"),
    ],
)
def test_rates_files_keep_their_words(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, "reference_rates.yaml", text)
    with pytest.raises(RatesFileError) as found:
        load_rates(path)
    assert str(found.value) == f"{path}: {message}"


def test_a_rates_file_reads_as_before(tmp_path: Path) -> None:
    path = write(
        tmp_path, "reference_rates.yaml",
        "checked:\n  ecb_mro_rate: 2031-01-01\necb_mro_rate:\n  2030-06-01: 2.5\n  2030-09-01: '-0.25'\n",
    )  # fmt: skip
    table = load_rates(path)
    assert table.series["ecb_mro_rate"][-2:] == (
        (date(2030, 6, 1), Decimal("2.5")),
        (date(2030, 9, 1), Decimal("-0.25")),
    )
    assert table.checked["ecb_mro_rate"] == date(2031, 1, 1)
    assert table.series["boe_base_rate"] == load_rates().series["boe_base_rate"]  # the shipped entries stand
