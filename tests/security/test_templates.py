"""A firm's own templates cannot run code, read secrets or change objects: they render in Jinja2's sandbox.

Each escape is written into a tenant's template file on disk, as a firm would, and rendered the way ccm does:
`Context.load` (which builds the tenant's environment) and `check_templates` before a run, `render` when
sending. Every one must be a one-line TemplateProblem naming the file, with no side effect, and a firm's
ordinary template must still render.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from connector import mail
from connector.config import Settings
from connector.mail import SAMPLE, NoticeView, TemplateProblem
from connector.model import Tenant
from connector.run.plan import TEMPLATES_DIR, Context
from tests.test_cli import ccm

ACME = Tenant("acme", "Acme Ltd", "scripted", "GBP", "Europe/London", "GB")
BETA = Tenant("beta", "Beta Ltd", "scripted", "GBP", "Europe/London", "GB")
SECRET = "hunter2-not-for-templates"
# An ordinary firm template: loops, namespace, joiner, filters and a safe str.format all still work.
ORDINARY = (
    "{% set ns = namespace(n=0) %}{% for line in lines %}{% set ns.n = ns.n + 1 %}{% endfor %}"
    "{% set sep = joiner(' + ') %}{{ '{} owes'.format(customer) }} {% for t in totals %}{{ sep() }}{{ t }}"
    "{% endfor %} on {{ ns.n }} invoice(s): {{ lines | map(attribute='number') | join(', ') }}"
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    """What a payload tries to create through `os`: it must never exist."""
    return tmp_path / "pwned"


def firm_template(settings: Settings, tenant_id: str, name: str, text: str) -> None:
    folder = settings.tenant_dir(tenant_id) / TEMPLATES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)


def refused(settings: Settings, file: str, template: str = "reminder") -> str:
    """The tenant's run stops up front, sending renders nothing, and another firm's template still works."""
    ctx = Context.load(settings, ACME)
    with pytest.raises(TemplateProblem) as before_run:
        ctx.check_templates()
    with pytest.raises(TemplateProblem) as when_sending:
        mail.render(ctx.templates, template, SAMPLE)
    message = str(before_run.value)
    assert message.startswith(f"template {file}: "), message
    assert "\n" not in message
    assert str(when_sending.value) == message
    assert SECRET not in message
    firm_template(settings, "beta", "reminder.subject.txt", ORDINARY)
    other = Context.load(settings, BETA)
    other.check_templates()
    subject = mail.render(other.templates, "reminder", SAMPLE).subject
    assert subject == "Sample Customer owes 120.00 GBP on 1 invoice(s): INV-0001"
    return message


def test_walking_subclasses_from_a_string_cannot_reach_os(settings, marker):
    firm_template(settings, "acme", "reminder.txt", (
        "Dear {{ customer }},{% for c in ''.__class__.__mro__[1].__subclasses__() "
        "if c.__name__ == '_wrap_close' %}{{ c.__init__.__globals__['mkdir']('" + str(marker) + "') }}"
        "{% endfor %}"
    ))  # fmt: skip
    message = refused(settings, "reminder.txt")
    assert "unsafe template: access to attribute '__class__' of 'str' object is unsafe" in message
    assert not marker.exists()


@pytest.mark.parametrize("function", ["cycler.__init__", "joiner.__init__", "namespace.__init__"])
def test_a_global_functions_globals_cannot_reach_os(settings, marker, function):
    firm_template(settings, "acme", "reminder.subject.txt",
                  f"{{{{ {function}.__globals__['os'].mkdir('{marker}') }}}}")  # fmt: skip
    message = refused(settings, "reminder.subject.txt")
    assert "unsafe template: access to attribute '__init__' of 'type' object is unsafe" in message
    assert not marker.exists()


def test_lipsum_is_gone_so_its_globals_are_too(settings, marker):
    firm_template(
        settings, "acme", "reminder.subject.txt", f"{{{{ lipsum.__globals__['os'].mkdir('{marker}') }}}}"
    )
    message = refused(settings, "reminder.subject.txt")
    assert "'lipsum' is undefined" in message
    assert not marker.exists()


def test_self_cannot_import_os_even_from_an_included_template(settings, marker):
    # _lines.txt is included by every shipped text template: the message names the file that misbehaved.
    firm_template(settings, "acme", "_lines.txt", (
        "{{ self.__init__.__globals__['__builtins__']['__import__']('os').mkdir('" + str(marker) + "') }}"
    ))  # fmt: skip
    message = refused(settings, "_lines.txt")
    assert (
        "unsafe template: access to attribute '__init__' of 'TemplateReference' object is unsafe" in message
    )
    assert not marker.exists()


def test_the_attr_filter_is_held_to_the_same_rules(settings, marker):
    firm_template(settings, "acme", "reminder.html",
                  f"{{{{ (cycler | attr('__init__'))['__globals__']['os'].mkdir('{marker}') }}}}")  # fmt: skip
    message = refused(settings, "reminder.html")
    assert "unsafe template: access to attribute '__init__' of 'type' object is unsafe" in message
    assert not marker.exists()


@pytest.mark.parametrize(
    "payload",
    [
        "{{ '{0.__init__.__globals__[os].environ[CCM_TEMPLATE_SECRET]}'.format(cycler) }}",
        "{{ '{0.__class__.__mro__}'.format(customer) }}",
        "{{ '%s' | format(cycler.__init__.__globals__.os.environ['CCM_TEMPLATE_SECRET']) }}",
        "{{ '{x.__init__.__globals__[os].environ[CCM_TEMPLATE_SECRET]}'.format_map({'x': joiner}) }}",
    ],
    ids=["str.format", "str.format-mro", "format-filter", "str.format_map"],
)
def test_format_strings_cannot_read_dunders(settings, monkeypatch, payload):
    monkeypatch.setenv("CCM_TEMPLATE_SECRET", SECRET)  # what the old templates could print into an e-mail
    firm_template(settings, "acme", "reminder.subject.txt", payload)
    message = refused(settings, "reminder.subject.txt")
    assert "unsafe template: access to attribute '__" in message


@pytest.mark.parametrize(
    ("payload", "method"),
    [
        ("{% set seen = [firm] %}{{ seen.append(customer) }}{{ seen | join(', ') }}", "'append' of 'list'"),
        ("{% set fields = {} %}{{ fields.update(firm=customer) }}{{ fields }}", "'update' of 'dict'"),
        ("{% set fields = {'a': firm} %}{{ fields.pop('a') }}", "'pop' of 'dict'"),
    ],
    ids=["list.append", "dict.update", "dict.pop"],
)
def test_mutating_methods_are_refused(settings, payload, method):
    firm_template(settings, "acme", "reminder.txt", payload)
    message = refused(settings, "reminder.txt")
    assert f"unsafe template: access to attribute {method} object is unsafe" in message


def test_a_python_error_in_a_firm_template_is_a_template_problem_not_a_crash(settings):
    firm_template(settings, "acme", "reminder.txt", "{{ lines | length / 0 }}")
    message = refused(settings, "reminder.txt")
    assert message == "template reminder.txt: ZeroDivisionError: division by zero"


def test_the_notice_template_is_sandboxed_too(settings, marker):
    firm_template(
        settings, "acme", "notice.txt", f"{{{{ cycler.__init__.__globals__.os.mkdir('{marker}') }}}}"
    )
    ctx = Context.load(settings, ACME)
    with pytest.raises(TemplateProblem) as exc:
        mail.render(ctx.templates, "notice", NoticeView("Acme Ltd", "xero", "reconnect", "Reconnect", "n-1"))
    assert str(exc.value).startswith("template notice.txt: unsafe template: ")
    assert not marker.exists()


def test_every_environment_a_firm_writes_for_is_the_immutable_sandbox(settings):
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    firm_template(settings, "acme", "reminder.subject.txt", ORDINARY)
    assert isinstance(Context.load(settings, ACME).templates, ImmutableSandboxedEnvironment)
    assert isinstance(mail.environment(), ImmutableSandboxedEnvironment)
    assert "lipsum" not in mail.environment().globals


# ---- end to end: `ccm run --dry-run` for a firm whose template carries a payload


def test_a_dry_run_stops_a_firm_whose_template_tries_a_shell_command(capsys, home, connected, tmp_path):
    marker = tmp_path / "pwned-by-shell"
    folder = home / "tenants" / "acme" / TEMPLATES_DIR
    folder.mkdir(parents=True)
    (folder / "reminder.subject.txt").write_text(
        "{{ cycler.__init__.__globals__.os.popen('touch " + str(marker) + "').read() }}"
    )
    code, _, err = ccm(capsys, "run", "--dry-run", "--at", "2026-11-24T10:00:00Z")
    assert code in (1, 2)
    [line] = err.strip().splitlines()  # one line (a progress bar on a pipe leaves a blank one before it)
    assert line.startswith(
        "ccm: 1 of 1 tenant(s) stopped: acme: template reminder.subject.txt: unsafe template:"
    ), line
    assert not marker.exists()
