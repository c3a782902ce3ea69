"""The fault matrix: `ccm run` on both sandboxes while the ledger or the mail server misbehaves (issue 14).

Each case seeds the same small firm in a fresh sandbox (Xero or QuickBooks, clocks pinned), connects it through
the ledger's real OAuth flow, and runs the real CLI twice: at T1 with one fault injected, then at T2 (the next
morning, so whatever was deferred is due) with the faults cleared. A clean run of the same firm at the same two
instants is the reference. Afterwards:

- the store matches the clean run (outbox states, reminder history, holds), but for failures a person must see;
- nothing went out twice: e-mails per action key at the SMTP server, notes per key and hold marks per customer
  in the ledger's own books;
- nothing is stuck: no action is left `sending`, and none is planned and overdue;
- every failure that needs a person is visible in what the CLI prints (`visible`, the one place that reads it).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from adapters.quickbooks import sandbox as qbo_sandbox
from adapters.quickbooks.sandbox.faults import throttle_xml
from adapters.quickbooks.writeback import HOLD_MARKER
from adapters.sandbox.clock import SandboxClock
from adapters.sandbox.faults import Faults
from adapters.sandbox.generator import FirmSize, generate
from adapters.xero import sandbox as xero_sandbox
from connector import outbox
from connector.cli.app import out as cli_out
from connector.config import Settings, load_settings
from connector.model import Tenant
from connector.outbox import State
from connector.store import Store
from connector.store.schema import credit_holds, reminder_history
from tests.e2e.sandboxes import HOLD_GROUP, LONDON, QuickBooksSide, Side, XeroSide
from tests.smtpfaults import FaultyInbox, faulty_smtp_server, per_key
from tests.test_cli import ccm

SEED = 5
SIZE = FirmSize(customers=16, invoices=110, payments=80)  # small: 8 faults x 2 ledgers, ~2 minutes in all
SANDBOX_NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # a Monday: the firm's books are made as of this day
T1 = "2026-11-24T09:30:00+00:00"  # Tuesday morning in London: the faulted night
T2 = "2026-11-25T09:30:00+00:00"  # Wednesday morning: faults cleared, what was deferred is due
PASSWORD = "smtp-right-14"  # the mail server takes this login; the refused-login fault changes it
CREDIT = "version: 1\nrules:\n  - {when: overdue, days: 30, min_amount: 200}\n"
TENANT = "firm"
WRITES = {"xero": r"^(PUT|POST|DELETE) ", "quickbooks": r"^POST (?!.*/query$)"}
TOKEN_PATH = {"xero": r"^POST /connect/token$", "quickbooks": r"^POST /oauth2/v1/tokens/bearer$"}


@dataclass
class World:
    """One seeded firm: its sandbox, the mail server, and ccm's home (the CLI reads its settings from the env)."""

    ledger: str
    side: Side
    clock: SandboxClock
    faults: Faults
    inbox: FaultyInbox
    home: Path
    settings: Settings

    def store(self) -> Store:
        return Store.open(self.settings.db_url)


def _sandbox(ledger: str, clock: SandboxClock, faults: Faults) -> Side:
    firm = generate(SEED, SIZE, today=clock.now().date())
    if ledger == "xero":
        return XeroSide(xero_sandbox.start(firm, clock=clock, limits=False, faults=faults))
    return QuickBooksSide(qbo_sandbox.start(firm, seed=SEED, clock=clock, limits=False, faults=faults))


