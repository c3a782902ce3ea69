"""An action awaiting approval (or a customer's next reminder) as the bookkeeper must judge it: the e-mail
built by the very code that sends it, or what a hold is about.

Guarantees:
- A reminder e-mail is drafted by `Executor.draft` (connector/run/execute.py), the function the send builds
  its message from: the same wording (each invoice at its own level, what was written before, in the firm's
  locale), the firm's sign-off, bank details and invoice copies, pay links fetched from the ledger, From, To
  and Cc, and the attachments by file name. Only the attachments' bytes are not fetched.
- As the send does, an awaiting reminder is looked up in today's decisions by its key: one the send would
  cancel (paid, credited or disputed since planning) says so with the reason, instead of an e-mail.
- Nothing is sent, claimed or stored; a problem (a template that does not render, a ledger that does not
  answer) is that one preview's one-line reason, never a broken page.
- Previews spend few ledger calls (`Sparing`): what the ledger said about an invoice's pay link or a
  customer's contact people is reused for `TTL` seconds (in this process, by previews only: the send always
  reads fresh); at most `PREVIEW_CALLS` calls a minute per firm; none when the firm's allowance is low (a
  `day_limit` health issue open, fewer than `DAY_RESERVE` calls left today, or a 429). A preview drafted
  without them says so (`Preview.spared`).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, cast

import structlog

from connector import mail
from connector.config import Settings
from connector.errors import CcmError
from connector.ledger import Ledger, RateLimited
from connector.model import Tenant
from connector.outbox import Action, Mode, Unsettled
from connector.payloads import email_of, lines_of, reason_of
from connector.reconcile import Snapshot
from connector.rules.dunning import Reminder
from connector.run.execute import Executor, Outcome
from connector.run.plan import TEMPLATES_DIR, Context, evaluate_tenant, why_not
from connector.store import Store
from connector.wiring import NotConnected

log = structlog.get_logger(__name__)
AS_SENT = "As it would go out now; the ledger is read again just before sending: a payment since cancels it."
NO_LEDGER = "The firm's ledger is not connected: pay links and invoice copies cannot be shown (nor sent)."
TTL = 300.0  # seconds a preview reuses what the ledger said about a pay link or a customer's contact people
PREVIEW_CALLS = 30  # ledger calls previews may make per firm per minute (Xero allows 60 in all)
DAY_RESERVE = 500  # fewer calls left in the ledger's day than this: previews make none


@dataclass(frozen=True, slots=True)
class Preview:
    action: Action
    customer: str
    what: str  # "reminder (first reminder) by e-mail", "credit hold", ...
    to: str  # the address, or "" when not an e-mail
    invoices: tuple[str, ...]
    rendered: mail.Rendered | None  # the e-mail, when the action sends one
    detail: str  # for a hold or a call: the rule that fired; for an e-mail that could not render: why
    cc: tuple[str, ...] = ()  # further recipients, as the send copies them
    attachments: tuple[str, ...] = ()  # the files attached, by name
    sender: str = ""  # the From header
    spared: str = ""  # what the ledger was not asked for this preview, and why ("" when nothing was left out)


def templates_for(settings: Settings, tenant: Tenant) -> mail.Templates:
    folder = settings.tenant_dir(tenant.id) / TEMPLATES_DIR
    return mail.environment(folder if folder.is_dir() else None)


def ledger_of(make: Callable[[Tenant], Ledger], tenant: Tenant) -> Ledger | None:
    """The firm's ledger as the send uses it, or None when it is not connected."""
    try:
        return make(tenant)
    except NotConnected:
        return None
    except CcmError as exc:  # a connection that cannot be used now: the previews say so
        log.info("web.preview.no_ledger", tenant=tenant.id, reason=str(exc))
        return None


