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
import os
import select
import smtplib
import ssl
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from weakref import WeakKeyDictionary

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

from connector import envelope
from connector.config import SmtpSettings
from connector.envelope import InvoiceCopy, PayDetails, SignOff
from connector.errors import CcmError, NeedsPerson, TryLater
from connector.ledger import Fatal
from connector.redact import register_secret
from connector.words import filters as words_filters


class TemplateProblem(NeedsPerson, ValueError):
    """A template cannot be rendered; the message is one line naming the template and the problem."""


class MailError(CcmError):
    """Nothing was sent, and the kind says what happens next (`kind_of` maps an SMTP reply to one)."""


class Transient(MailError, TryLater):  # named for what the caller does: try again later
    """Nothing was sent (a 4xx reply such as greylisting or 421, or the server could not be reached): the
    message may go later."""


class MessageRefused(MailError):
    """The server refused this message for good (a 5xx reply: bad address, rejected content): retrying will
    not help; other messages are not concerned."""


class LoginRefused(MailError, NeedsPerson):
    """The server refused ccm's login (535, or it takes no login at all): no message can go until the firm's
    SMTP settings are fixed; no message is at fault."""


def kind_of(code: int, *, login: bool = False) -> type[MailError]:
    """What an SMTP reply code means for the message (or, with `login`, for the session).

    4xx (421 closing, 450/451 greylisting, 452 full, 454 login unavailable for now): Transient.
    5xx to a login (535 bad credentials, 530/534 a login the server wants otherwise): LoginRefused.
    5xx otherwise (550 no such mailbox, 552/554 rejected): MessageRefused. Anything else a server should not
    answer here: Transient, as nothing was accepted.
    """
    if 500 <= code < 600:
        return LoginRefused if login else MessageRefused
    return Transient


@dataclass(frozen=True, slots=True)
class LineView:
    number: str
    due_date: date
    days_overdue: int
    amount: str  # the outstanding amount in the firm's locale, e.g. "£1,250.00"
    level_name: str
    pay_url: str | None = None
    # What the line says about itself (connector/words/variables.py documents every field)
    level: int = 0  # the invoice's own reminder level in this message
    written_on: date | None = None  # when we last wrote to the customer about it; None: never
    total: str | None = None  # the invoice total, when it differs from what is outstanding (part-paid)
    outstanding: Decimal | None = None  # the outstanding amount as a number (for the `money` filter)
    currency: str = ""


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
    # The firm's sign-off, ways to pay and invoice copies (`_signoff.*`, `_pay.*`; connector/envelope.py)
    signoff: SignOff = envelope.NO_SIGNOFF
    pay: PayDetails | None = None
    copies: tuple[InvoiceCopy, ...] = ()
    # The firm's locale (the `money` and `date` filters write in it) and what the message says it is about
    locale: str = "en_GB"
    written_about: tuple[str, ...] = ()  # numbers of the listed invoices we wrote about before
    first_time: tuple[str, ...] = ()  # numbers of the listed invoices this message is the first to mention
    month: date | None = None  # a statement's month (its first day); None in a reminder
    contact_phone: str | None = None  # the customer's number to call, as the ledger holds it


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
    contact_phone="+44 20 7946 0958",
    interest_line="Statutory interest of 1.23 GBP may be added.",
    signoff=SignOff(("Jane Smith", "Credit Control"), "Sample Firm Ltd", ("Company no. 01234567",)),
    pay=PayDetails("Sample Firm Ltd", "Please quote INV-0001.", "12-34-56", "12345678"),
    copies=(InvoiceCopy("INV-0001", "https://example.com/invoice"),),
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
    env.filters.update(words_filters.FILTERS)  # money, date, and_list: in the firm's locale
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


_SHIPPED_FROM = ("connector", "templates")  # environment()'s PackageLoader: package and folder
_SHIPPED = Path(__file__).resolve().parent / "templates"  # ... the folder it reads
# Per environment: each template that rendered against the sample, with the template files it was read from.
_checked: WeakKeyDictionary[Templates, dict[str, tuple[tuple[str, int, int], ...]]] = WeakKeyDictionary()
_listed: WeakKeyDictionary[Templates, frozenset[str]] = WeakKeyDictionary()