def _env(side: Side, inbox: FaultyInbox) -> dict[str, str]:
    h = side.handle
    env = {"CCM_SMTP__HOST": inbox.host, "CCM_SMTP__PORT": str(inbox.port), "CCM_SMTP__USERNAME": "firm",
           "CCM_SMTP__PASSWORD": PASSWORD, "CCM_SMTP__ALLOW_PLAINTEXT_AUTH": "true",
           "CCM_SMTP__FROM_ADDRESS": "accounts@firm.example", "CCM_SMTP__TIMEOUT_SECONDS": "5",
           "CCM_SYNC__OVERLAP_SECONDS": "0", "CCM_SERVE__SAFE_NIGHTS": "0"}  # fmt: skip
    if isinstance(side, XeroSide):
        prefix = "CCM_XERO__"
        env |= {"CCM_XERO__LOGIN_URL": h.base_url, "CCM_XERO__IDENTITY_URL": h.base_url,
                "CCM_XERO__PACING": "false"}  # fmt: skip
    else:
        prefix = "CCM_QUICKBOOKS__"
        env |= {"CCM_QUICKBOOKS__AUTHORIZE_URL": h.authorize_url, "CCM_QUICKBOOKS__TOKEN_URL": h.token_url,
                "CCM_QUICKBOOKS__REVOKE_URL": h.revoke_url, "CCM_QUICKBOOKS__PACING": "false"}  # fmt: skip
    return env | {f"{prefix}CLIENT_ID": h.client_id, f"{prefix}CLIENT_SECRET": h.client_secret,
                  f"{prefix}API_URL": h.base_url, f"{prefix}CA_BUNDLE": str(h.ca_path)}  # fmt: skip


@contextmanager
def opened(ledger: str, home: Path, env: pytest.MonkeyPatch) -> Iterator[World]:
    """The seeded firm in a fresh sandbox, connected, with its mail server; ccm's settings in the env."""
    clock = SandboxClock(SANDBOX_NOW)
    faults = Faults(seed=SEED)
    side = _sandbox(ledger, clock, faults)
    try:
        with faulty_smtp_server(password=PASSWORD) as inbox:
            env.setenv("CCM_HOME", str(home))
            for name, value in _env(side, inbox).items():
                env.setenv(name, value)
            settings = load_settings(None)
            tenant = Tenant(TENANT, f"Firm on {ledger}", ledger, *LONDON)
            store = Store.open(settings.db_url)
            try:
                side.connect(settings, store, tenant)
            finally:
                store.close()
            rules = settings.tenant_dir(TENANT) / "credit.yaml"
            rules.parent.mkdir(parents=True, exist_ok=True)
            rules.write_text(CREDIT)
            yield World(ledger, side, clock, faults, inbox, home, settings)
    finally:
        side.handle.stop()