@dataclass
class Memo:
    """What previews learnt from the ledgers (per tenant, kind and id, for `ttl` seconds) and the calls they
    made in the last minute per tenant. Process-wide (`MEMO`); thread-safe."""

    ttl: float = TTL
    per_minute: int = PREVIEW_CALLS
    clock: Callable[[], float] = time.monotonic
    answers: dict[tuple[str, str, str], tuple[float, Any]] = field(default_factory=dict, repr=False)
    spent: dict[str, deque[float]] = field(default_factory=dict, repr=False)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def get(self, key: tuple[str, str, str]) -> tuple[bool, Any]:
        with self.lock:
            found = self.answers.get(key)
            if found is None or found[0] <= self.clock():
                self.answers.pop(key, None)
                return False, None
            return True, found[1]

    def put(self, key: tuple[str, str, str], value: Any) -> None:
        with self.lock:
            now = self.clock()
            if len(self.answers) > 50_000:  # old answers of firms nobody looks at: dropped
                self.answers = {k: v for k, v in self.answers.items() if v[0] > now}
            self.answers[key] = (now + self.ttl, value)

    def take(self, tenant_id: str) -> bool:
        """One call of the tenant's previews' share of this minute; False when it is spent."""
        with self.lock:
            now = self.clock()
            starts = self.spent.setdefault(tenant_id, deque())
            while starts and starts[0] <= now - 60.0:
                starts.popleft()
            if len(starts) >= self.per_minute:
                return False
            starts.append(now)
            return True


MEMO = Memo()
SPENT_MINUTE = "previews' share of the ledger's calls this minute is spent: reload in a minute"
LOW_DAY = "the firm's ledger allowance is low today; it is kept for the night's sending"
SLOW_DOWN = "the ledger asked us to slow down; its calls are kept for the night's sending"


class Sparing:
    """The firm's ledger as a preview drafts with it: pay links and contact people from `memo` when known,
    else asked (within the budget) and remembered; never when `spend` is False (the allowance is low).
    What was left out is in `left_out` until `fresh()`; everything else is the ledger's own."""

    def __init__(self, ledger: Ledger, tenant_id: str, spend: bool = True, memo: Memo | None = None,
                 why: str = LOW_DAY) -> None:  # fmt: skip
        self.ledger = ledger
        self.tenant_id = tenant_id
        self.memo = memo if memo is not None else MEMO
        self.why = "" if spend else why  # why no call is made at all
        self.left_out: dict[str, str] = {}  # "pay links" | "Cc from the ledger" -> why
        self.calls = 0  # calls this preview ledger made

    def fresh(self) -> None:
        self.left_out = {}

    def __getattr__(self, name: str) -> Any:  # what drafting needs besides: the ledger's own
        return getattr(self.ledger, name)

    def online_invoice_url(self, invoice_id: str) -> str | None:
        return cast("str | None", self._ask("pay links", "url", invoice_id, "online_invoice_url", None))

    def extra_recipients(self, customer_id: str) -> list[str]:
        return list(self._ask("Cc from the ledger", "people", customer_id, "extra_recipients", []))

    def _ask(self, what: str, kind: str, ident: str, method: str, none: Any) -> Any:
        fetch = getattr(self.ledger, method, None)
        if not callable(fetch):
            return none
        key = (self.tenant_id, kind, ident)
        known, value = self.memo.get(key)
        if known:
            return value
        if self.why:
            self.left_out[what] = self.why
            return none
        if not self.memo.take(self.tenant_id):
            self.left_out[what] = SPENT_MINUTE
            return none
        self.calls += 1
        try:
            value = fetch(ident)
        except RateLimited:
            self.why = SLOW_DOWN
            self.left_out[what] = SLOW_DOWN
            return none
        self.memo.put(key, value)
        self._check_day()
        return value

    def _check_day(self) -> None:
        usage = getattr(self.ledger, "usage", None)
        left = usage().day_remaining if callable(usage) else None
        if left is not None and left < DAY_RESERVE:
            self.why = LOW_DAY


def sparing(ledger: Ledger | None, tenant_id: str, spend: bool, why: str = LOW_DAY) -> Ledger | None:
    """`ledger` as previews use it (`Sparing`), typed as the executor takes it; None stays None."""
    return None if ledger is None else cast(Ledger, Sparing(ledger, tenant_id, spend, why=why))


