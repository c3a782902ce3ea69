"""Executing due outbox actions: re-check, claim, deliver, record; at most once, nothing lost silently.

Just before sending, the tenant is re-synced (when a re-sync is given) and re-evaluated: a reminder whose
invoices were paid, credited or disputed since planning is cancelled with the reason, and what remains due
is re-planned under a new key. Each action is claimed (committed) before its effect and completed after it;
the caller holds the tenant's run lease, so anything left mid-send by a dead process is settled first
(unknown for e-mail, retried for ledger writes, which carry idempotency keys).
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import partial

import structlog

from adapters.base import AuthExpired, Fatal, Ledger, LedgerError, Skippable
from connector import chasing, credit, mail, outbox
from connector.config import Settings
from connector.outbox import Action, Mode
from connector.reconcile import Basis, Snapshot
from connector.rules import interest
from connector.rules.dunning import Reminder
from connector.run.plan import Context, actions_for, evaluate_tenant, why_not
from connector.store import Store, synclog
from connector.sync import SyncResult

log = structlog.get_logger(__name__)
# Channels that reach the customer (a call task reaches the bookkeeper), and the ledger's write-backs.
CONTACTING = ("email", "ledger_email")
LEDGER_KINDS = ("note", "hold", "release")
RECHECK_AGAIN = timedelta(minutes=15)  # a reminder whose re-check failed waits this long to try again


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


class _Stop(Exception):
    pass


def _mid_send(exc: BaseException) -> str:
    return f"the connection failed mid-send ({type(exc).__name__}): it may or may not have gone out"


def _money(amount: Decimal, currency: str) -> str:
    return f"{amount:,.2f} {currency}"


def view(
    reminder: Reminder,
    snapshot: Snapshot,
    ctx: Context,
    today: date,
    pay_urls: dict[str, str],
    interest_line: str | None = None,
) -> mail.ReminderView:
    """What the template sees, from today's figures (not the planning night's)."""
    customer = snapshot.customers_by_id[reminder.customer_id]
    totals: dict[str, Decimal] = {}
    for line in reminder.lines:
        totals[line.item.outstanding.currency] = (
            totals.get(line.item.outstanding.currency, Decimal(0)) + line.item.outstanding.amount
        )
    top = max(reminder.lines, key=lambda line: line.level.number).level
    return mail.ReminderView(
        firm=ctx.tenant.name, customer=customer.name, level=top.number, level_name=top.name,
        lines=tuple(
            mail.LineView(
                line.item.number or line.item.invoice_id, line.item.due_date, line.days_overdue,
                _money(line.item.outstanding.amount, line.item.outstanding.currency), line.level.name,
                pay_urls.get(line.item.invoice_id),
            )
            for line in reminder.lines
        ),
        totals=tuple(_money(v, k) for k, v in sorted(totals.items())), today=today, reference=reminder.key,
        contact_email=customer.email, interest_line=interest_line,
    )  # fmt: skip


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
            self._notes(now, out)
            self._notices(now, out)
        except _Stop as stop:
            out.stopped = str(stop)
        finally:
            self._close_mail()
        return out

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
        when = self.ctx.calendar.next_send_time(now)
        if next_day:
            tomorrow = self.ctx.calendar.local_date(now).toordinal() + 1
            when = self.ctx.calendar.next_send_time(
                datetime.combine(date.fromordinal(tomorrow), self.ctx.calendar.window_start,
                                 tzinfo=self.ctx.calendar.zone)
            )  # fmt: skip
        with self.store.begin() as conn:
            outbox.defer(conn, self.tenant_id, action.key, when, reason, now)
        out.deferred.append((action.key, reason))

    def _check_stop(self) -> None:
        if self.should_stop is not None and self.should_stop():
            raise _Stop("the server is shutting down; what is left goes out on the next run")

    def _attempt(self, action: Action, effect: Callable[[], str], now: datetime, out: Outcome) -> str | None:
        """Claim a message's action and perform it; its result, or None when it was not done (taken by
        another executor, or failed: settled as retry-later, failed, or unknown when it may have gone)."""
        self._check_stop()
        with self.store.begin() as conn:
            if not outbox.claim(conn, self.tenant_id, action.key, self.owner, now):
                return None  # another executor has it
        if self.before_effect is not None:
            self.before_effect(action)
        try:
            return effect()
        except (mail.Transient, LedgerError) as exc:
            self._settle_error(action, exc, now, out)
        except (mail.Refused, mail.TemplateProblem) as exc:
            self._finish(outbox.fail, action, str(exc), now)
            out.failed.append((action.key, str(exc)))
        except (smtplib.SMTPException, OSError) as exc:
            self._finish(outbox.mark_unknown, action, _mid_send(exc), now)
            out.unknown.append(action.key)
        return None

    def _deliver(
        self, action: Action, reminder: Reminder, snapshot: Snapshot, today: date, now: datetime, out: Outcome
    ) -> bool:
        result = self._attempt(action, lambda: self._effect(action, reminder, snapshot, today, out), now, out)
        if result is None:
            return False
        history = [(line.item.invoice_id, line.level.number) for line in reminder.lines]
        with self.store.begin() as conn:
            outbox.complete(conn, self.tenant_id, action.key, result, now, history, today)
            if action.channel in CONTACTING:
                outbox.plan(
                    conn, self.tenant_id, self._note_actions(action, reminder, today, now), Mode.AUTO, now
                )
        (out.tasks if action.channel == "call_task" else out.sent).append(action.key)
        log.info("reminder.sent", tenant=self.tenant_id, key=action.key, channel=action.channel)
        return True

    def _effect(
        self, action: Action, reminder: Reminder, snapshot: Snapshot, today: date, out: Outcome
    ) -> str:
        if action.channel == "call_task":
            return "listed for the bookkeeper"
        if action.channel == "ledger_email":
            if self.ledger is None:
                raise Fatal("no ledger connection to send the ledger's own invoice e-mail")
            for line in reminder.lines:
                done = self.ledger.send_via_ledger(
                    line.item.invoice_id, f"{action.key}:{line.item.invoice_id}"
                )
                out.api_calls += done.api_calls
            return "sent by the ledger"
        pay_urls = self._pay_urls(reminder, out)
        template = str(action.payload.get("template") or reminder.lines[0].level.template)
        shown = view(reminder, snapshot, self.ctx, today, pay_urls, self._interest_line(reminder, today))
        rendered = mail.render(self.ctx.templates, template, shown)
        to = str(action.payload.get("email") or "")
        message = mail.build_message(rendered, to, action.key, self.settings.smtp)
        return self._mail().send(message)

    def _mail(self) -> mail.Session:
        if self._session is None:
            self._session = mail.Session(self.settings.smtp)
        return self._session

    def _interest_line(self, reminder: Reminder, today: date) -> str | None:
        """The statutory interest line, when the tenant claims it, the level shows it and the debt is B2B."""
        regime = self.settings.credit.statutory_interest
        if regime == "off" or not any(line.level.interest for line in reminder.lines):
            return None
        with self.store.read() as conn:
            business = chasing.is_business(conn, self.tenant_id, reminder.customer_id)
        if not business:
            return None
        rates = interest.load_rates(self.settings.tenant_dir(self.tenant_id) / "reference_rates.yaml")
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
            except LedgerError:
                continue  # a reminder without a pay link is still a reminder
            out.api_calls += 1
            if url:
                urls[line.item.invoice_id] = str(url)
        return urls

    def _settle_error(self, action: Action, exc: Exception, now: datetime, out: Outcome) -> None:
        if isinstance(exc, Skippable):
            self._finish(outbox.fail, action, str(exc), now)
            out.failed.append((action.key, str(exc)))
            return
        self._finish(outbox.release, action, str(exc), now)
        out.deferred.append((action.key, str(exc)))
        if isinstance(exc, AuthExpired | Fatal):
            raise _Stop(str(exc))

    def _finish(self, step: Callable[..., bool], action: Action, reason: str, now: datetime) -> None:
        with self.store.begin() as conn:
            step(conn, self.tenant_id, action.key, reason, now)

    # -- notes written back to the ledger
    def _note_actions(
        self, action: Action, reminder: Reminder, today: date, now: datetime
    ) -> list[outbox.NewAction]:
        if self.ledger is None:
            return []
        how = (
            f"to {action.payload.get('email')}"
            if action.channel == "email"
            else "by the ledger's invoice e-mail"
        )
        notes = []
        for line in reminder.lines:
            text = (f"Reminder {line.level.number} ({line.level.name}) sent {how} on {today} by ccm "
                    f"[{action.key}]")  # fmt: skip
            notes.append(outbox.NewAction(
                key=f"note:{action.key}:{line.item.invoice_id}"[:128], kind="note", channel="ledger",
                customer_id=action.customer_id, payload={"ref": line.item.invoice_id, "text": text},
                send_after=now, replay_safe=True,
            ))  # fmt: skip
        return notes

    def _notes(self, now: datetime, out: Outcome) -> None:
        """Ledger write-backs: notes on invoices, holds and releases on customers (all idempotent by key)."""
        if self.ledger is None:
            return
        with self.store.read() as conn:
            due = [a for a in outbox.due(conn, self.tenant_id, now) if a.kind in LEDGER_KINDS]
        for action in due:
            self._check_stop()
            with self.store.begin() as conn:
                if not outbox.claim(conn, self.tenant_id, action.key, self.owner, now):
                    continue
            if self.before_effect is not None:
                self.before_effect(action)
            try:
                if action.kind == "note":
                    done = self.ledger.add_note(
                        str(action.payload["ref"]), str(action.payload["text"]), action.key
                    )
                else:
                    on = action.kind == "hold"
                    done = self.ledger.set_hold(
                        action.customer_id, on, str(action.payload["reason"]), action.key
                    )
            except LedgerError as exc:
                self._settle_error(action, exc, now, out)
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

    # -- connection-health notices to the firm (connector/health.py)
    def notices_only(self, now: datetime) -> Outcome:
        """Send only the due notices (a night whose sync failed still tells the firm what is wrong)."""
        out = Outcome()
        try:
            self._notices(now, out)
        except _Stop as stop:
            out.stopped = str(stop)
        finally:
            self._close_mail()
        return out

    def _notice(self, action: Action) -> str:
        p = action.payload
        shown = mail.NoticeView(
            str(p["firm"]), str(p["ledger"]), str(p["kind"]), str(p["message"]), action.key
        )
        rendered = mail.render(self.ctx.templates, "notice", shown)
        return self._mail().send(
            mail.build_message(rendered, str(p["email"]), action.key, self.settings.smtp)
        )

    def _notices(self, now: datetime, out: Outcome) -> None:
        with self.store.read() as conn:
            due = [a for a in outbox.due(conn, self.tenant_id, now) if a.kind == "notice"]
        for action in due:
            result = self._attempt(action, partial(self._notice, action), now, out)
            if result is None:
                continue
            with self.store.begin() as conn:
                outbox.complete(conn, self.tenant_id, action.key, result, now)
            out.notices.append(action.key)
