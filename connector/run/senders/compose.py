"""E-mails as they go out: a reminder's words (today's figures, pay links, what was written before, the
statutory interest line, the firm's sign-off) and a statement's, in the firm's locale.

The send and the previews (`ccm preview`, connector/web/preview.py) use these same functions, so what a
person previews is what goes out. A firm's locale that cannot be used fails the message as a template
problem (one line); a pay link the ledger cannot give leaves the reminder without it, unless the failure is
the firm's own (reconnect needed, the day's allowance spent), which propagates. Ledger calls are counted in
the `Outcome` passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import cached_property

import structlog

from connector import chasing, mail
from connector.config import Settings
from connector.firmprofile import FirmProfile, load_profile
from connector.ledger import Ledger, LedgerError
from connector.outbox import Action
from connector.payloads import ReminderPayload, StatementPayload
from connector.reconcile import Snapshot
from connector.reference_rates import stored as reference_rates
from connector.rules import interest
from connector.rules.dunning import Reminder
from connector.run import extras
from connector.run.plan import Context
from connector.run.senders.attempt import Outcome, firm_stops
from connector.store import Store
from connector.words import context, statements
from connector.words import locale as words
from connector.words.locale import LocaleProblem

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Draft:
    """A reminder e-mail as it goes out: its words, From, To then Cc, and its attachments' file names."""

    rendered: mail.Rendered
    sender: str
    to: tuple[str, ...]
    attachments: tuple[str, ...]


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


class Composer:
    """Renders one tenant's e-mails; keeps its profile, locale and what was written about each invoice."""

    def __init__(self, store: Store, settings: Settings, ctx: Context, ledger: Ledger | None) -> None:
        self.store = store
        self.settings = settings
        self.ctx = ctx
        self.ledger = ledger
        self.tenant_id = ctx.tenant.id
        # What we wrote about each due invoice, read once per run; invoices sent about since are read afresh
        self._wrote: dict[str, date] = {}
        self._wrote_read: frozenset[str] = frozenset()
        self._wrote_since: set[str] = set()

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

    def _locale(self) -> str:
        try:
            return self.locale
        except LocaleProblem as exc:  # the firm's setting: this message fails with it, one line
            raise mail.TemplateProblem(str(exc)) from None

    def draft(
        self, action: Action, reminder: Reminder, snapshot: Snapshot, today: date, out: Outcome
    ) -> Draft:
        """The e-mail reminder as it goes out, all but the attachments' bytes: what the send builds its
        message from and the web pages' previews show (connector/web/preview.py)."""
        planned = action.payload if isinstance(action.payload, ReminderPayload) else None
        template = planned.template if planned is not None and planned.template else ""
        rendered = self.compose(template or reminder.lines[0].level.template, reminder, snapshot, today, out)
        # the envelope (connector/run/extras.py): every recipient, the invoice PDFs, fetched before the claim
        main = (planned.email if planned is not None else None) or ""
        to, calls = extras.recipients(self.ledger, reminder.customer_id, main)
        out.api_calls += calls
        sender, _ = self.profile.sender(self.settings.smtp)
        return Draft(rendered, sender, to, extras.attachment_names(self.ledger, reminder))

    def compose(
        self, template: str, reminder: Reminder, snapshot: Snapshot, today: date, out: Outcome
    ) -> mail.Rendered:
        """The e-mail a reminder renders to, as it is sent (and as `ccm preview` shows it): pay links fetched,
        each invoice at its own level with what we wrote about it before, in the firm's locale."""
        pay_urls = self._pay_urls(reminder, out)
        wrote = self._wrote_about([line.item.invoice_id for line in reminder.lines])
        locale = self._locale()
        interest_line = self._interest_line(reminder, today)
        shown = view(reminder, snapshot, self.ctx, today, pay_urls, interest_line, locale, wrote)
        shown = extras.dressed(shown, self.profile, reminder, pay_urls, self.ledger)  # sign-off, bank, copies
        return mail.render(self.ctx.templates, template, shown)

    def compose_statement(self, action: Action) -> mail.Rendered:
        """The statement e-mail as it is sent (and as `ccm preview` shows it): words/statements.py."""
        if not isinstance(action.payload, StatementPayload):
            raise mail.TemplateProblem(f"{action.key} is no statement")
        locale = self._locale()
        return statements.render(
            self.ctx.templates, action.payload, action.key, self.ctx.tenant.name, locale, self.profile
        )

    # -- what we wrote about each invoice before (the template's "we wrote on ...")
    def read_written(self, reminders: Iterable[Reminder]) -> None:
        """Read what we wrote about every invoice of the run's reminders in one go (none: forget it)."""
        ids = frozenset(line.item.invoice_id for reminder in reminders for line in reminder.lines)
        if ids:
            with self.store.read() as conn:
                self._wrote = context.written(conn, self.tenant_id, ids)
        else:
            self._wrote = {}
        self._wrote_read, self._wrote_since = ids, set()

    def sent_about(self, invoice_ids: Iterable[str]) -> None:
        """These invoices' history changed (a reminder about them went out): read them afresh from now on."""
        self._wrote_since.update(invoice_ids)

    def _wrote_about(self, invoice_ids: list[str]) -> dict[str, date]:
        """`context.written` for these invoices: from the run's read while none was sent about since."""
        if self._wrote_read.issuperset(invoice_ids) and self._wrote_since.isdisjoint(invoice_ids):
            return {iid: self._wrote[iid] for iid in invoice_ids if iid in self._wrote}
        with self.store.read() as conn:
            return context.written(conn, self.tenant_id, invoice_ids)

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
        with words.writing_in(self._locale()):  # as the rest of the message (sends run outside a night too)
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
                if firm_stops(exc):
                    raise
                continue  # a reminder without a pay link is still a reminder
            out.api_calls += 1
            if url:
                urls[line.item.invoice_id] = str(url)
        return urls
