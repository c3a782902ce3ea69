"""No test takes its calendar from the machine: the guard behind tests/clock.py.

A firm generated without `today` ends the day before whatever day the suite runs, and `date.today()` moves
with it; either makes a test's outcome depend on that day (one failed from 2026-12-01 that way). Fixtures
take their date from tests/clock.py, or from the clock of the sandbox they feed.
"""

from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path

import pytest

from tests import clock

TESTS = Path(__file__).parent


def calendar_reads(path: Path) -> list[str]:
    """`generate(...)` calls without `today`, and `date.today()` / `datetime.today()`, as "line: what"."""
    tree = ast.parse(path.read_text(), str(path))
    generators = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "adapters.sandbox.generator"
        for alias in node.names
        if alias.name == "generate"
    }
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in generators:
            if len(node.args) < 3 and not any(k.arg == "today" for k in node.keywords):
                found.append(f"{node.lineno}: generate() without today=")
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.attr == "today":
            found += (
                [f"{node.lineno}: {func.value.id}.today()"] if func.value.id in ("date", "datetime") else []
            )
    return found


def test_no_test_generates_a_firm_or_reads_a_date_off_the_machines_calendar():
    found = [
        f"{p.relative_to(TESTS.parent)}:{line}"
        for p in sorted(TESTS.rglob("*.py"))
        for line in calendar_reads(p)
    ]
    assert found == [], "take the date from tests/clock.py (or the sandbox clock in use):\n" + "\n".join(
        found
    )


def test_the_guard_sees_both_kinds(tmp_path: Path):
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from adapters.sandbox.generator import generate as make\nfrom datetime import date\n"
        "firm = make(1, 'demo')\nday = date.today()\nok = make(1, 'demo', today=day)\n"
    )
    assert calendar_reads(probe) == ["3: generate() without today=", "4: date.today()"]


def test_the_tests_today_is_the_base_moved_by_the_shift_variable():
    assert clock.shift_days({}) == 0
    assert clock.shift_days({clock.SHIFT_VARIABLE: " -30 "}) == -30
    assert timedelta(days=clock.shift_days()) == clock.TODAY - clock.BASE
    assert clock.NOW.date() == clock.TODAY and clock.at(2, days=1).date() == clock.TODAY + timedelta(days=1)
    with pytest.raises(
        ValueError, match=r"^CCM_TEST_DATE_SHIFT_DAYS='a year': expected a whole number of days"
    ):
        clock.shift_days({clock.SHIFT_VARIABLE: "a year"})
