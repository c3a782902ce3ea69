"""The Ledger protocol: the one extension point between ccm's core and a ledger's API.

An adapter pulls raw records page by page, writes notes and holds back idempotently, and turns webhooks into
Changes. Its errors say what the caller does next. Adapters register by name; `connector/` never imports one
directly.
"""

from __future__ import annotations

import importlib
import json
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from connector.errors import CcmError, NeedsPerson, TryLater

RawRecord = Mapping[str, Any]
# Per raw stream, every dotted source path a record may carry ("Contact.ContactID", "Allocations[].Amount").
RawSchema = Mapping[str, frozenset[str]]


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where an incremental pull resumes.

    `since`: records changed at or after this instant are still to be read (None: from the beginning).
    `token`: the adapter's own position inside one pull (a page number, a start position), opaque to the core.
    The core may lower `since` (never raise it); an adapter treats that as "re-read more", which is harmless.
    """

    since: datetime | None = None
    token: str | None = None

    def to_json(self) -> str:
        return json.dumps({"since": self.since.isoformat() if self.since else None, "token": self.token})

    @classmethod
    def from_json(cls, text: str) -> Cursor:
        data = json.loads(text)
        since = datetime.fromisoformat(data["since"]) if data.get("since") else None
        return cls(since=since, token=data.get("token"))


@dataclass(frozen=True, slots=True)
class Page:
    """One page of raw records of a stream, the cursor to resume after it, and what it cost."""

    records: Sequence[RawRecord]
    cursor: Cursor
    api_calls: int = 1
    deleted_ids: Sequence[str] = ()
    total_hint: int | None = None  # how many records the whole pull will bring, when the ledger says


@dataclass(frozen=True, slots=True)
class Change:
    """A ledger told us (webhook) that a record changed: sync that stream for that tenant soon."""

    tenant_external_id: str
    stream: str
    record_id: str
    operation: str = "update"
    occurred_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Rejected:
    """A webhook that must not be acted on; `status` is the HTTP answer to give."""

    reason: str
    status: int = 401


@dataclass(frozen=True, slots=True)
class Usage:
    """What a Ledger instance spent so far and what the ledger says is left (optional `usage()` method)."""

    calls: int = 0
    throttled: int = 0  # answers that were 429s
    day_remaining: int | None = None  # calls left in the ledger's day window, when it has one
    day_limit: int | None = None


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What a write-back did: `applied` False means an earlier write with the same key already did it."""

    applied: bool
    ledger_ref: str | None = None
    api_calls: int = 1


# ---- errors, typed by what the caller does next


class LedgerError(CcmError):
    """Base of every adapter error. Messages never contain tokens or secrets."""


class RateLimited(LedgerError, TryLater):
    """Wait `retry_after` seconds, then go on. `scope` is 'minute', 'day', 'concurrent' or 'app'."""

    def __init__(self, retry_after: float, scope: str = "minute", message: str = "") -> None:
        super().__init__(message or f"rate limited ({scope}); retry after {retry_after:.0f}s")
        self.retry_after = retry_after
        self.scope = scope


class Retriable(LedgerError, TryLater):
    """A transient failure (5xx, dropped connection): the same call may succeed later."""


class ServerError(Retriable):
    """The ledger answered with a 5xx: it is there, but failing (unlike a connection that failed)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def after_retries(ledger: str, last: LedgerError, seen: Sequence[LedgerError], what: str = "") -> LedgerError:
    """The error a call that failed every attempt raises: with 5xx answers among the attempts, how often the
    ledger gave each ("Xero answered 503 Service Unavailable 5 times"), whatever the last attempt hit (a
    connection the ledger closed after its 503 is not an outage of the network); else `last` as it was."""
    statuses = Counter(e.status for e in seen if isinstance(e, ServerError))
    if not isinstance(last, Retriable) or not statuses:
        return last
    answers = " and ".join(f"{status} {_phrase(status)} {_times(n)}" for status, n in statuses.most_common())
    others = [e for e in seen if not isinstance(e, ServerError)]
    tail = f"; {len(others)} other failure(s), the last: {others[-1]}" if others else ""
    return Retriable(f"{what + ': ' if what else ''}{ledger} answered {answers}{tail}")


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "(server error)"


def _times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"


class AuthExpired(LedgerError, NeedsPerson):
    """The connection can no longer authenticate: a person must reconnect. Other tenants go on."""


class Fatal(LedgerError, NeedsPerson):
    """Stop this tenant's run; retrying will not help until something is fixed."""


class Skippable(LedgerError):
    """One record cannot be processed; log it with the reason and go on."""

    def __init__(self, record_id: str, reason: str) -> None:
        super().__init__(f"record {record_id}: {reason}")
        self.record_id = record_id
        self.reason = reason