def _template_files(env: Templates) -> tuple[tuple[str, int, int], ...] | None:
    """Every file the environment's loaders can read, with its size and modification time; None when the
    environment was not made by `environment` (its folders are not known here)."""
    loader = env.loader
    loaders = loader.loaders if isinstance(loader, ChoiceLoader) else [loader]
    folders: list[str] = []
    for one in loaders:
        if isinstance(one, FileSystemLoader):
            folders.extend(str(path) for path in one.searchpath)
        elif isinstance(one, PackageLoader) and (one.package_name, one.package_path) == _SHIPPED_FROM:
            folders.append(str(_SHIPPED))
        else:
            return None
    found = []
    for folder in folders:
        for parent, _, names in os.walk(folder):
            for name in names:
                path = os.path.join(parent, name)
                with contextlib.suppress(OSError):  # gone since the listing: no longer part of it
                    st = os.stat(path)
                    found.append((path, st.st_mtime_ns, st.st_size))
    return tuple(sorted(found))


def check_templates(env: Templates, templates: Iterable[str]) -> None:
    """Render every named template against a sample; raise TemplateProblem on the first that fails.

    A template that rendered before in this process is not rendered again while no template file of the
    environment changed (added, removed, edited: name, size and modification time), so a firm that edits
    its templates is checked afresh before its next run, and planning the same templates again costs
    a directory listing.
    """
    files = _template_files(env)
    names = frozenset(path for path, *_ in files or ())
    if files is not None and _listed.get(env, names) != names and env.cache is not None:
        env.cache.clear()  # a firm's file added or removed: Jinja would keep serving the one it loaded first
    if files is not None:
        _listed[env] = names
    passed = _checked.setdefault(env, {})
    for template in sorted(set(templates)):
        if files is not None and passed.get(template) == files:
            continue
        render(env, template, SAMPLE)
        if files is not None:
            passed[template] = files


def build_message(
    rendered: Rendered, to: str, key: str, smtp: SmtpSettings, when: float | None = None
) -> EmailMessage:
    """An e-mail from the server's sender whose Message-ID is derived from the action key, so a duplicate is
    recognisable anywhere (headers as connector/envelope.py; a firm's own sender: `envelope.build`)."""
    at = datetime.fromtimestamp(when, UTC) if when is not None else None
    return envelope.build(rendered, (to,), key, smtp, when=at)


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


def _unreachable(smtp: SmtpSettings, exc: BaseException) -> Transient:
    return Transient(f"SMTP server {smtp.host}:{smtp.port} unreachable: {type(exc).__name__}")


def _connect(smtp: SmtpSettings) -> smtplib.SMTP:
    """A connected, greeted and logged-in client; nothing is sent.

    Raises:
        Fatal: settings ccm refuses (a password without TLS, STARTTLS not offered).
        LoginRefused: the login was refused (5xx), or the server offers no login while ccm has credentials.
        Transient: the server could not be reached, would not talk, or answered 4xx (421 among them).
    """
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
    except smtplib.SMTPConnectError as exc:  # a greeting other than 220 (421: too busy)
        raise Transient(f"SMTP server {smtp.host}:{smtp.port} would not talk ({exc.smtp_code})") from None
    except (OSError, smtplib.SMTPException) as exc:
        raise _unreachable(smtp, exc) from None
    try:
        client.ehlo_or_helo_if_needed()  # a server refusing to talk refuses here, not mid-message
        if smtp.security == "starttls":
            _starttls(client, smtp)
        if smtp.username and smtp.password:
            client.login(smtp.username, smtp.password)
    except smtplib.SMTPNotSupportedError:
        client.close()
        raise LoginRefused(f"SMTP server {smtp.host}:{smtp.port} offers no login (AUTH)") from None
    except smtplib.SMTPResponseException as exc:  # 535 refused login, 454 not now, 421 closing
        client.close()
        if isinstance(exc, smtplib.SMTPAuthenticationError):
            kind = kind_of(exc.smtp_code, login=True)
            what = "login refused" if kind is LoginRefused else "login failed for now"
            raise kind(f"SMTP {what} ({exc.smtp_code})") from None
        raise Transient(  # HELO, STARTTLS refused: no message is at fault, and none went
            f"SMTP server {smtp.host}:{smtp.port} would not talk ({exc.smtp_code})"
        ) from None
    except (OSError, smtplib.SMTPException) as exc:
        client.close()
        raise _unreachable(smtp, exc) from None
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


def _said(text: bytes | str) -> str:
    """What the server said, as one short line."""
    line = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return " ".join(line.split())[:200]


