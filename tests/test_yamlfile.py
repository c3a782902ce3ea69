"""Settings files are parsed once per content, and each caller gets a copy of its own."""

from __future__ import annotations

import os
from pathlib import Path

from connector import mail
from connector.mail import SAMPLE
from connector.yamlfile import read_yaml


def test_an_edited_file_is_read_again_and_copies_are_independent(tmp_path: Path):
    path = tmp_path / "policy.yaml"
    path.write_text("levels: [1, 2]\n")
    first = read_yaml(path, "policy.yaml")
    first["levels"].append(3)  # a caller changing what it got
    assert read_yaml(path, "policy.yaml") == {"levels": [1, 2]}
    path.write_text("levels: [1]\n")  # same file, new content
    assert read_yaml(path, "policy.yaml") == {"levels": [1]}


def test_a_tenants_edited_template_is_used_at_once(tmp_path: Path):
    folder = tmp_path / "templates"
    folder.mkdir()
    for part, text in (("subject.txt", "first {{ firm }}"), ("txt", "body"), ("html", "<p>body</p>")):
        (folder / f"mine.{part}").write_text(text)
    env = mail.environment(folder)
    assert mail.render(env, "mine", SAMPLE).subject == "first Sample Firm Ltd"
    subject = folder / "mine.subject.txt"
    subject.write_text("second {{ firm }}")
    stat = subject.stat()
    os.utime(
        subject, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000)
    )  # a later edit, whatever the clock
    assert mail.environment(folder) is env  # one environment per folder, kept
    assert mail.render(env, "mine", SAMPLE).subject == "second Sample Firm Ltd"


def test_a_date_that_does_not_exist_or_a_file_not_in_utf8_is_one_line_naming_file_and_line(tmp_path: Path):
    import pytest

    from connector.yamlfile import FileProblem

    bad_date = tmp_path / "reference_rates.yaml"
    bad_date.write_text("version: 1\nboe_base_rate:\n  2026-02-30: '4.00'\n")
    with pytest.raises(FileProblem) as found:
        read_yaml(bad_date, "reference_rates.yaml")
    assert str(found.value) == (
        "reference_rates.yaml: line 3: not a real date: 2026-02-30 (day is out of range for month)"
    )
    latin1 = tmp_path / "policy.yaml"
    latin1.write_bytes("name: Caf\xe9\n".encode("latin-1"))
    with pytest.raises(FileProblem) as found:
        read_yaml(latin1, "policy.yaml")
    assert str(found.value) == "policy.yaml: not UTF-8 text (byte 9)"
