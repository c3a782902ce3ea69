"""`ccm outbox list` filters and short keys, and `ccm outbox cancel|approve|resolve` taking unique prefixes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from connector import outbox
from connector.model import Customer, Tenant
from connector.outbox import Mode, NewAction, State
from connector.payloads import HoldPayload, Kind, decode
from connector.store import Store, records
from connector.store.tenants import save_tenant
from tests.test_cli import ccm

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
ANN_KEY, BOB_KEY, HOLD_KEY = "dun-aaaa1111ffff", "dun-aaaa2222eeee", "hold-bbbb3333dddd"
SENT_KEY, WAITING_KEY, UNKNOWN_KEY = "dun-cccc4444cccc", "dun-dddd5555bbbb", "dun-eeee6666aaaa"


def _reminder(key: str, customer: str, number: str, level: int, after: datetime) -> NewAction:
    lines = [{"invoice_id": f"I-{number}", "number": number, "level": level}]
    return NewAction(key, Kind.REMINDER, "email", customer, decode(Kind.REMINDER, {"lines": lines, "level": level}),
                     after)  # fmt: skip


@pytest.fixture
def acme(home: Path) -> Path:
    """Ann and Bob each with a planned reminder (24 and 26 November), a hold on Bob, and Ann's reminders
    in every other state: sent, awaiting approval, unknown."""
    store = Store.open(f"sqlite:///{home / 'ccm.db'}")
    with store.begin() as conn:
        save_tenant(conn, Tenant("acme", "Acme Ltd", "scripted", "GBP", "Europe/London", "GB"))
        records.upsert(
            conn, "acme", "customer", [Customer("C1", "Ann's Café"), Customer("C2", "Bob's Bikes")]
        )
        outbox.plan(conn, "acme", [
            _reminder(ANN_KEY, "C1", "INV-0001", 1, NOW),
            _reminder(BOB_KEY, "C2", "INV-0007", 2, NOW + timedelta(days=2)),
            NewAction(HOLD_KEY, Kind.HOLD, "ledger", "C2", HoldPayload("", "over the limit"), NOW, replay_safe=True),
            _reminder(SENT_KEY, "C1", "INV-0002", 1, NOW - timedelta(days=7)),
            _reminder(UNKNOWN_KEY, "C1", "INV-0003", 3, NOW - timedelta(days=1)),
        ], Mode.AUTO, NOW - timedelta(days=8))  # fmt: skip
        outbox.plan(conn, "acme", [_reminder(WAITING_KEY, "C1", "INV-0004", 1, NOW)], Mode.APPROVE, NOW)
        for key in (SENT_KEY, UNKNOWN_KEY):
            assert outbox.claim(conn, "acme", key, "test", NOW)
        assert outbox.complete(conn, "acme", SENT_KEY, "<m@ccm>", NOW)
        assert outbox.mark_unknown(conn, "acme", UNKNOWN_KEY, "the process died mid-send", NOW)
    store.close()
    return home


def states(home: Path) -> dict[str, tuple[State, str | None]]:
    store = Store.open(f"sqlite:///{home / 'ccm.db'}")
    with store.read() as conn:
        found = {a.key: (a.state, a.reason) for a in outbox.actions(conn, "acme")}
    store.close()
    return found


def listed(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    code, out, err = ccm(capsys, "outbox", "list", "-f", "json", *args)
    assert code == 0, err
    rows: list[dict[str, Any]] = json.loads(out)["rows"]
    return rows


def test_the_list_names_customers_and_invoices_and_shows_short_unique_keys(capsys, acme):
    code, out, err = ccm(capsys, "outbox", "list")
    assert code == 0, err
    assert "dun-aaaa1111 " in out and "dun-aaaa2222 " in out and ANN_KEY not in out  # 12 characters suffice
    assert "Ann's Café" in out and "Bob's Bikes" in out and "INV-0007@2" in out and "C1" not in out
    rows = listed(capsys)
    assert {r["key"]: r["short key"] for r in rows}[ANN_KEY] == "dun-aaaa1111"
    assert {r["key"]: (r["customer"], r["invoices"]) for r in rows}[BOB_KEY] == ("Bob's Bikes", "INV-0007@2")


@pytest.mark.parametrize(
    ("args", "keys"),
    [
        (("--customer", "Bob"), {BOB_KEY, HOLD_KEY}),
        (("--customer", "C1", "--state", "planned"), {ANN_KEY}),
        (("--kind", "hold"), {HOLD_KEY}),
        (("--state", "sent", "--state", "unknown"), {SENT_KEY, UNKNOWN_KEY}),
        (("--since", "2026-11-25"), {BOB_KEY}),
        (("--until", "2026-11-23"), {SENT_KEY, UNKNOWN_KEY}),
        (("--since", "2026-11-24", "--until", "2026-11-24", "--kind", "reminder"), {ANN_KEY, WAITING_KEY}),
    ],
)
def test_filters(capsys, acme, args, keys):
    assert {r["key"] for r in listed(capsys, *args)} == keys


def test_filters_that_match_nothing_say_so(capsys, acme):
    code, out, _ = ccm(capsys, "outbox", "list", "--kind", "notice")
    assert (code, out) == (0, "no actions match\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("list", "--since", "24/11/2026"), "ccm: error: --since: not a date (expected YYYY-MM-DD): '24/11/2026'\n"),
        (("list", "--since", "2026-11-25", "--until", "2026-11-24"),
         "ccm: error: --since 2026-11-25 is after --until 2026-11-24\n"),
        (("list", "--customer", "Zed"), None),
        (("list", "--kind", "letter"), None),
        (("cancel", "dun-aaaa"), "ccm: error: key 'dun-aaaa' matches several actions in 'acme': "
                                 f"{ANN_KEY}, {BOB_KEY} (type more of it)\n"),
        (("approve", "dun-"), None),
    ],
)  # fmt: skip
def test_bad_input_is_one_line(capsys, acme, args, message):
    before = states(acme)
    code, _, err = ccm(capsys, "outbox", *args)
    assert code == 2 and err.count("\n") == 1 and err.startswith("ccm: error: ")
    if message is not None:
        assert err == message
    assert states(acme) == before  # nothing changed


def test_cancel_says_per_key_what_happened_and_cancels_only_what_was_not_sent(capsys, acme):
    code, out, err = ccm(capsys, "outbox", "cancel", "dun-aaaa1111", SENT_KEY, "hold-bbbb", "dun-ffff",
                         "--reason", "paid by phone")  # fmt: skip
    assert code == 2
    assert out.splitlines() == [
        f"{ANN_KEY}: reminder (level 1) by e-mail for Ann's Café on INV-0001: cancelled",
        f"{SENT_KEY}: reminder (level 1) by e-mail for Ann's Café on INV-0002: not cancelled, it is sent",
        f"{HOLD_KEY}: credit hold for Bob's Bikes: cancelled",
        "dun-ffff: no such action in 'acme'",
    ]
    assert err == "ccm: error: some actions were not cancelled (see above): only those not sent yet can be\n"
    after = states(acme)
    assert after[ANN_KEY] == (State.CANCELLED, "cancelled by a person: paid by phone")
    assert after[HOLD_KEY][0] is State.CANCELLED and after[SENT_KEY][0] is State.SENT
    assert after[BOB_KEY][0] is State.PLANNED


def test_cancel_of_everything_asked_exits_0(capsys, acme):
    code, out, err = ccm(capsys, "outbox", "cancel", "dun-dddd", "dun-aaaa2222")
    assert code == 0, err
    assert out.count(": cancelled\n") == 2
    after = states(acme)
    assert after[WAITING_KEY] == (State.CANCELLED, "cancelled by a person")
    assert after[BOB_KEY][0] is State.CANCELLED


def test_approve_and_resolve_take_a_unique_prefix(capsys, acme):
    code, out, err = ccm(capsys, "outbox", "approve", "dun-dddd")
    assert code == 0, err
    assert "approved reminder (level 1) by e-mail for Ann's Café on INV-0004" in out
    code, out, err = ccm(capsys, "outbox", "resolve", "dun-eeee", "--not-sent")
    assert code == 0, err
    assert out == f"{UNKNOWN_KEY}: planned again\n"
    after = states(acme)
    assert after[WAITING_KEY][0] is State.PLANNED and after[UNKNOWN_KEY][0] is State.PLANNED