def spared_note(left_out: dict[str, str]) -> str:
    if not left_out:
        return ""
    whys = sorted(set(left_out.values()))
    return f"Shown without {' and '.join(sorted(left_out))} (they go out with it): {'; '.join(whys)}."


def executor(store: Store, settings: Settings, ctx: Context, ledger: Ledger | None) -> Executor:
    """The executor a preview drafts with: the send's, in dry run (it never claims nor sends)."""
    return Executor(store, settings, ctx, ledger, "preview", Mode.DRY_RUN)


def drafted(
    executor: Executor, action: Action, reminder: Reminder, snapshot: Snapshot, today: date,
    customer: str, what: str, invoices: tuple[str, ...],
) -> Preview:  # fmt: skip
    """One reminder e-mail as `executor` would send it on `today` (nothing is sent)."""
    to = email_of(action.payload) or ""
    spare = executor.ledger if isinstance(executor.ledger, Sparing) else None
    if spare is not None:
        spare.fresh()
    try:
        draft = executor.draft(action, reminder, snapshot, today, Outcome())
    except CcmError as exc:
        return Preview(action, customer, what, to, invoices, None, f"the e-mail cannot be shown: {exc}")
    note = AS_SENT if executor.ledger is not None else f"{AS_SENT} {NO_LEDGER}"
    first = draft.to[0] if draft.to else to
    spared = spared_note(spare.left_out) if spare is not None else ""
    return Preview(action, customer, what, first, invoices, draft.rendered, note, draft.to[1:],
                   draft.attachments, draft.sender, spared)  # fmt: skip


def awaiting(
    store: Store, settings: Settings, tenant: Tenant, waiting: Sequence[Unsettled], now: datetime,
    ledger: Ledger | None,
) -> list[Preview]:  # fmt: skip
    """Each action of `waiting` as it would go out at `now`: e-mails drafted as the send drafts them."""
    mails = [d for d in waiting if d.action.kind == "reminder" and d.action.channel == "email"]
    shown: dict[str, Preview] = {}
    if mails:
        try:
            ctx = Context.load(settings, tenant)
        except CcmError as exc:  # the firm's settings: no e-mail of it can go out, each says why
            shown = {d.action.key: _plain(d, f"the e-mail cannot be shown: {exc}") for d in mails}
        else:
            shown = _drafts(store, settings, ctx, mails, now, ledger)
    out = []
    for d in waiting:
        a = d.action
        if a.key in shown:
            out.append(shown[a.key])
        elif a.kind == "reminder" and a.channel == "ledger_email":
            out.append(_plain(d, "the ledger sends its own invoice e-mail for each invoice"))
        else:
            out.append(_plain(d, reason_of(a.payload) or a.reason or ""))
    return out


def _plain(d: Unsettled, detail: str) -> Preview:
    return Preview(d.action, d.customer, d.what, email_of(d.action.payload) or "", d.invoices, None,
                   detail)  # fmt: skip


def _drafts(
    store: Store, settings: Settings, ctx: Context, mails: Sequence[Unsettled], now: datetime,
    ledger: Ledger | None,
) -> dict[str, Preview]:  # fmt: skip
    today = ctx.calendar.local_date(now)
    fresh, snapshot = evaluate_tenant(store, ctx, today)  # as the executor re-evaluates before sending
    by_key = {r.key: r for r in fresh.reminders}
    drafter = executor(store, settings, ctx, ledger)
    found = {}
    for d in mails:
        reminder = by_key.get(d.action.key)
        if reminder is None:
            why = why_not(fresh, snapshot, lines_of(d.action.payload))
            found[d.action.key] = _plain(d, f"If it were sent now it would be cancelled: {why}")
            continue
        found[d.action.key] = drafted(drafter, d.action, reminder, snapshot, today, d.customer, d.what,
                                      d.invoices)  # fmt: skip
    return found
