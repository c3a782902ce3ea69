"""The one SMTP session of an execution, opened (or checked) before each e-mail's claim.

Invariants: the session's own problems are the firm's, never a message's. A refused login stops the run
(health issue `smtp_login_refused`; no action is failed by it), as do settings ccm refuses (STARTTLS not
offered); both hold the firm's e-mail back until its next day. An unreachable server defers this message and
every later one of the execution without trying it again. A login that works closes an open issue.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage
from functools import partial

from connector import health, mail
from connector.config import SmtpSettings
from connector.ledger import Fatal
from connector.rules.calendar import SendCalendar
from connector.run.senders.attempt import MAIL_CHANNELS, Stop, next_day
from connector.store import Store


class Mailer:
    """A tenant's SMTP session for one execution; `close` it when the execution ends."""

    def __init__(self, store: Store, tenant_id: str, smtp: SmtpSettings, calendar: SendCalendar) -> None:
        self.store = store
        self.tenant_id = tenant_id
        self.smtp = smtp
        self.calendar = calendar
        self._session: mail.Session | None = None
        self._down: str | None = None  # the SMTP server could not be reached in this execution

    def effect(self, message: EmailMessage, now: datetime) -> Callable[[], str]:
        """Open (or check) the session now, before the claim; the effect is the sending alone."""
        if self._down is not None:
            raise mail.Transient(self._down)
        try:
            if self._session is None:
                self._session, opened = mail.Session.open(self.smtp), True
            else:
                opened = self._session.ready()
        except mail.LoginRefused as exc:
            raise self.login_refused(exc, now) from None
        except Fatal as exc:  # settings ccm refuses (STARTTLS not offered): the firm's to fix
            raise Stop(str(exc), next_day(self.calendar, now), MAIL_CHANNELS) from None
        except mail.Transient as exc:
            self._down = str(exc)
            raise
        session = self._session
        if opened and self.smtp.username:
            self._health(None, now)  # the login works: an open issue closes
        return partial(session.send, message)

    def login_refused(self, exc: mail.LoginRefused, now: datetime) -> Stop:
        """The firm's problem, not a message's: a health issue, and no e-mail until its next day."""
        why = (f"{exc}: no e-mail goes out until smtp.username / smtp.password are fixed; nothing was "
               "sent with them")  # fmt: skip
        self._health(why, now)
        return Stop(why, next_day(self.calendar, now), MAIL_CHANNELS)

    def _health(self, refused: str | None, now: datetime) -> None:
        issue = [health.Issue(health.SMTP_LOGIN, refused)] if refused else []
        with self.store.begin() as conn:
            health.record(conn, self.tenant_id, issue, now, (health.SMTP_LOGIN,))

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
