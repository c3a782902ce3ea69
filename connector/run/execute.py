"""Executing due outbox actions: re-check, prepare, claim, deliver, record; at most once, none lost silently.

Just before sending, the tenant is re-synced (when a re-sync is given) and re-evaluated: a reminder whose
invoices were paid, credited or disputed since planning is cancelled with the reason, and what remains due
is re-planned under a new key. Each action is prepared (rendered, its pay links fetched, the SMTP session
opened and checked), then claimed (committed), then its effect performed and completed: the window between
claim and completion holds the effect alone, so a crash anywhere before it leaves the action planned. The
caller holds the tenant's run lease, so anything left mid-send by a dead process is settled first (unknown
for e-mail, retried for ledger writes, which carry idempotency keys).

Outcomes are per action, by what happens next: a permanent failure (a ledger's Fatal or Skippable, an SMTP
5xx, a template that does not render) fails that action with its reason and the run goes on; a transient one
(Retriable, RateLimited, SMTP 4xx, the SMTP server unreachable) moves it later with a doubling backoff and
fails it after outbox.MAX_ATTEMPTS tries. Only the firm's own problems stop its run, leaving the action
planned and uncounted: reconnect needed (AuthExpired), the ledger's day allowance spent (RateLimited with
scope "day"), the SMTP login refused (a health issue, `smtp_login_refused`) or unsafe SMTP settings. After
each execution, actions waiting for a person (unknown or failed) are a health issue, `actions_need_attention`.
A hold (release) for a customer already on (off) hold is cancelled as done, never written again: an earlier
night's hold that waited and tonight's are two keys (hold keys carry the day) for one change.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from functools import cached_property, partial
from typing import TypeVar

import structlog

from connector import chasing, credit, digest, envelope, health, mail, outbox
from connector.config import Settings
from connector.firmprofile import FirmProfile, load_profile
from connector.ledger import AuthExpired, Fatal, Ledger, LedgerError, RateLimited, Retriable, WriteResult
from connector.outbox import Action, Mode
from connector.reconcile import Basis, Snapshot
from connector.reference_rates import stored as reference_rates
from connector.rules import interest
from connector.rules.dunning import Reminder
from connector.run import extras
from connector.run.plan import Context, actions_for, evaluate_tenant, why_not
from connector.store import Store, synclog
from connector.sync import SyncResult
from connector.words import context, statements
from connector.words.locale import LocaleProblem

log = structlog.get_logger(__name__)
# Channels that reach the customer (a call task reaches the bookkeeper), and the ledger's write-backs.
CONTACTING = ("email", "ledger_email")
LEDGER_KINDS = ("note", "hold", "release")
RECHECK_AGAIN = timedelta(minutes=15)  # a reminder whose re-check failed waits this long to try again
RECONNECT_PAUSE = timedelta(hours=1)  # ledger writes wait this long after "reconnect needed"
MAIL_CHANNELS = ("email",)  # reminders by e-mail and notices: what a refused SMTP login stops
LEDGER_CHANNELS = ("ledger", "ledger_email")  # notes, holds, releases, the ledger's invoice e-mail
T = TypeVar("T")


@dataclass
class Outcome:
    sent: list[str] = field(default_factory=list)
    tasks: list[str] = field(default_factory=list)
    cancelled: list[tuple[str, str]] = field(default_factory=list)
    deferred: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    notes: int = 0
    holds: list[str] = field(default_factory=list)
    releases: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # connection-health e-mails to the firm
    api_calls: int = 0
    stopped: str | None = None  # why execution stopped early (reconnect needed, ...)


@dataclass(frozen=True, slots=True)
class Draft:
    """A reminder e-mail as it goes out: its words, From, To then Cc, and its attachments' file names."""

    rendered: mail.Rendered
    sender: str
    to: tuple[str, ...]
    attachments: tuple[str, ...]


class _Stop(Exception):
    """A problem of the whole firm, not of one action: its run stops here, no action is failed by it.

    `until`: the firm's due actions on `channels` wait until then (uncounted), so a server does not run into
    the same wall at every tick (a refused login tried every 30 s, a ledger's allowance spent further).
    """

    def __init__(self, reason: str, until: datetime | None = None, channels: tuple[str, ...] = ()) -> None:
        super().__init__(reason)
        self.until = until
        self.channels = channels


