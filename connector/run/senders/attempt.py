"""One try of one outbox action, `Attempts.attempt(action, prepare)`: the only place that moves an action
through the outbox's states while executing (connector/outbox.py draws them), and that counts the outcome.

Invariants:
- `prepare` does everything that can fail before the effect (rendering, pay links, the SMTP session) and
  returns the effect; a failure there leaves the action unclaimed, never unknown. The claim is committed
  before the effect, and the window between claim and completion holds the effect alone.
- The next state is chosen by the error's kind: the firm's own problem (reconnect needed, the ledger's day
  allowance spent, the SMTP login refused) gives a claimed action back uncounted and stops the firm's run
  (`Stop`); a transient one (Retriable, RateLimited, SMTP 4xx, the server unreachable) moves it later
  (`outbox.retry_later`); a permanent one (a ledger's Fatal or Skippable, an SMTP 5xx, a template that does
  not render) fails it; a broken connection after the claim makes its outcome unknown. Anything else is a
  bug: it propagates and the action stays as it was (planned, or sending for `outbox.recover`).
- Every outcome is recorded in the run's `Outcome` exactly once, by the step that settled the action.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import partial
from typing import TypeVar

import structlog
from sqlalchemy import Connection

from connector import mail, outbox
from connector.ledger import AuthExpired, LedgerError, RateLimited, Retriable
from connector.outbox import Action
from connector.rules.calendar import SendCalendar
from connector.store import Store

log = structlog.get_logger(__name__)
RECONNECT_PAUSE = timedelta(hours=1)  # ledger writes wait this long after "reconnect needed"
MAIL_CHANNELS = ("email",)  # reminders by e-mail and notices: what a refused SMTP login stops
LEDGER_CHANNELS = ("ledger", "ledger_email")  # notes, holds, releases, the ledger's invoice e-mail
_RETRY = (mail.Transient, Retriable, RateLimited)  # SMTP 4xx, unreachable, a ledger's 5xx answers
_FAIL = (mail.MessageRefused, mail.TemplateProblem, LedgerError)  # Fatal, Skippable, SMTP 5xx, a template
_MID_SEND = (smtplib.SMTPException, OSError)  # after the claim: it may or may not have gone out
T = TypeVar("T")


@dataclass
class Outcome:
    """What one execution did, action by action (keys), and the ledger calls it made."""

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


class Stop(Exception):
    """A problem of the whole firm, not of one action: its run stops here, no action is failed by it.

    `until`: the firm's due actions on `channels` wait until then (uncounted), so a server does not run into
    the same wall at every tick (a refused login tried every 30 s, a ledger's allowance spent further).
    """

    def __init__(self, reason: str, until: datetime | None = None, channels: tuple[str, ...] = ()) -> None:
        super().__init__(reason)
        self.until = until
        self.channels = channels


def firm_stops(exc: Exception) -> bool:
    """Reconnect needed, or the ledger's allowance for the day spent: no later action of the firm can work."""
    return isinstance(exc, AuthExpired) or (isinstance(exc, RateLimited) and exc.scope == "day")


def next_day(calendar: SendCalendar, now: datetime) -> datetime:
    """When the firm's send window opens on its next day."""
    tomorrow = date.fromordinal(calendar.local_date(now).toordinal() + 1)
    return calendar.next_send_time(datetime.combine(tomorrow, calendar.window_start, tzinfo=calendar.zone))


def _mid_send(exc: BaseException) -> str:
    return f"the connection failed mid-send ({type(exc).__name__}): it may or may not have gone out"


class Attempts:
    """The outbox moves of one execution of one tenant, and their accounting in `out`.

    `refused_login`: what an SMTP login refused after the claim means for the firm (connector/run/senders/
    smtp.py records it as a health issue): the Stop to raise. `before_effect` is a test hook (the instant
    between claim and effect); `should_stop` is asked before each effect (a server shutting down, a lost
    lease: what is left goes out on the next run).
    """

    def __init__(
        self,
        store: Store,
        tenant_id: str,
        owner: str,
        out: Outcome,
        refused_login: Callable[[mail.LoginRefused, datetime], Stop],
        before_effect: Callable[[Action], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        self.store = store
        self.tenant_id = tenant_id
        self.owner = owner
        self.out = out
        self.refused_login = refused_login
        self.before_effect = before_effect
        self.should_stop = should_stop

    def stopping(self) -> bool:
        """The caller asked to stop (its lease lost, a shutdown): another's sends are not ours to touch."""
        return self.should_stop is not None and self.should_stop()

    def attempt(self, action: Action, prepare: Callable[[], Callable[[], T]], now: datetime) -> T | None:
        """Prepare an action, claim it, perform it; its result, or None when it was not done (taken by another
        executor, or settled by its failure: later, failed, or unknown when it may have happened).

        `prepare` does everything that can fail before the effect and returns the effect. Raises `Stop` for
        the firm's own problems, and whatever is no failure of an action (a bug), the action left as it was.
        """
        if self.stopping():
            raise Stop("the server is shutting down; what is left goes out on the next run")
        try:
            effect = prepare()
        except Stop:
            raise
        except Exception as exc:
            if not self._settle(action, exc, now, claimed=False):
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
            if not self._settle(action, exc, now, claimed=True):
                raise
        return None

    def _settle(self, action: Action, exc: Exception, now: datetime, claimed: bool) -> bool:
        """Settle an action by what its failure means next; False when `exc` is no failure of an action."""
        reason = str(exc)
        if isinstance(exc, mail.LoginRefused):  # the session re-opened after the claim, and was refused
            if claimed:
                self._finish(partial(outbox.release, counted=False), action, reason, now)
            raise self.refused_login(exc, now)
        if firm_stops(exc):
            if claimed:
                self._finish(partial(outbox.release, counted=False), action, reason, now)
            wait = timedelta(seconds=exc.retry_after) if isinstance(exc, RateLimited) else RECONNECT_PAUSE
            raise Stop(reason, now + wait, LEDGER_CHANNELS)
        if isinstance(exc, _RETRY):
            at_least = now + timedelta(seconds=exc.retry_after) if isinstance(exc, RateLimited) else None
            with self.store.begin() as conn:
                state = outbox.retry_later(conn, self.tenant_id, action.key, reason, now, at_least)
            (self.out.failed if state is outbox.State.FAILED else self.out.deferred).append(
                (action.key, reason)
            )
        elif isinstance(exc, _FAIL):
            self._finish(outbox.fail, action, reason, now)
            self.out.failed.append((action.key, reason))
        elif claimed and isinstance(exc, _MID_SEND):
            self._finish(outbox.mark_unknown, action, _mid_send(exc), now)
            self.out.unknown.append(action.key)
        else:
            return False
        log.info("action.not_done", tenant=self.tenant_id, key=action.key, reason=reason)
        return True

    def _finish(self, step: Callable[..., bool], action: Action, reason: str, now: datetime) -> None:
        with self.store.begin() as conn:
            step(conn, self.tenant_id, action.key, reason, now)

    def complete(
        self,
        action: Action,
        result: str,
        now: datetime,
        history: Sequence[tuple[str, int]] = (),
        sent_on: date | None = None,
        also: Callable[[Connection], None] | None = None,
    ) -> None:
        """Record a performed effect (sending → sent); `also` writes what goes with it, in the same commit."""
        with self.store.begin() as conn:
            outbox.complete(conn, self.tenant_id, action.key, result, now, history, sent_on)
            if also is not None:
                also(conn)

    def defer(self, action: Action, when: datetime, reason: str, now: datetime) -> None:
        """Move a due action to `when`, untried (attempts untouched)."""
        with self.store.begin() as conn:
            outbox.defer(conn, self.tenant_id, action.key, when, reason, now)
        self.out.deferred.append((action.key, reason))

    def cancel(self, conn: Connection, action: Action, reason: str, now: datetime) -> None:
        """Drop an action not started (in the caller's transaction); counted when it was still open."""
        if outbox.cancel(conn, self.tenant_id, action.key, reason, now):
            self.out.cancelled.append((action.key, reason))

    def pause(self, stop: Stop, now: datetime) -> None:
        """Hold back the firm's due actions the stop concerns until it may be over (attempts untouched)."""
        if stop.until is None:
            return
        reason = f"waiting until {stop.until:%Y-%m-%d %H:%M} UTC: {stop}"
        shown = {key for key, _ in self.out.deferred}
        with self.store.begin() as conn:
            for action in outbox.due(conn, self.tenant_id, now):
                if action.channel in stop.channels and outbox.defer(
                    conn, self.tenant_id, action.key, stop.until, reason, now
                ) and action.key not in shown:  # fmt: skip
                    self.out.deferred.append((action.key, reason))
