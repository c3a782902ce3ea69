"""Reminder messages: Jinja2 rendering against a typed view, and SMTP delivery.

Templates live in connector/templates/ (`<name>.subject.txt`, `<name>.txt`, `<name>.html`); a tenant overrides
any of them by putting a file of the same name in `<data_dir>/tenants/<id>/templates/`. HTML is autoescaped;
an undefined name is an error, never an empty string. `check_templates` renders every template a policy uses
against a sample before anything is sent, so a broken tenant template stops that tenant's run up front.

A firm writes its own templates, so they are rendered in Jinja2's immutable sandbox: no attribute starting
with an underscore, no str.format tricks, no mutating methods. A template that tries is a TemplateProblem like
any other broken template. The sandbox does not bound time or memory (`'x' * 10**10`).

SMTP credentials never cross the wire unencrypted: with `security = "none"` ccm refuses to log in unless
`allow_plaintext_auth` says so, and with `starttls` a server that does not offer STARTTLS is refused, never
spoken to in plain text.
"""

from __future__ import annotations

import contextlib
import functools
import smtplib
import ssl
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from email.message import EmailMessage
from email.utils import formataddr, formatdate
from pathlib import Path
from types import TracebackType

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
    TemplateSyntaxError,
    select_autoescape,
)
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from adapters.base import Fatal
from connector.config import SmtpSettings
from connector.redact import register_secret


class TemplateProblem(ValueError):
    """A template cannot be rendered; the message is one line naming the template and the problem."""


class Transient(Exception):  # named for what the caller does: try again later
    """Nothing was sent (the server was unreachable or said 'try later'): the action can be retried."""


class Refused(Exception):
    """The server refused the message for good (bad address, rejected content): retrying will not help."""


@dataclass(frozen=True, slots=True)
class LineView:
    number: str
    due_date: date
    days_overdue: int
    amount: str  # formatted with its currency, e.g. "1,250.00 GBP"
    level_name: str
    pay_url: str | None = None


@dataclass(frozen=True, slots=True)
class ReminderView:
    """Everything a reminder template may use."""

    firm: str
    customer: str
    level: int
    level_name: str
    lines: tuple[LineView, ...]
    totals: tuple[str, ...]
    today: date
    reference: str
    contact_email: str | None = None
    interest_line: str | None = None


@dataclass(frozen=True, slots=True)
class NoticeView:
    """What a connection-health notice to the firm may use (template `notice`)."""

    firm: str
    ledger: str
    kind: str
    message: str
    reference: str


View = ReminderView | NoticeView


@dataclass(frozen=True, slots=True)
class Rendered:
    subject: str
    text: str
    html: str


SAMPLE = ReminderView(
    firm="Sample Firm Ltd", customer="Sample Customer", level=2, level_name="first reminder",
    lines=(LineView("INV-0001", date(2026, 1, 1), 14, "120.00 GBP", "first reminder", "https://example.com/pay"),),
    totals=("120.00 GBP",), today=date(2026, 1, 15), reference="dun-sample", contact_email="ap@example.com",
    interest_line="Statutory interest of 1.23 GBP may be added.",
)  # fmt: skip


# Every environment a firm can supply templates to is this sandbox; the type says so to every caller.
Templates = ImmutableSandboxedEnvironment


@functools.lru_cache(maxsize=256)
def environment(tenant_templates: Path | None = None) -> Templates:
    """A sandboxed Jinja2 environment reading the tenant's templates first, then the shipped ones.

    One per templates folder, kept: Jinja2 compiles each template once and notices edited files itself.
    """
    loaders: list[BaseLoader] = (
        [FileSystemLoader(str(tenant_templates))] if tenant_templates is not None else []
    )
    loaders.append(PackageLoader("connector", "templates"))
    env = ImmutableSandboxedEnvironment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    del env.globals["lipsum"]  # no place in a reminder, and the best-known way out of a plain Jinja2
    return env


def _failing_template(tb: TracebackType | None, default: str) -> str:
    """The file name of the innermost template in a rendering traceback (an included one, say)."""
    found = default
    while tb is not None:
        if "__jinja_exception__" in tb.tb_frame.f_globals:  # Jinja2 marks the frames it maps to templates
            found = Path(tb.tb_frame.f_code.co_filename).name
        tb = tb.tb_next
    return found


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _render(env: Templates, name: str, view: View) -> str:
    try:
        return env.get_template(name).render(**{f: getattr(view, f) for f in view.__slots__})
    except TemplateSyntaxError as exc:
        raise TemplateProblem(
            f"template {exc.name or name}: line {exc.lineno}: {_one_line(exc.message or '')}"
        ) from None
    except TemplateNotFound as exc:
        raise TemplateProblem(f"template {name}: not found ({exc.name})") from None
    except SecurityError as exc:
        where = _failing_template(exc.__traceback__, name)
        raise TemplateProblem(f"template {where}: unsafe template: {_one_line(str(exc))}") from None
    except TemplateError as exc:
        raise TemplateProblem(f"template {name}: {_one_line(exc.message or '')}") from None
    except Exception as exc:  # 1/0, int('x') in a firm's template: its problem, never a crash of the run
        where = _failing_template(exc.__traceback__, name)
        raise TemplateProblem(f"template {where}: {type(exc).__name__}: {_one_line(str(exc))}") from None