def _mid_send(exc: BaseException) -> str:
    return f"the connection failed mid-send ({type(exc).__name__}): it may or may not have gone out"


def _firm_stops(exc: Exception) -> bool:
    """Reconnect needed, or the ledger's allowance for the day spent: no later action of the firm can work."""
    return isinstance(exc, AuthExpired) or (isinstance(exc, RateLimited) and exc.scope == "day")


def sent_notes(
    action: outbox.Action, lines: Iterable[tuple[str, int, str]], day: date, now: datetime
) -> list[outbox.NewAction]:
    """The ledger notes a reminder that went out leaves on each invoice it lists: (invoice id, level number,
    level name) per line. The executor plans them when it sends; `ccm outbox resolve --sent` when a person
    confirms."""
    how = (
        f"to {action.payload.get('email')}" if action.channel == "email" else "by the ledger's invoice e-mail"
    )
    notes = []
    for invoice_id, level, level_name in lines:
        text = f"Reminder {level} ({level_name}) sent {how} on {day} by ccm [{action.key}]"
        notes.append(outbox.NewAction(
            key=f"note:{action.key}:{invoice_id}"[:128], kind="note", channel="ledger",
            customer_id=action.customer_id, payload={"ref": invoice_id, "text": text},
            send_after=now, replay_safe=True,
        ))  # fmt: skip
    return notes


