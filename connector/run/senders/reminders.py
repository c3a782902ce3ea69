"""Due reminders and call tasks: re-checked, then each sent once by its channel.

Invariants: just before sending, the tenant is re-synced (when a re-sync is given) and re-evaluated; a
reminder whose invoices were paid, credited or disputed since planning is cancelled with the reason, and what
remains due is re-planned under a new key. A failed re-check sends nothing (every due reminder waits
RECHECK_AGAIN). Outside the firm's send window nothing goes out. A customer is contacted at most once per
execution (a second reminder waits for the firm's next day). A reminder that went out records its levels in
the reminder history and, when it reached the customer and a ledger is connected, plans a note on each of
its invoices, in the same commit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta
from functools import partial

import structlog
from sqlalchemy import Connection

from connector import envelope, outbox
from connector.ledger import Fatal, Ledger
from connector.outbox import Action, Mode
from connector.payloads import Kind, NotePayload, ReminderPayload, lines_of
from connector.reconcile import Basis, Snapshot
from connector.rules.dunning import Reminder
from connector.run import extras
from connector.run.plan import actions_for, evaluate_tenant, why_not
from connector.run.senders.attempt import next_day
from connector.run.senders.mailing import Mailing, MailSender
from connector.sync import SyncResult

log = structlog.get_logger(__name__)
# Channels that reach the customer (a call task reaches the bookkeeper)
CONTACTING = ("email", "ledger_email")
KINDS = (Kind.REMINDER, Kind.CALL_TASK)
RECHECK_AGAIN = timedelta(minutes=15)  # a reminder whose re-check failed waits this long to try again


def sent_notes(
    action: outbox.Action, lines: Iterable[tuple[str, int, str]], day: date, now: datetime
) -> list[outbox.NewAction]:
    """The ledger notes a reminder that went out leaves on each invoice it lists: (invoice id, level number,
    level name) per line. The executor plans them when it sends; `ccm outbox resolve --sent` when a person
    confirms."""
    email = action.payload.email if isinstance(action.payload, ReminderPayload) else None
    how = f"to {email}" if action.channel == "email" else "by the ledger's invoice e-mail"
    notes = []
    for invoice_id, level, level_name in lines:
        text = f"Reminder {level} ({level_name}) sent {how} on {day} by ccm [{action.key}]"
        notes.append(outbox.NewAction(
            key=f"note:{action.key}:{invoice_id}"[:128], kind=Kind.NOTE, channel="ledger",
            customer_id=action.customer_id, payload=NotePayload(invoice_id, text),
            send_after=now, replay_safe=True,
        ))  # fmt: skip
    return notes


class ReminderSender(MailSender):
    """Sends one tenant's due reminders and call tasks in one execution."""

    def __init__(self, mailing: Mailing, ledger: Ledger | None, mode: Mode) -> None:
        super().__init__(mailing)
        self.ledger = ledger
        self.mode = mode
        self.tenant_id = mailing.ctx.tenant.id
        self.out = mailing.attempts.out

    def _due(self, now: datetime) -> list[Action]:
        with self.store.read() as conn:
            return [a for a in outbox.due(conn, self.tenant_id, now) if a.kind in KINDS]

    def run(self, now: datetime, resync: Callable[[], object] | None, basis: Basis | None) -> None:
        """Re-check, then send what still stands. `basis`: what the caller read moments ago (no re-sync)."""
        due = self._due(now)
        if not due:
            return
        if resync is not None:
            result = resync()
            if isinstance(result, SyncResult) and not result.outcome.read_all:
                reason = f"not sent: the ledger could not be re-checked first ({result.error})"
                for action in due:
                    self.attempts.defer(action, now + RECHECK_AGAIN, reason, now)
                return
        today = self.ctx.calendar.local_date(now)
        fresh, snapshot = evaluate_tenant(self.store, self.ctx, today, basis)
        by_key = {r.key: r for r in fresh.reminders}
        stale = [a for a in due if a.key not in by_key]
        if stale:
            with self.store.begin() as conn:
                for action in stale:
                    reason = why_not(fresh, snapshot, lines_of(action.payload))
                    self.attempts.cancel(conn, action, reason, now)
                outbox.plan(conn, self.tenant_id, actions_for(fresh, snapshot, self.ctx, now), self.mode, now)
            due = self._due(now)
        calendar = self.ctx.calendar
        if not calendar.can_send_at(now):
            reason = calendar.why_not(now) or "outside sending hours"
            for action in due:
                self.attempts.defer(action, calendar.next_send_time(now), reason, now)
            return
        self.composer.read_written(by_key[a.key] for a in due if a.key in by_key)
        try:
            self._send_due(due, by_key, snapshot, today, now)
        finally:
            self.composer.read_written(())

    def _send_due(
        self,
        due: list[Action],
        by_key: Mapping[str, Reminder],
        snapshot: Snapshot,
        today: date,
        now: datetime,
    ) -> None:
        contacted: set[str] = set()
        for action in due:
            reminder = by_key.get(action.key)
            if reminder is None:
                continue
            if action.channel in CONTACTING and action.customer_id in contacted:
                reason = "the customer was already contacted today"
                self.attempts.defer(action, next_day(self.ctx.calendar, now), reason, now)
                continue
            if self._deliver(action, reminder, snapshot, today, now) and action.channel in CONTACTING:
                contacted.add(action.customer_id)

    def _deliver(
        self, action: Action, reminder: Reminder, snapshot: Snapshot, today: date, now: datetime
    ) -> bool:
        prepare = partial(self._prepare, action, reminder, snapshot, today, now)
        result = self.attempts.attempt(action, prepare, now)
        if result is None:
            return False
        history = [(line.item.invoice_id, line.level.number) for line in reminder.lines]

        def notes(conn: Connection) -> None:
            self.composer.sent_about(invoice_id for invoice_id, _ in history)  # its history changed
            if action.channel in CONTACTING and self.ledger is not None:
                lines = [
                    (line.item.invoice_id, line.level.number, line.level.name) for line in reminder.lines
                ]
                outbox.plan(conn, self.tenant_id, sent_notes(action, lines, today, now), Mode.AUTO, now)

        self.attempts.complete(action, result, now, history, today, also=notes)
        (self.out.tasks if action.channel == "call_task" else self.out.sent).append(action.key)
        log.info("reminder.sent", tenant=self.tenant_id, key=action.key, channel=action.channel)
        return True

    def _prepare(
        self, action: Action, reminder: Reminder, snapshot: Snapshot, today: date, now: datetime
    ) -> Callable[[], str]:
        """A reminder made ready to go (message rendered, pay links in it, SMTP session open): its effect."""
        if action.channel == "call_task":
            return lambda: "listed for the bookkeeper"
        if action.channel == "ledger_email":
            ledger = self.ledger
            if ledger is None:
                raise Fatal("no ledger connection to send the ledger's own invoice e-mail")
            return partial(self._ledger_email, ledger, action, reminder)
        draft = self.composer.draft(action, reminder, snapshot, today, self.out)
        files, pdfs = extras.attachments(self.ledger, reminder)  # the bytes of draft.attachments
        self.out.api_calls += pdfs
        when = now.astimezone(self.ctx.calendar.zone)
        message = envelope.build(
            draft.rendered, draft.to, action.key, self.settings.smtp, self.composer.profile, when, files
        )
        return self.mailer.effect(message, now)

    def _ledger_email(self, ledger: Ledger, action: Action, reminder: Reminder) -> str:
        for line in reminder.lines:
            done = ledger.send_via_ledger(line.item.invoice_id, f"{action.key}:{line.item.invoice_id}")
            self.out.api_calls += done.api_calls
        return "sent by the ledger"
