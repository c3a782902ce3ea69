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