# ---- the protocol


@dataclass(frozen=True, slots=True)
class OAuthEndpoints:
    authorize_url: str
    token_url: str
    revoke_url: str | None = None


@runtime_checkable
class Ledger(Protocol):
    """What the core needs from a ledger. One instance serves one tenant."""

    def oauth_endpoints(self) -> OAuthEndpoints: ...

    def scopes(self) -> Sequence[str]: ...

    def pull(self, stream: str, cursor: Cursor | None) -> Iterator[Page]:
        """Raw records of `stream` changed since `cursor` (all of them when None), page by page, in order."""
        ...

    def add_note(self, ref: str, text: str, key: str) -> WriteResult: ...

    def set_hold(self, customer_ref: str, on: bool, reason: str, key: str) -> WriteResult: ...

    def send_via_ledger(self, invoice_ref: str, key: str) -> WriteResult: ...

    def parse_webhook(self, headers: Mapping[str, str], raw_body: bytes) -> list[Change] | Rejected: ...


# Optional Ledger methods the core uses when an adapter has them (looked up with getattr):
#   usage() -> Usage                          calls made, 429s, the ledger's day limit left
#   reminders_enabled() -> bool               the ledger's own reminders are on (customers chased twice)
#   online_invoice_url(invoice_id) -> str     the pay-online link put in reminders
#   invoice_pdf(invoice_id) -> bytes          the invoice as PDF, attached to reminders (run/extras.py)
#   extra_recipients(customer_id) -> list[str]   further addresses a reminder is copied to (Xero's
#                                             ContactPersons with IncludeInEmails)

WebhookParser = Callable[[Any, Mapping[str, str], bytes], "list[Change] | Rejected"]


@dataclass(frozen=True, slots=True)
class AdapterContext:
    """What a factory gets to build a Ledger for one tenant."""

    tenant_id: str
    external_id: str
    settings: Any = None
    services: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AdapterSpec:
    """A registered ledger: how to build it, its shipped mapping, and the shape of its raw records.

    `webhook(settings, headers, raw_body)` verifies and reads a delivery before any tenant is known (the
    Changes name the ledger's organisation ids); `event_streams` are the streams whose changes the ledger
    announces that way (the others are polled); `companions` names streams worth syncing along with an event
    stream (Xero: an invoice whose amount due changed usually means a payment, which has no event of its
    own); `refresh_idle_days` is how long an unused refresh token lives; `record_url(kind, ledger_id)` is the
    record's page in the ledger's own web app (kind: customer, invoice, credit_note, payment; None: no page).
    """

    name: str
    factory: Callable[[AdapterContext], Ledger]
    mapping: Path
    schema: RawSchema | None = None
    webhook: WebhookParser | None = None
    event_streams: frozenset[str] = frozenset()
    companions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    refresh_idle_days: int | None = None
    record_url: Callable[[str, str], str | None] | None = None


class UnknownLedger(LookupError):
    def __init__(self, name: str, known: Sequence[str]) -> None:
        listed = ", ".join(sorted(known)) or "none"
        super().__init__(f"no adapter registered for ledger {name!r} (known: {listed})")


_registry: dict[str, AdapterSpec] = {}
_ENTRY_POINT_GROUP = "ccm.adapters"
# The ledgers shipped with ccm: "module:attribute" of a function returning their AdapterSpec.
BUILTIN = {"xero": "adapters.xero:spec", "quickbooks": "adapters.quickbooks:spec"}


def register(spec: AdapterSpec) -> None:
    """Register (or replace) an adapter under its name."""
    _registry[spec.name] = spec


def _load_builtin(name: str) -> None:
    target = BUILTIN.get(name)
    if target is None or name in _registry:
        return
    module_name, attribute = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:  # not shipped yet in this build
            return
        raise
    register(getattr(module, attribute)())


def _load_entry_points() -> None:
    for ep in entry_points(group=_ENTRY_POINT_GROUP):
        if ep.name not in _registry:
            loaded = ep.load()
            spec = loaded() if callable(loaded) and not isinstance(loaded, AdapterSpec) else loaded
            register(spec)


def get(name: str) -> AdapterSpec:
    """The adapter registered as `name`, loading installed entry points on first miss."""
    _load_builtin(name)
    if name not in _registry:
        _load_entry_points()
    if name not in _registry:
        raise UnknownLedger(name, list(_registry))
    return _registry[name]


def names() -> list[str]:
    for name in BUILTIN:
        _load_builtin(name)
    _load_entry_points()
    return sorted(_registry)