def view(
    reminder: Reminder,
    snapshot: Snapshot,
    ctx: Context,
    today: date,
    pay_urls: dict[str, str],
    interest_line: str | None = None,
    locale: str = "en_GB",
    wrote: Mapping[str, date] | None = None,
) -> mail.ReminderView:
    """What the template sees, from today's figures (not the planning night's): connector/words/context.py."""
    return context.reminder_view(
        reminder, snapshot, ctx.tenant.name, today, locale, pay_urls, wrote or {}, interest_line
    )


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
        self._session: mail.Session | None = None
        self._mail_down: str | None = None  # the SMTP server could not be reached in this execution
        # What we wrote about each due invoice, read once per run; invoices sent about since are read afresh
        self._wrote: dict[str, date] = {}
        self._wrote_read: frozenset[str] = frozenset()
        self._wrote_since: set[str] = set()

    def run(
        self, now: datetime, resync: Callable[[], object] | None = None, basis: Basis | None = None
    ) -> Outcome:
        """Send what is due at `now`. `basis`: what the caller read moments ago (used when not re-syncing)."""
        out = Outcome()
        if self.should_stop is not None and self.should_stop():  # a lost lease: another's sends are not ours
            out.stopped = "stopped before sending anything"
            return out
        with self.store.begin() as conn:
            out.unknown.extend(outbox.recover(conn, self.tenant_id, now))
        try:
            self._reminders(now, resync, out, basis if resync is None else None)
            self._statements(now, out)
            self._notes(now, out)
            self._attention(now)  # before the notices: telling the firm goes out with them
            self._notices(now, out)
        except _Stop as stop:
            out.stopped = str(stop)
            if not (self.should_stop is not None and self.should_stop()):  # still ours to write
                self._pause(stop, now, out)
                self._attention(now)
        finally:
            self._close_mail()
        return out

    def _pause(self, stop: _Stop, now: datetime, out: Outcome) -> None:
        """Hold back the firm's due actions the stop concerns until it may be over (attempts untouched)."""
        if stop.until is None:
            return
        reason = f"waiting until {stop.until:%Y-%m-%d %H:%M} UTC: {stop}"
        shown = {key for key, _ in out.deferred}
        with self.store.begin() as conn:
            for action in outbox.due(conn, self.tenant_id, now):
                if action.channel in stop.channels and outbox.defer(
                    conn, self.tenant_id, action.key, stop.until, reason, now
                ) and action.key not in shown:  # fmt: skip
                    out.deferred.append((action.key, reason))

    def _next_day(self, now: datetime) -> datetime:
        """When the firm's send window opens on its next day."""
        calendar = self.ctx.calendar
        tomorrow = date.fromordinal(calendar.local_date(now).toordinal() + 1)
        return calendar.next_send_time(
            datetime.combine(tomorrow, calendar.window_start, tzinfo=calendar.zone)
        )

    def _attention(self, now: datetime) -> None:
        """Record whether actions wait for a person (unknown or failed) as the firm's health issue, and plan
        the notice telling the firm when it is new."""
        with self.store.begin() as conn:
            message = outbox.attention(outbox.unsettled(conn, self.tenant_id))
            found = [health.Issue(health.ATTENTION, message)] if message else []
            health.record(conn, self.tenant_id, found, now, (health.ATTENTION,))
            if self.settings.health.notify and self.mode is not Mode.DRY_RUN:
                outbox.plan(conn, self.tenant_id, health.notices(conn, self.ctx.tenant, now), Mode.AUTO, now)

    def _smtp_health(self, refused: str | None, now: datetime) -> None:
        issue = [health.Issue(health.SMTP_LOGIN, refused)] if refused else []
        with self.store.begin() as conn:
            health.record(conn, self.tenant_id, issue, now, (health.SMTP_LOGIN,))

    def _close_mail(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    # -- reminders
    def _reminders(
        self, now: datetime, resync: Callable[[], object] | None, out: Outcome, basis: Basis | None
    ) -> None:
        with self.store.read() as conn:
            due = [a for a in outbox.due(conn, self.tenant_id, now) if a.kind in ("reminder", "call_task")]
        if not due:
            return
        if resync is not None:
            result = resync()
            if isinstance(result, SyncResult) and result.outcome in (synclog.FAILED, synclog.INTERRUPTED):
                reason = f"not sent: the ledger could not be re-checked first ({result.error})"
                for action in due:
                    self._defer_to(action, now + RECHECK_AGAIN, reason, now, out)
                return
        today = self.ctx.calendar.local_date(now)
        fresh, snapshot = evaluate_tenant(self.store, self.ctx, today, basis)
        by_key = {r.key: r for r in fresh.reminders}
        stale = [a for a in due if a.key not in by_key]
        if stale:
            with self.store.begin() as conn:
                for action in stale:
                    reason = why_not(fresh, snapshot, action.payload.get("lines", []))
                    if outbox.cancel(conn, self.tenant_id, action.key, reason, now):
                        out.cancelled.append((action.key, reason))
                outbox.plan(conn, self.tenant_id, actions_for(fresh, snapshot, self.ctx, now), self.mode, now)
            with self.store.read() as conn:
                due = [
                    a for a in outbox.due(conn, self.tenant_id, now) if a.kind in ("reminder", "call_task")
                ]
        if not self.ctx.calendar.can_send_at(now):
            self._defer_all(due, now, out)
            return
        self._read_written(by_key[a.key] for a in due if a.key in by_key)
        try:
            self._send_due(due, by_key, snapshot, today, now, out)
        finally:
            self._read_written(())

    def _send_due(
        self,
        due: list[Action],
        by_key: Mapping[str, Reminder],
        snapshot: Snapshot,
        today: date,
        now: datetime,
        out: Outcome,
    ) -> None:
        contacted: set[str] = set()
        for action in due:
            reminder = by_key.get(action.key)
            if reminder is None:
                continue
            if action.channel in CONTACTING and action.customer_id in contacted:
                self._defer(action, now, "the customer was already contacted today", out, next_day=True)
                continue
            if self._deliver(action, reminder, snapshot, today, now, out) and action.channel in CONTACTING:
                contacted.add(action.customer_id)

    def _read_written(self, reminders: Iterable[Reminder]) -> None:
        """Read what we wrote about every invoice of the run's reminders in one go (none: forget it)."""
        ids = frozenset(line.item.invoice_id for reminder in reminders for line in reminder.lines)
        if ids:
            with self.store.read() as conn:
                self._wrote = context.written(conn, self.tenant_id, ids)
        else:
            self._wrote = {}
        self._wrote_read, self._wrote_since = ids, set()

    def _wrote_about(self, invoice_ids: list[str]) -> dict[str, date]:
        """`context.written` for these invoices: from the run's read while none was sent about since."""
        if self._wrote_read.issuperset(invoice_ids) and self._wrote_since.isdisjoint(invoice_ids):
            return {iid: self._wrote[iid] for iid in invoice_ids if iid in self._wrote}
        with self.store.read() as conn:
            return context.written(conn, self.tenant_id, invoice_ids)

    def _defer_all(self, due: list[Action], now: datetime, out: Outcome) -> None:
        reason = self.ctx.calendar.why_not(now) or "outside sending hours"
        for action in due:
            self._defer(action, now, reason, out)

    def _defer_to(self, action: Action, when: datetime, reason: str, now: datetime, out: Outcome) -> None:
        with self.store.begin() as conn:
            outbox.defer(conn, self.tenant_id, action.key, when, reason, now)
        out.deferred.append((action.key, reason))

    def _defer(
        self, action: Action, now: datetime, reason: str, out: Outcome, next_day: bool = False
    ) -> None:
        when = self._next_day(now) if next_day else self.ctx.calendar.next_send_time(now)
        with self.store.begin() as conn:
            outbox.defer(conn, self.tenant_id, action.key, when, reason, now)
        out.deferred.append((action.key, reason))

    def _check_stop(self) -> None:
        if self.should_stop is not None and self.should_stop():
            raise _Stop("the server is shutting down; what is left goes out on the next run")

    def _attempt(
        self, action: Action, prepare: Callable[[], Callable[[], T]], now: datetime, out: Outcome
    ) -> T | None:
        """Prepare an action, claim it, perform it; its result, or None when it was not done (taken by another
        executor, or settled by its failure: later, failed, or unknown when it may have happened).

        `prepare` does everything that can fail before the effect (rendering, pay links, the SMTP session)
        and returns the effect: a failure there leaves the action unclaimed, never unknown.
        """
        self._check_stop()
        try:
            effect = prepare()
        except _Stop:
            raise
        except Exception as exc:
            if not self._settle(action, exc, now, out, claimed=False):
                raise  # not a failure any action may have: a bug, and the action is still planned
            return None
        with self.store.begin() as conn:
            if not outbox.claim(conn, self.tenant_id, action.key, self.owner, now):
                return None  # another executor has it
        if self.before_effect is not None:
            self.before_effect(action)
        try:
            return effect()
        except Exception as exc:
            if not self._settle(action, exc, now, out, claimed=True):
                raise
        return None

    def _settle(self, action: Action, exc: Exception, now: datetime, out: Outcome, claimed: bool) -> bool:
        """Settle an action by what its failure means next; False when `exc` is no failure of an action."""
        reason = str(exc)
        if isinstance(exc, mail.LoginRefused):  # the session re-opened after the claim, and was refused
            if claimed:
                self._finish(partial(outbox.release, counted=False), action, reason, now)
            raise self._login_refused(exc, now)
        if _firm_stops(exc):
            if claimed:
                self._finish(partial(outbox.release, counted=False), action, reason, now)
            wait = timedelta(seconds=exc.retry_after) if isinstance(exc, RateLimited) else RECONNECT_PAUSE
            raise _Stop(reason, now + wait, LEDGER_CHANNELS)
        if isinstance(exc, mail.Transient | Retriable | RateLimited):  # SMTP 4xx, unreachable, 5xx answers
            at_least = now + timedelta(seconds=exc.retry_after) if isinstance(exc, RateLimited) else None
            with self.store.begin() as conn:
                state = outbox.retry_later(conn, self.tenant_id, action.key, reason, now, at_least)
            (out.failed if state is outbox.State.FAILED else out.deferred).append((action.key, reason))
        elif isinstance(exc, mail.Refused | mail.TemplateProblem | LedgerError):  # Fatal, Skippable, SMTP 5xx
            self._finish(outbox.fail, action, reason, now)
            out.failed.append((action.key, reason))
        elif claimed and isinstance(exc, smtplib.SMTPException | OSError):
            self._finish(outbox.mark_unknown, action, _mid_send(exc), now)
            out.unknown.append(action.key)
        else:
            return False
        log.info("action.not_done", tenant=self.tenant_id, key=action.key, reason=reason)
        return True

    def _deliver(
        self, action: Action, reminder: Reminder, snapshot: Snapshot, today: date, now: datetime, out: Outcome
    ) -> bool:
        prepare = partial(self._prepare, action, reminder, snapshot, today, now, out)
        result = self._attempt(action, prepare, now, out)
        if result is None:
            return False
        history = [(line.item.invoice_id, line.level.number) for line in reminder.lines]
        with self.store.begin() as conn:
            outbox.complete(conn, self.tenant_id, action.key, result, now, history, today)
            self._wrote_since.update(invoice_id for invoice_id, _ in history)  # its history changed
            if action.channel in CONTACTING and self.ledger is not None:
                lines = [
                    (line.item.invoice_id, line.level.number, line.level.name) for line in reminder.lines
                ]
                outbox.plan(conn, self.tenant_id, sent_notes(action, lines, today, now), Mode.AUTO, now)
        (out.tasks if action.channel == "call_task" else out.sent).append(action.key)
        log.info("reminder.sent", tenant=self.tenant_id, key=action.key, channel=action.channel)
        return True

    def _prepare(
        self, action: Action, reminder: Reminder, snapshot: Snapshot, today: date, now: datetime, out: Outcome
    ) -> Callable[[], str]:
        """A reminder made ready to go (message rendered, pay links in it, SMTP session open): its effect."""
        if action.channel == "call_task":
            return lambda: "listed for the bookkeeper"
        if action.channel == "ledger_email":
            ledger = self.ledger
            if ledger is None:
                raise Fatal("no ledger connection to send the ledger's own invoice e-mail")
            return partial(self._ledger_email, ledger, action, reminder, out)
        draft = self.draft(action, reminder, snapshot, today, out)
        files, pdfs = extras.attachments(self.ledger, reminder)  # the bytes of draft.attachments
        out.api_calls += pdfs
        when = now.astimezone(self.ctx.calendar.zone)
        message = envelope.build(
            draft.rendered, draft.to, action.key, self.settings.smtp, self.profile, when, files
        )
        return self._mail_effect(message, now)

    def draft(
        self, action: Action, reminder: Reminder, snapshot: Snapshot, today: date, out: Outcome
    ) -> Draft:
        """The e-mail reminder as it goes out, all but the attachments' bytes: what the send builds its
        message from and the web pages' previews show (connector/web/preview.py)."""
        template = str(action.payload.get("template") or reminder.lines[0].level.template)
        rendered = self.compose(template, reminder, snapshot, today, out)
        # the envelope (connector/run/extras.py): every recipient, the invoice PDFs, fetched before the claim
        main = str(action.payload.get("email") or "")
        to, calls = extras.recipients(self.ledger, reminder.customer_id, main)
        out.api_calls += calls
        sender, _ = self.profile.sender(self.settings.smtp)
        return Draft(rendered, sender, to, extras.attachment_names(self.ledger, reminder))

    @cached_property
    def profile(self) -> FirmProfile:
        """The firm's sender, sign-off and bank details (connector/firmprofile.py)."""
        with self.store.read() as conn:
            return load_profile(conn, self.tenant_id)

    @cached_property
    def locale(self) -> str:
        """The firm's locale (its profile's, else its country's): connector/words/locale.py."""
        with self.store.read() as conn:
            return context.tenant_locale(conn, self.ctx.tenant)

    def compose(
        self, template: str, reminder: Reminder, snapshot: Snapshot, today: date, out: Outcome
    ) -> mail.Rendered:
        """The e-mail a reminder renders to, as it is sent (and as `ccm preview` shows it): pay links fetched,
        each invoice at its own level with what we wrote about it before, in the firm's locale."""
        pay_urls = self._pay_urls(reminder, out)
        wrote = self._wrote_about([line.item.invoice_id for line in reminder.lines])
        try:
            locale = self.locale
        except LocaleProblem as exc:  # the firm's setting: this message fails with it, one line
            raise mail.TemplateProblem(str(exc)) from None
        interest_line = self._interest_line(reminder, today)
        shown = view(reminder, snapshot, self.ctx, today, pay_urls, interest_line, locale, wrote)
        shown = extras.dressed(shown, self.profile, reminder, pay_urls, self.ledger)  # sign-off, bank, copies
        return mail.render(self.ctx.templates, template, shown)

    # -- monthly statements (connector/words/statements.py)
    def compose_statement(self, action: Action) -> mail.Rendered:
        """The statement e-mail as it is sent (and as `ccm preview` shows it)."""
        try:
            locale = self.locale
        except LocaleProblem as exc:
            raise mail.TemplateProblem(str(exc)) from None
        return statements.render(
            self.ctx.templates, action.payload, action.key, self.ctx.tenant.name, locale, self.profile
        )

    def _statement(self, action: Action, now: datetime) -> Callable[[], str]:
        rendered, to = self.compose_statement(action), (str(action.payload["email"]),)
        when = now.astimezone(self.ctx.calendar.zone)  # in the firm's own name, as its reminders
        message = envelope.build(rendered, to, action.key, self.settings.smtp, self.profile, when)
        return self._mail_effect(message, now)

    def _statements(self, now: datetime, out: Outcome) -> None:
        """Due statements, in the firm's send window; each at most once (one key per customer and month)."""
        with self.store.read() as conn:
            due = [a for a in outbox.due(conn, self.tenant_id, now) if a.kind == statements.KIND]
        for action in due:
            if not self.ctx.calendar.can_send_at(now):
                self._defer(action, now, self.ctx.calendar.why_not(now) or "outside sending hours", out)
                continue
            result = self._attempt(action, partial(self._statement, action, now), now, out)
            if result is None:
                continue
            with self.store.begin() as conn:
                outbox.complete(conn, self.tenant_id, action.key, result, now)
            out.sent.append(action.key)

    @staticmethod
    def _ledger_email(ledger: Ledger, action: Action, reminder: Reminder, out: Outcome) -> str:
        for line in reminder.lines:
            done = ledger.send_via_ledger(line.item.invoice_id, f"{action.key}:{line.item.invoice_id}")
            out.api_calls += done.api_calls
        return "sent by the ledger"

    def _mail_effect(self, message: EmailMessage, now: datetime) -> Callable[[], str]:
        """Open (or check) the SMTP session now, before the claim; the effect is the sending alone.

        The session's own problems are the firm's: a refused login stops the run (health issue
        `smtp_login_refused`; no action is failed by it), as do settings ccm refuses; an unreachable server
        defers this message and every later one of this execution without trying it again.
        """
        if self._mail_down is not None:
            raise mail.Transient(self._mail_down)
        try:
            if self._session is None:
                self._session, opened = mail.Session.open(self.settings.smtp), True
            else:
                opened = self._session.ready()
        except mail.LoginRefused as exc:
            raise self._login_refused(exc, now) from None
        except Fatal as exc:  # settings ccm refuses (STARTTLS not offered): the firm's to fix
            raise _Stop(str(exc), self._next_day(now), MAIL_CHANNELS) from None
        except mail.Transient as exc:
            self._mail_down = str(exc)
            raise
        session = self._session
        if opened and self.settings.smtp.username:
            self._smtp_health(None, now)  # the login works: an open issue closes
        return partial(session.send, message)

    def _login_refused(self, exc: mail.LoginRefused, now: datetime) -> _Stop:
        """The firm's problem, not a message's: a health issue, and no e-mail until its next day."""
        why = (f"{exc}: no e-mail goes out until smtp.username / smtp.password are fixed; nothing was "
               "sent with them")  # fmt: skip
        self._smtp_health(why, now)
        return _Stop(why, self._next_day(now), MAIL_CHANNELS)

    def _interest_line(self, reminder: Reminder, today: date) -> str | None:
        """The statutory interest line, when the tenant claims it, the level shows it and the debt is B2B."""
        regime = self.settings.credit.statutory_interest
        if regime == "off" or not any(line.level.interest for line in reminder.lines):
            return None
        with self.store.read() as conn:
            business = chasing.is_business(conn, self.tenant_id, reminder.customer_id)
        if not business:
            return None
        with self.store.read() as conn:  # the shipped table, the tenant's file, then what ccm fetched
            rates = reference_rates.rates_for(conn, self.settings.tenant_dir(self.tenant_id))
        try:
            claims = [
                interest.claim(
                    line.item.outstanding, line.item.due_date, today, interest.Regime(regime), rates
                )
                for line in reminder.lines
                if line.days_overdue > 0 and line.level.interest
            ]
        except interest.RateUnknown as exc:
            log.warning("interest.rate_unknown", tenant=self.tenant_id, reason=str(exc))
            return None
        return interest.combined(claims)

    def _pay_urls(self, reminder: Reminder, out: Outcome) -> dict[str, str]:
        fetch = getattr(self.ledger, "online_invoice_url", None)
        urls: dict[str, str] = {}
        if fetch is None:
            return urls
        for line in reminder.lines:
            try:
                url = fetch(line.item.invoice_id)
            except LedgerError as exc:
                if _firm_stops(exc):
                    raise
                continue  # a reminder without a pay link is still a reminder
            out.api_calls += 1
            if url:
                urls[line.item.invoice_id] = str(url)
        return urls

    def _finish(self, step: Callable[..., bool], action: Action, reason: str, now: datetime) -> None:
        with self.store.begin() as conn:
            step(conn, self.tenant_id, action.key, reason, now)

    # -- notes written back to the ledger
    @staticmethod
    def _write(ledger: Ledger, action: Action) -> Callable[[], WriteResult]:
        """A ledger write needs no preparing: its effect."""
        return partial(Executor._written, ledger, action)

    @staticmethod
    def _written(ledger: Ledger, action: Action) -> WriteResult:
        if action.kind == "note":
            return ledger.add_note(str(action.payload["ref"]), str(action.payload["text"]), action.key)
        on = action.kind == "hold"
        return ledger.set_hold(action.customer_id, on, str(action.payload["reason"]), action.key)

    def _notes(self, now: datetime, out: Outcome) -> None:
        """Ledger write-backs: notes on invoices, holds and releases on customers (all idempotent by key)."""
        ledger = self.ledger
        if ledger is None:
            return
        with self.store.read() as conn:
            due = [a for a in outbox.due(conn, self.tenant_id, now) if a.kind in LEDGER_KINDS]
        for action in due:
            if action.kind in ("hold", "release") and self._already_done(action, now, out):
                continue
            done = self._attempt(action, partial(self._write, ledger, action), now, out)
            if done is None:
                continue
            out.api_calls += done.api_calls
            with self.store.begin() as conn:
                outbox.complete(conn, self.tenant_id, action.key, done.ledger_ref or "done", now)
                if action.kind in ("hold", "release"):
                    source, reason = str(action.payload.get("source", "rule")), str(action.payload["reason"])
                    on = action.kind == "hold"
                    credit.record_hold(
                        conn, self.tenant_id, action.customer_id, on, source, reason, action.key, now
                    )
            if action.kind == "note":
                out.notes += 1
            else:
                (out.holds if action.kind == "hold" else out.releases).append(action.customer_id)

    def _already_done(self, action: Action, now: datetime, out: Outcome) -> bool:
        """Cancel a hold for a customer on hold now (a release for one off hold): an earlier night's action
        that waited (a transient failure, a firm-level stop) and tonight's plan for the same customer are two
        keys for one change, and the second must not be written again."""
        with self.store.begin() as conn:
            held = credit.holds(conn, self.tenant_id).get(action.customer_id)
            if held is None or held.on_hold != (action.kind == "hold"):
                return False
            state = "on" if held.on_hold else "off"
            reason = f"already done: the customer is {state} hold since {held.since:%Y-%m-%d}"
            if outbox.cancel(conn, self.tenant_id, action.key, reason, now):
                out.cancelled.append((action.key, reason))
        return True

    # -- connection-health notices to the firm (connector/health.py)
    def notices_only(self, now: datetime) -> Outcome:
        """Send only the due notices (a night whose sync failed still tells the firm what is wrong)."""
        out = Outcome()
        try:
            self._notices(now, out)
        except _Stop as stop:
            out.stopped = str(stop)
            if not (self.should_stop is not None and self.should_stop()):
                self._pause(stop, now, out)
        finally:
            self._close_mail()
        return out

    def _notice(self, action: Action, now: datetime) -> Callable[[], str]:
        p = action.payload
        rendered = digest.rendered_of(p)  # the morning digest, rendered when it was planned
        if rendered is None:
            shown = mail.NoticeView(
                str(p["firm"]), str(p["ledger"]), str(p["kind"]), str(p["message"]), action.key
            )
            rendered = mail.render(self.ctx.templates, "notice", shown)
        message = mail.build_message(rendered, str(p["email"]), action.key, self.settings.smtp)
        return self._mail_effect(message, now)

    def _notices(self, now: datetime, out: Outcome) -> None:
        with self.store.read() as conn:
            due = [a for a in outbox.due(conn, self.tenant_id, now) if a.kind == "notice"]
        for action in due:
            result = self._attempt(action, partial(self._notice, action, now), now, out)
            if result is None:
                continue
            with self.store.begin() as conn:
                outbox.complete(conn, self.tenant_id, action.key, result, now)
            out.notices.append(action.key)
