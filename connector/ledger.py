"""The Ledger protocol: the one extension point between ccm's core and a ledger's API.

An adapter pulls raw records page by page, writes notes and holds back idempotently, and turns webhooks into
Changes. Its errors say what the caller does next.

Invariants:
- `connector/` never imports an adapter (tests/test_import_graph.py): adapters are found only through the
  `ccm.adapters` entry points (the built-ins too, declared in pyproject.toml), each naming an `AdapterSpec`.
- An `AdapterSpec` carries everything a ledger contributes (factory, mapping, settings model, display name,
  connect flow, sandbox, limits, webhook parser), so the core names no ledger.
- An adapter gets typed `Services` (store, clock, vault), never a bag of names; it keeps tokens only in the
  vault, and connections are saved by the core (`connector.flow.save_grant`).
- docs/adding-a-ledger.md walks through adding one.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel

from connector.errors import CcmError, NeedsPerson, TryLater

if TYPE_CHECKING:
    from connector.config import Settings
    from connector.flow import ConnectFlow
    from connector.oauth import TokenVault
    from connector.store import Store

M = TypeVar("M", bound=BaseModel)

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
        """The cursor as the JSON text the sync log stores; `from_json` reads it back equal."""
        return json.dumps({"since": self.since.isoformat() if self.since else None, "token": self.token})

    @classmethod
    def from_json(cls, text: str) -> Cursor:
        """The cursor `to_json` wrote.

        Raises:
            ValueError: `text` is not JSON, or its `since` is not an ISO 8601 instant.
        """
        data = json.loads(text)
        since = datetime.fromisoformat(data["since"]) if data.get("since") else None
        return cls(since=since, token=data.get("token"))


@dataclass(frozen=True, slots=True)
class Page:
    """One page of raw records of a stream, the cursor to resume after it, and what it cost.

    Attributes:
        records: Raw records in the ledger's order; the mapping turns them into canonical ones.
        cursor: Resumes the pull right after this page; stored when the page is committed.
        api_calls: The ledger calls this page cost, counted in the run.
        deleted_ids: Ids of records the ledger reports deleted; marked deleted in the store.
        total_hint: How many records the whole pull will bring, when the ledger says (for progress).
    """

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
    """The error a call that failed every attempt raises, saying what the ledger answered.

    With 5xx answers among the attempts: a Retriable saying how often the ledger gave each ("Xero answered
    503 Service Unavailable 5 times"), whatever the last attempt hit (a connection the ledger closed after
    its 503 is not an outage of the network). Otherwise `last` as it was.

    Args:
        ledger: The ledger's display name, as the message says it ("Xero").
        last: The error of the last attempt.
        seen: The errors of every attempt, in order (`last` among them).
        what: The call that failed ("invoices page 3"), put before the message when given.

    Returns:
        The error to raise; never raises itself.
    """
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
    """Where a ledger's OAuth 2.0 authorization-code flow happens.

    `authorize_url` is the consent page a person is sent to, `token_url` where codes and refresh tokens are
    exchanged, `revoke_url` where a grant is revoked (None: the ledger has no revocation endpoint).
    """

    authorize_url: str
    token_url: str
    revoke_url: str | None = None


@runtime_checkable
class Ledger(Protocol):
    """What the core needs from a ledger. One instance serves one tenant (one connected organisation).

    Instances are built by the adapter's `AdapterSpec.factory` and hold the tenant's token source, pacing
    and retries: a method returns only after the ledger's rate limits and transient failures were waited
    out or retried as far as the adapter's policy goes.

    Errors are `LedgerError`s, typed by what the caller does next: `RateLimited` (wait `retry_after`
    seconds; scope "day" means the tenant's allowance is spent until the ledger's day turns), `Retriable`
    (the same call may succeed later), `AuthExpired` (a person must reconnect; other tenants go on),
    `Fatal` (retrying will not help until something is fixed), `Skippable` (one record cannot be
    processed). Anything else escaping a method is a bug. Messages never contain tokens or secrets.

    The write-backs (`add_note`, `set_hold`, `send_via_ledger`) are idempotent by `key`: the same call with
    the same key, again after a success or after any failure (a lost answer, a crash between the ledger's
    answer and the caller's commit), does the write at most once, and says so with `WriteResult.applied`.
    The outbox relies on this to replay ledger writes after a crash (`replay_safe`).

    Optional methods the core uses when an adapter has them are listed after this class.
    """

    def oauth_endpoints(self) -> OAuthEndpoints:
        """The ledger's OAuth endpoints for this tenant's connection (the adapter's settings decide them)."""
        ...

    def scopes(self) -> Sequence[str]:
        """The OAuth scopes ccm asks for: reading the records it syncs and the write-backs it makes."""
        ...

    def pull(self, stream: str, cursor: Cursor | None) -> Iterator[Page]:
        """Raw records of `stream` changed since `cursor`, page by page, oldest change first.

        The iterator is lazy: each page is fetched when the caller asks for it, so a caller that commits
        each page before asking for the next never loses one. Each page's `cursor` resumes the pull right
        after that page, and no two pages of one pull carry the same cursor (the sync engine stops the
        pull with LoopDetected if they do). A record may come again in a later page or pull (overlap
        re-reads are harmless); records the ledger reports deleted come as `Page.deleted_ids`.

        Args:
            stream: A raw stream name of this ledger ("invoices"), as the mapping names it.
            cursor: Where to resume; None reads every record of the stream (a full read).

        Raises:
            Fatal: The ledger has no stream `stream`, or answered in a way the adapter cannot read.
            RateLimited: A rate limit outlasted the adapter's waiting.
            Retriable: A transient failure outlasted the adapter's retries.
            AuthExpired: The tenant must reconnect.
        """
        ...

    def add_note(self, ref: str, text: str, key: str) -> WriteResult:
        """Write `text` as a note on a record in the ledger, once per `key`.

        Args:
            ref: The record, `kind:id` (invoice, customer, and what else the adapter supports) or a bare
                invoice id.
            text: The note; the adapter may cut it to the ledger's length limit.
            key: The idempotency key (the outbox action's key): a note already written with it is not
                written again.

        Returns:
            `applied` False when a note with this key was already there; `ledger_ref` the record (or note)
            written to.

        Raises:
            Fatal: `ref` is not a reference this adapter knows, or the ledger refused the note.
            Retriable: The ledger could not be reached or its answer was lost and could not be checked;
                calling again with the same key checks before writing.
        """
        ...

    def set_hold(self, customer_ref: str, on: bool, reason: str, key: str) -> WriteResult:
        """Put a customer on credit hold (`on`) or release it, with a note saying `reason`; once per `key`.

        How a hold is shown is the ledger's (Xero: a contact group; QuickBooks: a marked line in the
        customer's notes); the customer's own data is kept. Setting the state a customer already has
        changes nothing but the note.

        Args:
            customer_ref: The customer, `customer:id` or a bare customer id.
            on: True to put on hold, False to release.
            reason: Why, written in the note.
            key: The idempotency key (the outbox action's key).

        Returns:
            `applied` False when neither the hold state nor the note needed writing.

        Raises:
            Fatal: `customer_ref` does not name a customer, or the ledger refused the change.
            Retriable: As for `add_note`: calling again with the same key is safe.
        """
        ...

    def send_via_ledger(self, invoice_ref: str, key: str) -> WriteResult:
        """Have the ledger e-mail the invoice to the customer with its own template, once per `key`.

        Once per key like the other write-backs: a note on the invoice records the send, and the adapter
        covers a crash between the send and its note (an idempotency key the ledger honours, or a check of
        the invoice's delivery).

        Returns:
            `applied` False when the invoice was already sent with this key.

        Raises:
            Fatal: `invoice_ref` does not name an invoice, or the ledger refused to send it (no address).
            Retriable: As for `add_note`: calling again with the same key is safe.
        """
        ...

    def parse_webhook(self, headers: Mapping[str, str], raw_body: bytes) -> list[Change] | Rejected:
        """Verify a webhook delivery's signature on the raw body and read its events; never raises.

        The server's endpoint uses `AdapterSpec.webhook`, which does the same before any tenant is known;
        this method is that check for one tenant's instance (the contract suite runs it).

        Returns:
            The Changes it announces ([] for a ledger's intent-to-receive probe), or Rejected with the
            HTTP status to answer (401 unsigned or mis-signed, 400 unreadable). A delivery with one
            malformed event is rejected whole.
        """
        ...


# Optional Ledger methods the core uses when an adapter has them (looked up with getattr):
#   usage() -> Usage                          calls made, 429s, the ledger's day limit left
#   reminders_enabled() -> bool               the ledger's own reminders are on (customers chased twice)
#   online_invoice_url(invoice_id) -> str     the pay-online link put in reminders
#   invoice_pdf(invoice_id) -> bytes          the invoice as PDF, attached to reminders (run/extras.py)
#   extra_recipients(customer_id) -> list[str]   further addresses a reminder is copied to (Xero's
#                                             ContactPersons with IncludeInEmails)

WebhookParser = Callable[[Any, Mapping[str, str], bytes], "list[Change] | Rejected"]


class SourceClock(Protocol):
    """A clock a ledger runs on instead of real time (a sandbox's fast clock, `ccm serve`'s simulated one)."""

    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        ...

    @property
    def speed(self) -> float:
        """How many times as fast as real time it runs (0: it moves only when advanced)."""
        ...


@dataclass(frozen=True, slots=True)
class Clocked:
    """The time a ledger counts in: `now` for instants, `sleep` to wait (in the clock's seconds).

    `scope` names the clock for rate windows kept per process ("real", or one id per simulated clock), so
    calls counted on a fast clock never share a window with calls counted in real time.
    """

    now: Callable[[], datetime]
    sleep: Callable[[float], None]
    scope: str
    source: SourceClock | None = None


@dataclass(frozen=True, slots=True)
class Services:
    """What the core lends an adapter for one tenant, typed.

    Attributes:
        store: The tenant's store (the token vault lives in it).
        clock: The clock to run on instead of real time (a sandbox's, a simulated server's); None: real time.
        sleep: How to wait `seconds` of the clock's time; None: real sleep scaled by the clock's speed.
        vault: The token vault to use (one on the same clock); None: the adapter opens the store's.
    """

    store: Store
    clock: SourceClock | None = None
    sleep: Callable[[float], None] | None = None
    vault: TokenVault | None = None

    def clocked(self) -> Clocked:
        """The time to count in: `clock` (waiting at its speed, or moving it when stopped), else real time."""
        source = self.clock
        if source is None:
            return Clocked(lambda: datetime.now(UTC), self.sleep or time.sleep, "real")
        speed = float(getattr(source, "speed", 1.0) or 0.0)

        def wait(seconds: float) -> None:
            if speed > 0:
                time.sleep(seconds / speed)
            elif callable(advance := getattr(source, "advance", None)):
                advance(seconds)  # a stopped clock: waiting is moving it

        return Clocked(source.now, self.sleep or wait, f"clock-{id(source)}", source)


@dataclass(frozen=True, slots=True)
class AdapterContext:
    """What a factory gets to build a Ledger for one tenant.

    Attributes:
        tenant_id: ccm's tenant id.
        external_id: The ledger's id of the connected organisation (the connection's external id).
        settings: ccm's settings; the adapter's own section is `settings.ledger(name)` (or
            `ledger_settings(settings, name, Model)`, typed).
        services: What the core lends the adapter (store, clock, vault).
    """

    tenant_id: str
    external_id: str
    settings: Settings
    services: Services


@dataclass(frozen=True, slots=True)
class Limits:
    """What a ledger allows one app, as the adapter paces to it (shown by health and in the docs).

    Attributes:
        day_calls: Calls a day per organisation (None: no day limit).
        minute_calls: Calls a minute per organisation.
        concurrent: Requests in flight at once per organisation.

    (How long an unused refresh token lives is `AdapterSpec.refresh_idle_days`: the health check reads it.)
    """

    day_calls: int | None = None
    minute_calls: int | None = None
    concurrent: int | None = None


@dataclass(frozen=True, slots=True)
class RunningSandbox:
    """A ledger's local sandbox, started by its `SandboxSpec.start`.

    Attributes:
        settings: The ledger's settings pointing at the sandbox (URLs, client, CA), its settings model.
        consent: Follows an authorize URL as a person consenting would (the sandbox consents at once) and
            returns the callback's query parameters (code, state, and what else the ledger sends).
        stop: Stops the sandbox.
        handle: The sandbox's own controls (tests change its books through it).
    """

    settings: BaseModel
    consent: Callable[[str], Mapping[str, str]]
    stop: Callable[[], None]
    handle: object = None


class SandboxStart(Protocol):
    """Starts a ledger's sandbox in-process."""

    def __call__(self, *, seed: int, size: str, limits: bool, demo: bool = False) -> RunningSandbox:
        """Start the sandbox with a seeded firm of `size` (demo, small, large), its rate limits on or off.

        `demo` prepares it for `ccm demo` (e.g. online payments taken, so reminders carry pay links).
        """
        ...


@dataclass(frozen=True, slots=True)
class SandboxSpec:
    """A ledger's local sandbox: `start` one in-process, or `serve` one until interrupted (`ccm sandbox`)."""

    start: SandboxStart
    serve: Callable[[str, int, int, str], None]  # host, port, seed, size


@dataclass(frozen=True, slots=True)
class AdapterSpec:
    """A registered ledger: everything it contributes, so the core names no ledger.

    `webhook(settings, headers, raw_body)` verifies and reads a delivery before any tenant is known (the
    Changes name the ledger's organisation ids); `event_streams` are the streams whose changes the ledger
    announces that way (the others are polled); `companions` names streams worth syncing along with an event
    stream (Xero: an invoice whose amount due changed usually means a payment, which has no event of its
    own); `refresh_idle_days` is how long an unused refresh token lives; `record_url(kind, ledger_id)` is the
    record's page in the ledger's own web app (kind: customer, invoice, credit_note, payment; None: no page).

    Attributes:
        name: The registry name, as tenants and URLs say it ("xero").
        factory: Builds the Ledger for one tenant.
        mapping: The shipped mapping file (raw records -> canonical ones).
        display_name: The ledger's name in messages and pages ("Xero"); default: `name`.
        settings: The pydantic model of its settings, read from `[ledgers.<name>]` in ccm.toml (also
            `[<name>]`, the older spelling) and CCM_LEDGERS__<NAME>__<KEY>; None: it has none.
        connect: Its connect flow (`ccm connect`, the server's connect pages); None: it cannot be connected.
        sandbox: Its local sandbox (`ccm sandbox`, `ccm demo`); None: it has none.
        limits: What the ledger allows, as the adapter paces to it.
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
    display_name: str = ""
    settings: type[BaseModel] | None = None
    connect: ConnectFlow | None = None
    sandbox: SandboxSpec | None = None
    limits: Limits = Limits()

    @property
    def title(self) -> str:
        """The ledger's name as people read it: `display_name`, else the registry name."""
        return self.display_name or self.name


def ledger_settings(settings: Settings, name: str, model: type[M]) -> M:
    """The settings of ledger `name` from ccm's settings, as the adapter's own model.

    Raises:
        Fatal: The ledger's settings are of another model (a registration mix-up).
    """
    value = settings.ledger(name)
    if not isinstance(value, model):
        raise Fatal(f"the {name} adapter's settings are a {type(value).__name__}, not {model.__name__}")
    return value


def display_name(ledger: str) -> str:
    """The ledger's name as people read it ("Xero"); the name itself when no adapter is registered."""
    try:
        return get(ledger).title
    except UnknownLedger:
        return ledger


class UnknownLedger(LookupError):
    """No adapter is registered under the name asked for; the message lists the ones that are."""

    def __init__(self, name: str, known: Sequence[str]) -> None:
        listed = ", ".join(sorted(known)) or "none"
        super().__init__(f"no adapter registered for ledger {name!r} (known: {listed})")


_registry: dict[str, AdapterSpec] = {}
_ENTRY_POINT_GROUP = "ccm.adapters"
_scanned: list[bool] = []  # not empty once the installed entry points were loaded


def register(spec: AdapterSpec) -> None:
    """Register (or replace) an adapter under its name; `get(spec.name)` returns it from now on."""
    _registry[spec.name] = spec


def forget(name: str) -> None:
    """Drop the adapter registered as `name` (a test's ledger uninstalled): `get` looks for it afresh."""
    _registry.pop(name, None)


def _load_entry_points(again: bool = False) -> None:
    if _scanned and not again:
        return
    for ep in entry_points(group=_ENTRY_POINT_GROUP):
        if ep.name not in _registry:
            loaded = ep.load()
            spec = loaded() if callable(loaded) and not isinstance(loaded, AdapterSpec) else loaded
            if not isinstance(spec, AdapterSpec):
                raise TypeError(
                    f"entry point {ep.name} = {ep.value} is no AdapterSpec ({type(spec).__name__})"
                )
            register(spec)
    _scanned.append(True)


def get(name: str) -> AdapterSpec:
    """The adapter registered as `name`.

    Adapters come from the installed `ccm.adapters` entry points (the built-ins are registered there too,
    in pyproject.toml), loaded on first use; an unknown name loads them once more before giving up (a
    package installed meanwhile). Loading never replaces an adapter already registered (one a test
    registered with `register` wins).

    Raises:
        UnknownLedger: No installed entry point has this name.
    """
    if name not in _registry:
        _load_entry_points()
    if name not in _registry:
        _load_entry_points(again=True)
    if name not in _registry:
        raise UnknownLedger(name, list(_registry))
    return _registry[name]


def names() -> list[str]:
    """Every ledger ccm can use here, sorted: installed `ccm.adapters` entry points and registered ones."""
    _load_entry_points()
    return sorted(_registry)
