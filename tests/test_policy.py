"""Dunning policies: the shipped defaults, choosing a customer's policy, and one-line errors for bad files."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from connector.rules.policy import PolicyFileError, load_policies, parse_policies


def test_the_shipped_policies_load_and_choose_by_risk_segment_and_override():
    policies = load_policies()
    assert policies.default == "standard"
    assert policies.choose(["Retail"], "low").name == "standard"
    assert policies.choose(["Retail"], "high").name == "high-risk"
    assert policies.choose(["Wholesale"], "low").name == "key-accounts"
    assert policies.choose(["Wholesale"], "medium").name == "standard"
    assert policies.choose(["Retail"], "high", override="key-accounts").name == "key-accounts"
    assert policies.choose([], None, override="no-such-policy").name == "standard"


def test_levels_are_numbered_in_order():
    standard = load_policies().choose([], "low")
    assert [(lv.number, lv.offset) for lv in standard.levels] == [(1, -3), (2, 3), (3, 14), (4, 30), (5, 45)]
    assert standard.levels[0].min_amount == Decimal(1)
    assert standard.level(6) is None


def test_a_tenant_file_replaces_the_shipped_one(tmp_path: Path):
    own = tmp_path / "policy.yaml"
    own.write_text(
        "version: 1\npolicies:\n  - name: gentle\n    levels:\n"
        "      - {name: nudge, offset: 10, channel: email, template: reminder}\n"
    )
    policies = load_policies(own)
    assert [p.name for p in policies.policies] == ["gentle"]
    assert policies.default == "gentle"
    assert load_policies(tmp_path / "absent.yaml").default == "standard"


def test_editing_a_policy_changes_its_version():
    def doc(offset: int) -> dict:
        return {"version": 1, "policies": [{"name": "p", "levels": [
            {"name": "a", "offset": offset, "channel": "email", "template": "t"}]}]}  # fmt: skip

    assert parse_policies(doc(3), "x").policies[0].version != parse_policies(doc(4), "x").policies[0].version
    assert parse_policies(doc(3), "x").policies[0].version == parse_policies(doc(3), "y").policies[0].version


LEVEL = "{name: a, offset: 1, channel: email, template: t}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("version: 2\npolicies: []\n", "version: unsupported policy version 2 (supported: 1)"),
        ("version: 1\npolicies: []\n", "policies: must be a non-empty list of policies"),
        (
            f"version: 1\npolicies:\n  - {{name: p, levels: [{LEVEL}, {{name: b, offset: 1, channel: email, template: t}}]}}\n",
            "policies[0].levels[1].offset: must be after the previous level's (1)",
        ),
        (
            "version: 1\npolicies:\n  - {name: p, levels: [{name: a, offset: x, channel: email, template: t}]}\n",
            "policies[0].levels[0].offset: must be a whole number of days, got 'x'",
        ),
        (
            "version: 1\npolicies:\n  - {name: p, levels: [{name: a, offset: 1, channel: fax, template: t}]}\n",
            "policies[0].levels[0].channel: must be one of email, ledger_email, call_task, got 'fax'",
        ),
        (
            f"version: 1\npolicies:\n  - {{name: p, when: {{risk: [scary]}}, levels: [{LEVEL}]}}\n",
            "policies[0].when.risk: 'scary' is not one of low, medium, high",
        ),
        (
            f"version: 1\npolicies:\n  - {{name: p, colour: red, levels: [{LEVEL}]}}\n",
            "policies[0].colour: unknown key",
        ),
        (
            f"version: 1\ndefault: q\npolicies:\n  - {{name: p, levels: [{LEVEL}]}}\n",
            "default: no policy named 'q' (have: p)",
        ),
        (
            f"version: 1\npolicies:\n  - {{name: p, levels: [{LEVEL}]}}\n  - {{name: p, levels: [{LEVEL}]}}\n",
            "policies[1].name: duplicate policy name 'p'",
        ),
        (
            "version: 1\npolicies:\n  - {name: p, levels: [{name: a, offset: 1, channel: email, template: t, min_amount: lots}]}\n",
            "policies[0].levels[0].min_amount: must be an amount, got 'lots'",
        ),
    ],
)
def test_bad_policy_files_fail_with_one_line(tmp_path: Path, text: str, message: str):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(PolicyFileError) as exc:
        load_policies(path)
    assert "\n" not in str(exc.value)
    assert str(exc.value).startswith(f"{path}: {message}")


def test_yaml_errors_name_the_line(tmp_path: Path):
    path = tmp_path / "policy.yaml"
    path.write_text("version: 1\npolicies: [\n")
    with pytest.raises(PolicyFileError, match=rf"^{path}: line \d+: "):
        load_policies(path)