def render(env: Templates, template: str, view: View) -> Rendered:
    """Subject, plain text and HTML of one message."""
    subject = " ".join(_render(env, f"{template}.subject.txt", view).split())
    return Rendered(subject, _render(env, f"{template}.txt", view), _render(env, f"{template}.html", view))


def check_templates(env: Templates, templates: Iterable[str]) -> None:
    """Render every named template against a sample; raise TemplateProblem on the first that fails."""
    for template in sorted(set(templates)):
        render(env, template, SAMPLE)


def build_message(
    rendered: Rendered, to: str, key: str, smtp: SmtpSettings, when: float | None = None
) -> EmailMessage:
    """An e-mail whose Message-ID is derived from the action key, so a duplicate is recognisable anywhere."""
    message = EmailMessage()
    domain = smtp.from_address.rpartition("@")[2] or "localhost"
    message["Message-ID"] = f"<{key}@{domain}>"
    message["From"] = formataddr((smtp.from_name or "", smtp.from_address))
    message["To"] = to
    if smtp.reply_to:
        message["Reply-To"] = smtp.reply_to
    message["Subject"] = rendered.subject
    message["Date"] = formatdate(when, localtime=False)
    message["X-CCM-Action"] = key
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message


PLAINTEXT_AUTH = (
    'smtp.security = "none" would send the SMTP password unencrypted; use starttls or tls, '
    "or set smtp.allow_plaintext_auth = true"
)


def check_smtp(smtp: SmtpSettings) -> None:
    """Refuse settings that would send the SMTP password in plain text (call it at start, before any work).

    Raises:
        Fatal: the firm's run stops with a one-line reason naming the settings; nothing was sent.
    """
    if smtp.security == "none" and smtp.username and smtp.password and not smtp.allow_plaintext_auth:
        raise Fatal(PLAINTEXT_AUTH)


def _connect(smtp: SmtpSettings) -> smtplib.SMTP:
    check_smtp(smtp)  # before the socket opens: a refused setting never reaches the server
    if smtp.password:
        register_secret(smtp.password)
    try:
        if smtp.security == "tls":
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                smtp.host, smtp.port, timeout=smtp.timeout_seconds, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout_seconds)
    except (OSError, smtplib.SMTPException) as exc:
        raise Transient(f"SMTP server {smtp.host}:{smtp.port} unreachable: {type(exc).__name__}") from None
    try:
        if smtp.security == "starttls":
            _starttls(client, smtp)
        if smtp.username and smtp.password:
            client.login(smtp.username, smtp.password)
    except smtplib.SMTPAuthenticationError as exc:
        client.close()
        raise Refused(f"SMTP login refused ({exc.smtp_code})") from None
    except (OSError, smtplib.SMTPException) as exc:
        client.close()
        raise Transient(f"SMTP server {smtp.host}:{smtp.port} unreachable: {type(exc).__name__}") from None
    return client


def _starttls(client: smtplib.SMTP, smtp: SmtpSettings) -> None:
    """Upgrade to TLS, or refuse: a server (or a man in the middle) not offering STARTTLS gets nothing."""
    client.ehlo_or_helo_if_needed()
    if not client.has_extn("starttls"):
        client.close()
        raise Fatal(
            f'SMTP server {smtp.host}:{smtp.port} does not offer STARTTLS (smtp.security = "starttls"); '
            "nothing was sent"
        )
    client.starttls(context=ssl.create_default_context())


def _send(client: smtplib.SMTP, message: EmailMessage, recipients: Sequence[str] | None) -> str:
    try:
        client.send_message(message, to_addrs=list(recipients) if recipients else None)
    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused) as exc:
        raise Refused(f"SMTP refused the message: {exc}") from None
    except smtplib.SMTPDataError as exc:
        if 400 <= exc.smtp_code < 500:
            raise Transient(f"SMTP said try later ({exc.smtp_code})") from None
        raise Refused(f"SMTP refused the message ({exc.smtp_code})") from None
    return str(message["Message-ID"])


def deliver(smtp: SmtpSettings, message: EmailMessage, recipients: Sequence[str] | None = None) -> str:
    """Send one message on a connection of its own; returns its Message-ID.

    Raises:
        Transient: nothing went out (connection, login or a 4xx answer before the data was accepted).
        Refused: the server refused for good (5xx).
        smtplib.SMTPServerDisconnected / OSError during the data phase propagate: the outcome is unknown.
    """
    with _connect(smtp) as client:
        return _send(client, message, recipients)


class Session:
    """One SMTP connection for many messages (a run's reminders), re-opened when the server dropped it.

    Before each message the connection is checked with NOOP, so a connection the server closed while idle
    is replaced before anything is sent; a failure once the message is under way still propagates as an
    unknown outcome, exactly as `deliver` does.
    """

    def __init__(self, smtp: SmtpSettings) -> None:
        self.smtp = smtp
        self._client: smtplib.SMTP | None = None

    def send(self, message: EmailMessage, recipients: Sequence[str] | None = None) -> str:
        if self._client is not None:
            try:
                alive = self._client.noop()[0] == 250
            except (OSError, smtplib.SMTPException):
                alive = False
            if not alive:
                self.close()
        if self._client is None:
            self._client = _connect(self.smtp)
        try:
            return _send(self._client, message, recipients)
        except (Refused, Transient):
            raise
        except BaseException:
            self._client = None  # a connection that failed mid-message is not reused
            raise

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self._client.quit()
            self._client = None