def _refused_recipients(exc: smtplib.SMTPRecipientsRefused) -> MailError:
    """'the mail server refused ann@example.com: 550 5.1.1 mailbox unavailable'."""
    codes = sorted({code for code, _ in exc.recipients.values()})
    kind = MessageRefused if codes and all(kind_of(code) is MessageRefused for code in codes) else Transient
    said = "; ".join(f"{who}: {code} {_said(text)}" for who, (code, text) in sorted(exc.recipients.items()))
    return kind(f"the mail server refused {said}")


def _send(client: smtplib.SMTP, message: EmailMessage, recipients: Sequence[str] | None) -> str:
    try:
        client.send_message(message, to_addrs=list(recipients) if recipients else None)
    except smtplib.SMTPRecipientsRefused as exc:  # 550 for good; 421, 450, 451, 452 for now
        raise _refused_recipients(exc) from None
    except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:  # the sender, or the data at its end
        said = "the sender" if isinstance(exc, smtplib.SMTPSenderRefused) else "the message"
        answer = f"{exc.smtp_code} {_said(exc.smtp_error)}"
        raise kind_of(exc.smtp_code)(f"the mail server refused {said}: {answer}") from None
    return str(message["Message-ID"])


def deliver(smtp: SmtpSettings, message: EmailMessage, recipients: Sequence[str] | None = None) -> str:
    """Send one message on a connection of its own; returns its Message-ID.

    Raises:
        Transient, MessageRefused, LoginRefused, Fatal: as `Session.open` and `Session.send`.
        smtplib.SMTPServerDisconnected / OSError during the data phase propagate: the outcome is unknown.
    """
    with Session.open(smtp) as session:
        return session.send(message, recipients)


def _quiet(client: smtplib.SMTP) -> bool:
    """Whether the server has said nothing since its last reply: an SMTP server speaks unasked only to close
    (a 421, then EOF), so a connection with nothing to read is as alive as it was, without a round trip."""
    sock = client.sock
    if sock is None:
        return False
    pending = getattr(sock, "pending", None)  # bytes TLS has decrypted but not handed over
    if pending is not None and pending():
        return False
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


class Session:
    """One SMTP connection for many messages (a run's reminders), re-opened when the server dropped it.

    `Session.open(smtp)` connects and logs in at once and is a context manager (closed on leaving), so a
    caller learns about the server and its login before it commits to anything; `ready()` checks (NOOP) or
    re-opens the connection before the next message. Every failure before a message is under way is a
    MailError by kind, meaning nothing was sent:

    - Transient: unreachable, 4xx (421 closing, 450/451 greylisting): the message may go later.
    - MessageRefused: 5xx for this message or its recipient (550): fails this message alone.
    - LoginRefused: the login was refused (535): no message can go; none is at fault.

    A failure once the message is under way (the connection lost during DATA) propagates as it was
    (smtplib.SMTPServerDisconnected, OSError): the outcome is unknown.
    """

    def __init__(self, smtp: SmtpSettings) -> None:
        self.smtp = smtp
        self._client: smtplib.SMTP | None = None

    @classmethod
    def open(cls, smtp: SmtpSettings) -> Session:
        """A session connected and logged in now (use it as a context manager to close it).

        Raises:
            Fatal: settings ccm refuses. LoginRefused, Transient: as the class says.
        """
        session = cls(smtp)
        session.ready()
        return session

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def ready(self) -> bool:
        """Have a live, logged-in connection; True when one was opened just now.

        Raises:
            Fatal: settings ccm refuses. LoginRefused, Transient: as the class says.
        """
        if self._client is not None:
            if _quiet(self._client):  # nothing from the server since: the connection is as it was
                return False
            try:  # it spoke, or hung up: a 421 on its way out, or EOF; ask it
                alive = self._client.noop()[0] == 250
            except (OSError, smtplib.SMTPException):
                alive = False
            if alive:
                return False
            self.close()
        self._client = _connect(self.smtp)
        return True

    def send(self, message: EmailMessage, recipients: Sequence[str] | None = None) -> str:
        """Send one message on the session's connection (checked first); returns its Message-ID."""
        self.ready()
        client = self._client
        assert client is not None  # ready() opened it or raised
        try:
            return _send(client, message, recipients)
        except MailError:
            if client.sock is None:  # smtplib closed it (a 421): the next message opens a new one
                self._client = None
            raise
        except BaseException:
            self._client = None  # a connection that failed mid-message is not reused
            raise

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self._client.quit()
            self._client = None
