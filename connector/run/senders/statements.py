"""Due monthly statements (connector/words/statements.py): in the firm's send window, each at most once
(one key per customer and month), sent over the execution's SMTP session in the firm's own name."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import partial

from connector import envelope, outbox
from connector.outbox import Action
from connector.payloads import Kind, StatementPayload
from connector.run.senders.mailing import MailSender


class StatementSender(MailSender):
    """Sends one tenant's due statements in one execution."""

    def run(self, now: datetime) -> None:
        with self.store.read() as conn:
            due = [a for a in outbox.due(conn, self.ctx.tenant.id, now) if a.kind == Kind.STATEMENT]
        calendar = self.ctx.calendar
        for action in due:
            if not calendar.can_send_at(now):
                reason = calendar.why_not(now) or "outside sending hours"
                self.attempts.defer(action, calendar.next_send_time(now), reason, now)
                continue
            result = self.attempts.attempt(action, partial(self._prepare, action, now), now)
            if result is None:
                continue
            self.attempts.complete(action, result, now)
            self.attempts.out.sent.append(action.key)

    def _prepare(self, action: Action, now: datetime) -> Callable[[], str]:
        rendered = self.composer.compose_statement(action)
        to = (str(action.payload.email),) if isinstance(action.payload, StatementPayload) else ()
        when = now.astimezone(self.ctx.calendar.zone)  # in the firm's own name, as its reminders
        message = envelope.build(rendered, to, action.key, self.settings.smtp, self.composer.profile, when)
        return self.mailer.effect(message, now)
