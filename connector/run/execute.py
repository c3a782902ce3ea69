"""Executing due outbox actions: re-check, prepare, claim, deliver, record; at most once, none lost silently.

The run loop. Each kind of action has its sender (connector/run/senders/): reminders and call tasks
(`reminders.py`, re-checked against the ledger first), monthly statements (`statements.py`), ledger
write-backs (`ledger_writes.py`: notes, holds, releases) and notices to the firm (`notices.py`); e-mails
are worded by `compose.py` and go out over one SMTP session per execution (`smtp.py`). Every sender moves its
actions through ONE primitive, `Attempts.attempt(action, prepare)` (`attempt.py`), which owns the outbox's
state machine (claim → effect → complete, or by the error's kind: retry later, fail, unknown, or stop the
firm's run) and the accounting in the run's `Outcome`.

Invariants: the caller holds the tenant's run lease, so anything left mid-send by a dead process is
settled first (unknown for e-mail, retried for ledger writes, which carry idempotency keys). Outcomes are
per action, by what happens next: a permanent failure fails that action with its reason and the run goes
on; a transient one moves it later with a doubling backoff and fails it after outbox.MAX_ATTEMPTS tries.
Only the firm's own problems stop its run, leaving the action planned and uncounted: reconnect needed
(AuthExpired), the ledger's day allowance spent (RateLimited with scope "day"), the SMTP login refused (a
health issue, `smtp_login_refused`) or unsafe SMTP settings; the firm's due actions on the channels
concerned then wait. After each execution, actions waiting for a person (unknown or failed) are a health
issue, `actions_need_attention`. A caller that asks to stop (`should_stop`) stops between two effects.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime

from connector import mail, outbox
from connector.config import Settings
from connector.firmprofile import FirmProfile
from connector.ledger import Ledger
from connector.outbox import Action, Mode
from connector.reconcile import Basis, Snapshot
from connector.rules.dunning import Reminder
from connector.run.plan import Context
from connector.run.senders.attempt import Attempts, Outcome, Stop
from connector.run.senders.compose import Composer, Draft, view
from connector.run.senders.ledger_writes import LedgerWriter
from connector.run.senders.mailing import Mailing
from connector.run.senders.notices import NoticeSender, attention
from connector.run.senders.reminders import CONTACTING, ReminderSender, sent_notes
from connector.run.senders.smtp import Mailer
from connector.run.senders.statements import StatementSender
from connector.store import Store

__all__ = ["CONTACTING", "Draft", "Executor", "Outcome", "sent_notes", "view"]


class Executor:
    """Runs one tenant's due actions. Construct per execution; not shared between threads."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        ctx: Context,
        ledger: Ledger | None,
        owner: str,
        mode: Mode = Mode.AUTO,
        before_effect: Callable[[Action], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.ctx = ctx
        self.ledger = ledger
        self.owner = owner
        self.mode = mode
        self.before_effect = before_effect  # a test hook: the instant between claim and effect
        self.should_stop = should_stop  # asked before each effect: a server shutting down stops between them
        self.tenant_id = ctx.tenant.id
        self.composer = Composer(store, settings, ctx, ledger)
        self._mailer = Mailer(store, self.tenant_id, settings.smtp, ctx.calendar)

    def _attempts(self, out: Outcome) -> Attempts:
        return Attempts(self.store, self.tenant_id, self.owner, out, self._mailer.login_refused,
                        self.before_effect, self.should_stop)  # fmt: skip

    def run(
        self, now: datetime, resync: Callable[[], object] | None = None, basis: Basis | None = None
    ) -> Outcome:
        """Send what is due at `now`. `basis`: what the caller read moments ago (used when not re-syncing)."""
        out = Outcome()
        attempts = self._attempts(out)
        if attempts.stopping():  # a lost lease: another's sends are not ours
            out.stopped = "stopped before sending anything"
            return out
        with self.store.begin() as conn:
            out.unknown.extend(outbox.recover(conn, self.tenant_id, now))
        try:
            mailing = Mailing(self.store, self.settings, self.ctx, attempts, self.composer, self._mailer)
            reminders = ReminderSender(mailing, self.ledger, self.mode)
            reminders.run(now, resync, basis if resync is None else None)
            StatementSender(mailing).run(now)
            if self.ledger is not None:
                LedgerWriter(self.store, self.tenant_id, self.ledger, attempts).run(now)
            self._attention(now)  # before the notices: telling the firm goes out with them
            self._notices(attempts).run(now)
        except Stop as stop:
            out.stopped = str(stop)
            if not attempts.stopping():  # still ours to write
                attempts.pause(stop, now)
                self._attention(now)
        finally:
            self._mailer.close()
        return out

    def notices_only(self, now: datetime) -> Outcome:
        """Send only the due notices (a night whose sync failed still tells the firm what is wrong)."""
        out = Outcome()
        attempts = self._attempts(out)
        try:
            self._notices(attempts).run(now)
        except Stop as stop:
            out.stopped = str(stop)
            if not attempts.stopping():
                attempts.pause(stop, now)
        finally:
            self._mailer.close()
        return out

    def _notices(self, attempts: Attempts) -> NoticeSender:
        return NoticeSender(
            self.store, self.settings, self.tenant_id, self.ctx.templates, attempts, self._mailer
        )

    def _attention(self, now: datetime) -> None:
        attention(self.store, self.settings, self.ctx.tenant, self.mode, now)

    # -- the wording, as the previews show it (connector/run/senders/compose.py)
    @property
    def profile(self) -> FirmProfile:
        """The firm's sender, sign-off and bank details (connector/firmprofile.py)."""
        return self.composer.profile

    @property
    def locale(self) -> str:
        """The firm's locale (its profile's, else its country's): connector/words/locale.py."""
        return self.composer.locale

    def draft(
        self, action: Action, reminder: Reminder, snapshot: Snapshot, today: date, out: Outcome
    ) -> Draft:
        """The e-mail reminder as it goes out, all but the attachments' bytes (`Composer.draft`)."""
        return self.composer.draft(action, reminder, snapshot, today, out)

    def compose(
        self, template: str, reminder: Reminder, snapshot: Snapshot, today: date, out: Outcome
    ) -> mail.Rendered:
        """The e-mail a reminder renders to, as it is sent (`Composer.compose`)."""
        return self.composer.compose(template, reminder, snapshot, today, out)

    def compose_statement(self, action: Action) -> mail.Rendered:
        """The statement e-mail as it is sent (`Composer.compose_statement`)."""
        return self.composer.compose_statement(action)