@pytest.fixture
def world(request: pytest.FixtureRequest, home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setattr(cli_out, "_width", 400)  # whole keys in the CLI's tables
    with opened(request.param, home, monkeypatch) as running:
        yield running


# ---- what the books, the mail server and the store hold after the two nights

DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
HOLD_KINDS = ("hold", "release")


HOLD_NOTE = re.compile(  # Xero's History note and QuickBooks' Attachable of a hold or a release
    r"^(ccm: (?:put on|released from) credit hold|Credit hold (?:placed|released) by ccm)[.:].*"
    r"\[ccm:hold-[0-9a-f]+\]$",
    re.S,
)


def _blank(text: str) -> str:
    """A note's text with its dates blanked; a hold's note only as what it did: a hold is decided afresh
    each night (its key and reason carry that night's date and days overdue), so a hold a fault put off is
    written, once, under the next night's key and words."""
    return HOLD_NOTE.sub(r"\1", DATE.sub("D", text))


def ledger_notes(side: Side) -> Counter[tuple[str, str]]:
    """Every note in the ledger's own books, as (record id, text with its dates blanked), counted."""
    found: Counter[tuple[str, str]] = Counter()
    if isinstance(side, XeroSide):
        with side.book.lock:
            for record_id, notes in side.book.history.items():
                found.update((record_id, _blank(n.details)) for n in notes if "ccm" in n.details)
        return found
    company = side.company
    with company.lock:
        for row in company.tables["Attachable"].by_id.values():
            if row.deleted:
                continue
            for ref in row.doc.get("AttachableRef") or []:
                entity = ref.get("EntityRef") or {}
                found[(str(entity.get("value")), _blank(str(row.doc.get("Note", ""))))] += 1
    return found


def hold_marks(side: Side) -> dict[str, int]:
    """Per customer on hold in the ledger's books, how many hold marks it carries (one, or a duplicate)."""
    if isinstance(side, XeroSide):
        with side.book.lock:
            marks: Counter[str] = Counter()
            for group in side.book.groups.values():
                if group.name == HOLD_GROUP and group.status == "ACTIVE":
                    marks.update(group.members)
            return dict(marks)
    company = side.company
    with company.lock:
        ids = [row.id for row in company.tables["Customer"].by_id.values() if not row.deleted]
    counts = {str(i): sum(line.startswith(HOLD_MARKER) for line in side.customer_notes(str(i)).split("\n"))
              for i in ids}  # fmt: skip
    return {i: n for i, n in counts.items() if n}


@dataclass(frozen=True)
class Facts:
    """What two nights left behind, where each thing lives (store, mail server, ledger books)."""

    states: dict[str, State]  # outbox: key -> state, of reminders, notes and notices (keys fixed by content)
    changes: Counter[tuple[str, str]]  # outbox: (hold|release, customer) written (their keys carry the day)
    waiting: frozenset[str]  # outbox: keys of actions failed or unknown, of every kind (a person must act)
    history: frozenset[tuple[str, str, int, str]]  # reminder history: (customer, invoice, level, action key)
    holds: dict[str, bool]  # credit_holds: customer -> on hold
    emails: dict[str, int]  # at the SMTP server: action key -> messages accepted
    notes: Counter[tuple[str, str]]  # in the ledger: (record, text) -> notes
    marks: dict[str, int]  # in the ledger: customer -> hold marks
    stuck: list[str]  # actions left sending, or planned and overdue at T2


def facts(world: World) -> Facts:
    store = world.store()
    at = datetime.fromisoformat(T2)
    try:
        with store.read() as conn:
            actions = outbox.actions(conn, TENANT)
            history = conn.execute(select(reminder_history).where(reminder_history.c.tenant_id == TENANT))
            held = conn.execute(select(credit_holds).where(credit_holds.c.tenant_id == TENANT))
            rows = frozenset((r.customer_id, r.invoice_id, r.level, r.action_key) for r in history)
            holds = {r.customer_id: r.on_hold for r in held}
    finally:
        store.close()
    stuck = [f"{a.key} {a.state}" for a in actions if a.state is State.SENDING
             or (a.state is State.PLANNED and a.send_after <= at)]  # fmt: skip
    keyed = {a.key: a.state for a in actions if a.kind not in HOLD_KINDS}
    changes = Counter(
        (str(a.kind), a.customer_id) for a in actions if a.kind in HOLD_KINDS and a.state is State.SENT
    )
    waiting = frozenset(a.key for a in actions if a.state in (State.FAILED, State.UNKNOWN))
    return Facts(keyed, changes, waiting, rows, holds, per_key(world.inbox),
                 ledger_notes(world.side), hold_marks(world.side), stuck)  # fmt: skip


# ---- what a person sees


@dataclass
class Visible:
    """What the command line shows a person: actions waiting for one (by key, and where), health issues."""

    actions: dict[str, set[str]] = field(default_factory=dict)  # key -> where it was shown
    health: set[str] = field(default_factory=set)  # health issue kinds `ccm run` printed
    stopped: list[str] = field(default_factory=list)  # "<tenant> stopped: ..." lines


NEED_A_PERSON = re.compile(r"^  \S+: (?:FAILED|UNKNOWN) .*`ccm outbox (?:retry|resolve) (\S+)`", re.M)
HEALTH = re.compile(r"^\[health\] \S+: (\w+):", re.M)
PROBLEM = re.compile(r"^  \S+: PROBLEM (\w+):", re.M)  # `ccm nights`: a firm's health problem


def visible(capsys: pytest.CaptureFixture[str], run_output: str) -> Visible:
    """Everything a person can see of the failures: the "need a person" lines and health issues of a
    `ccm run`'s output, and `ccm outbox list --state failed --state unknown`. The one place that reads CLI
    output for failures: `ccm nights` shows them too, with the firm's health problems."""
    seen = Visible()
    for key in NEED_A_PERSON.findall(run_output):
        seen.actions.setdefault(key, set()).add("ccm run")
    seen.health.update(HEALTH.findall(run_output))
    seen.stopped.extend(line for line in run_output.splitlines() if " stopped: " in line)
    code, out, err = ccm(
        capsys, "outbox", "list", "--state", "failed", "--state", "unknown", "--format", "json"
    )
    assert code == 0, err
    for row in json.loads(out)["rows"]:
        if row["state"] in ("failed", "unknown"):
            seen.actions.setdefault(row["key"], set()).add("ccm outbox list")
    code, out, err = ccm(capsys, "nights")  # the nights on record, and what waits for a person now
    assert code == 0, err
    for key in NEED_A_PERSON.findall(out):
        seen.actions.setdefault(key, set()).add("ccm nights")
    seen.health.update(PROBLEM.findall(out))
    return seen


# ---- the faults


def _storm(world: World) -> None:
    f = world.faults
    f.only, f.throttle_next = WRITES[world.ledger], 4  # four writes in a row answered 429, Retry-After: 1
    if world.ledger == "xero":
        f.throttle_headers = {"Retry-After": "1", "X-Rate-Limit-Problem": "minute"}
    else:
        f.throttle_body = throttle_xml(world.clock.now().isoformat(), "request rate exceeded")
        f.throttle_type = "application/xml"


def _slow_token(world: World) -> None:
    world.clock.advance(2 * 3600)  # the access token has expired at the ledger: the run must refresh it
    world.faults.latency_only, world.faults.latency_s = TOKEN_PATH[world.ledger], 2.0


def _rcpt(*replies: str) -> Callable[[World], None]:
    def inject(world: World) -> None:
        world.inbox.next_rcpt = list(replies)

    return inject


def _login_refused(world: World) -> None:
    world.inbox.password = "rotated-by-the-mail-admin"


def _set(**fields: Any) -> Callable[[World], None]:
    def inject(world: World) -> None:
        for name, value in fields.items():
            setattr(world.faults, name, WRITES[world.ledger] if value == "writes" else value)
        if "apply_drop_next" in fields:
            world.faults.apply_drop_only = WRITES[world.ledger]

    return inject


@dataclass(frozen=True)
class Fault:
    name: str
    inject: Callable[[World], None]
    fired: Callable[[World], bool]  # whether it hit anything on the faulted night
    fails: int = 0  # actions it fails for good (a person must see each)
    health: str | None = None  # the health issue it must raise on the faulted night
    stops: str | None = None  # what the firm's stop says on the faulted night (a firm-level problem)


TRY_LATER = "451 4.7.1 greylisted: please try again later"
FAULTS = [
    Fault("ledger-500-503", _set(only="writes", error_next=3), fired=lambda w: w.faults.error_next == 0),
    Fault("429-storm", _storm, fired=lambda w: len(w.faults.throttled) == 4),
    Fault("drop-before", _set(drop_rate=0.03), fired=lambda w: w.faults.drops > 0),
    Fault("drop-after-effect", _set(apply_drop_next=2), fired=lambda w: len(w.faults.lost) == 2),
    Fault("slow-token", _slow_token, fired=lambda w: len(w.faults.slowed) > 0),
    # one night, the three ways of "not now": 421 (the server closes: ccm opens a new connection), 450, 451
    Fault(
        "smtp-421-450-451",
        _rcpt("421 4.7.0 too busy, closing", "450 4.2.0 mailbox busy", TRY_LATER),
        fired=lambda w: not w.inbox.next_rcpt,
    ),
    Fault(
        "smtp-550", _rcpt("", "550 5.1.1 mailbox unavailable"), fails=1, fired=lambda w: not w.inbox.next_rcpt
    ),
    Fault(
        "smtp-login-refused",
        _login_refused,
        health="smtp_login_refused",
        stops="SMTP login refused (535)",
        fired=lambda w: w.inbox.logins > 0 and not w.inbox.messages,
    ),
]


def clear(world: World) -> None:
    world.faults.clear()
    world.inbox.next_rcpt.clear()
    world.inbox.password = PASSWORD


def night(capsys: pytest.CaptureFixture[str], at: str) -> tuple[int, str]:
    code, out, err = ccm(capsys, "run", "--at", at)
    return code, out + err


_CLEAN: dict[str, Facts] = {}


def clean_facts(ledger: str, tmp: Path, capsys: pytest.CaptureFixture[str]) -> Facts:
    """The two nights of the same firm without a fault (once per ledger and test session)."""
    if ledger not in _CLEAN:
        with pytest.MonkeyPatch.context() as mp, opened(ledger, tmp, mp) as clean:
            for at in (T1, T2):
                code, printed = night(capsys, at)
                assert code == 0, printed
            _CLEAN[ledger] = facts(clean)
    return _CLEAN[ledger]


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
@pytest.mark.parametrize("world", ["xero", "quickbooks"], indirect=True)
def test_a_night_under_a_fault_then_a_clean_one_ends_as_a_clean_pair_does(
    world: World, fault: Fault, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    clean = clean_facts(world.ledger, tmp_path / "clean", capsys)
    assert len(clean.emails) > 3 and clean.notes and clean.marks, "the seeded firm must send, note and hold"

    fault.inject(world)
    code, first = night(capsys, T1)
    assert fault.fired(world), f"{fault.name} never fired"
    assert code == (1 if fault.stops else 0), first  # only a firm-level problem stops the firm
    clear(world)
    shown_first = visible(capsys, first)
    code, second = night(capsys, T2)
    assert code == 0, second
    after = facts(world)
    shown = visible(capsys, second)

    # nothing went out twice, nothing is stuck
    assert max(after.emails.values()) == 1, after.emails
    assert max(after.notes.values()) == 1, [n for n, c in after.notes.items() if c > 1]
    assert set(after.marks.values()) == {1}, after.marks
    assert after.stuck == []

    # what needs a person is what the fault fails for good, and each one is shown where a person looks
    waiting = after.waiting
    assert len(waiting) == fault.fails, sorted(waiting)
    for key in waiting:  # shown by the night that failed it, and still by the next one
        everywhere = {"ccm run", "ccm outbox list", "ccm nights"}
        assert shown_first.actions.get(key) == everywhere, (key, shown_first.actions)
        assert shown.actions.get(key) == everywhere, (key, shown.actions)
    if fault.health:
        assert fault.health in shown_first.health, first
        assert fault.health not in shown.health, second  # closed once the cause is gone
    if fault.stops:
        assert any(fault.stops in line for line in shown_first.stopped), first

    # the rest is the clean pair's: outbox, reminder history, holds; e-mails, notes, hold marks at the source
    def derived(key: str) -> bool:
        return key in waiting or any(key.startswith(f"note:{w}:") for w in waiting)

    keys = {k for k in (*after.states, *clean.states) if not derived(k)}
    differ = {k: (after.states.get(k), clean.states.get(k)) for k in sorted(keys)
              if after.states.get(k) != clean.states.get(k)}  # fmt: skip
    assert differ == {}, f"outbox (faulted, clean): {differ}"
    assert after.changes == clean.changes  # each hold (release) written once, as in the clean pair
    assert after.holds == clean.holds and after.marks == clean.marks
    assert after.history == {h for h in clean.history if h[3] not in waiting}
    assert set(after.emails) == set(clean.emails) - waiting
    sent_notes = Counter({n: c for n, c in clean.notes.items() if not any(w in n[1] for w in waiting)})
    assert after.notes == sent_notes
