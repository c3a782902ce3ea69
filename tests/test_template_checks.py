"""check_templates renders a template once per process while its files stay as they are, and afresh once a
firm adds, edits or removes one of its template files."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector import mail
from connector.mail import TemplateProblem, check_templates, environment

POLICY_TEMPLATES = ["courtesy", "reminder"]


@pytest.fixture
def rendered(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The templates check_templates actually renders (spying on mail.render, which still runs)."""
    names: list[str] = []
    real = mail.render

    def spy(env: mail.Templates, template: str, view: mail.View) -> mail.Rendered:
        names.append(template)
        return real(env, template, view)

    monkeypatch.setattr(mail, "render", spy)
    return names


def test_unchanged_templates_are_rendered_once(tmp_path: Path, rendered: list[str]):
    (tmp_path / "reminder.subject.txt").write_text("Overdue: {{ customer }}")
    env = environment(tmp_path)
    check_templates(env, POLICY_TEMPLATES)
    check_templates(env, [*POLICY_TEMPLATES, "final"])
    check_templates(env, ["final", "reminder"])
    assert rendered == ["courtesy", "reminder", "final"]


def test_an_edited_firm_template_is_checked_again(tmp_path: Path, rendered: list[str]):
    subject = tmp_path / "reminder.subject.txt"
    subject.write_text("Overdue: {{ customer }}")
    env = environment(tmp_path)
    check_templates(env, POLICY_TEMPLATES)
    subject.write_text("Overdue: {{ customer.nope() }} {% if %}")
    with pytest.raises(TemplateProblem, match=r"^template reminder\.subject\.txt: line 1: "):
        check_templates(env, POLICY_TEMPLATES)
    with pytest.raises(TemplateProblem):  # a failed check is never remembered as passed
        check_templates(env, POLICY_TEMPLATES)
    subject.write_text("Still overdue: {{ customer }}")
    check_templates(env, POLICY_TEMPLATES)
    # courtesy passed with these very files on the second check: the third renders only reminder
    assert rendered == ["courtesy", "reminder", "courtesy", "reminder", "reminder", "courtesy", "reminder"]
    assert mail.render(env, "reminder", mail.SAMPLE).subject == "Still overdue: Sample Customer"


def test_a_firm_template_edited_then_removed_is_checked_each_time(tmp_path: Path, rendered: list[str]):
    courtesy = tmp_path / "courtesy.txt"
    courtesy.write_text("Dear {{ customer }},")
    env = environment(tmp_path)
    check_templates(env, POLICY_TEMPLATES)
    courtesy.write_text("Dear {{ undefined_name }},")
    with pytest.raises(TemplateProblem, match=r"^template courtesy\.txt: 'undefined_name' is undefined"):
        check_templates(env, POLICY_TEMPLATES)
    courtesy.unlink()  # the shipped courtesy.txt again
    check_templates(env, POLICY_TEMPLATES)
    assert rendered == ["courtesy", "reminder", "courtesy", "courtesy", "reminder"]
    assert "Sample Customer" in mail.render(env, "courtesy", mail.SAMPLE).text


def test_a_firm_override_added_while_running_is_what_renders_next(tmp_path: Path):
    """A long-running server loaded the shipped subject; the firm then adds its own: the next check drops
    what Jinja compiled, so the firm's file renders, not the shipped one it would otherwise keep serving."""
    env = environment(tmp_path)
    check_templates(env, POLICY_TEMPLATES)
    shipped = mail.render(env, "reminder", mail.SAMPLE).subject
    (tmp_path / "reminder.subject.txt").write_text("From the firm: {{ customer }}")
    check_templates(env, POLICY_TEMPLATES)
    assert mail.render(env, "reminder", mail.SAMPLE).subject == "From the firm: Sample Customer" != shipped
    (tmp_path / "reminder.subject.txt").unlink()
    check_templates(env, POLICY_TEMPLATES)
    assert mail.render(env, "reminder", mail.SAMPLE).subject == shipped
