"""What every sender of customer mail (reminders, statements) works with in one execution."""

from __future__ import annotations

from dataclasses import dataclass

from connector.config import Settings
from connector.run.plan import Context
from connector.run.senders.attempt import Attempts
from connector.run.senders.compose import Composer
from connector.run.senders.smtp import Mailer
from connector.store import Store


@dataclass(frozen=True, slots=True)
class Mailing:
    """One execution's wiring for sending mail to a firm's customers.

    Attributes:
        store: the firm's store.
        settings: ccm's settings (SMTP among them).
        ctx: the firm's context (tenant, calendar, policy).
        attempts: the execution's outbox primitive and its accounting.
        composer: words the messages.
        mailer: the execution's one SMTP session.
    """

    store: Store
    settings: Settings
    ctx: Context
    attempts: Attempts
    composer: Composer
    mailer: Mailer


class MailSender:
    """Base of the senders of customer mail: the execution's wiring, under the names the senders use."""

    def __init__(self, mailing: Mailing) -> None:
        self.store = mailing.store
        self.settings = mailing.settings
        self.ctx = mailing.ctx
        self.attempts = mailing.attempts
        self.composer = mailing.composer
        self.mailer = mailing.mailer
