"""Typed outbox payloads: every kind reads the JSON ccm always stored and writes it back key for key."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import select

from connector import outbox
from connector.outbox import Mode, NewAction, State
from connector.payloads import (
    CallTaskPayload,
    DigestPayload,
    HoldPayload,
    Kind,
    NotePayload,
    NoticePayload,
    ReminderPayload,
    StatementPayload,
    customer_name,
    decode,
    email_of,
    encode,
    lines_of,
    reason_of,
)
from connector.store import Store
from connector.store.schema import outbox as outbox_table

NOW = datetime(2026, 11, 23, 22, 0, tzinfo=UTC)
LINE = {"invoice_id": "I-1", "number": "INV-0001", "due_date": "2026-10-01", "level": 2, "level_name": "firm",
        "amount": "120.50", "currency": "GBP", "days_overdue": 53}  # fmt: skip
REMINDER = {"customer_name": "Ann's Café", "email": "ann@example.com", "policy": "standard",
            "policy_version": "3", "level": 2, "level_name": "firm", "template": "reminder",
            "worded_for": "", "lines": [LINE]}  # fmt: skip
# What ccm stored for each kind before payloads were typed (connector/run/plan.py, credit.py, health.py,
# digest.py, words/statements.py, run/execute.py), key order included.
STORED: dict[Kind, list[dict[str, Any]]] = {
    Kind.REMINDER: [REMINDER, {**REMINDER, "email": None, "worded_for": "the customer disputes"}],
    Kind.CALL_TASK: [{"phone": "+44 20 7946 0000", **REMINDER}, {"phone": None, **REMINDER}],
    Kind.NOTE: [{"ref": "I-1", "text": "Reminder 2 (firm) sent to ann@example.com on 2026-11-24 by ccm [dun-1]"}],
    Kind.HOLD: [{"customer_name": "Bob's Bikes", "reason": "over its credit limit", "source": "rule"}],
    Kind.RELEASE: [{"customer_name": "Bob's Bikes", "reason": "manual hold lifted", "source": "manual"}],
    Kind.NOTICE: [
        {"email": "owner@acme.example", "kind": "reconnect_needed", "message": "reconnect Xero",
         "firm": "Acme Ltd", "ledger": "Xero"},
        {"digest": True, "email": "owner@acme.example", "firm": "Acme Ltd", "night": "2026-11-23",
         "subject": "Acme Ltd: last night", "text": "All quiet.", "html": "<p>All quiet.</p>"},
    ],
    Kind.STATEMENT: [
        {"customer_name": "Ann's Café", "email": "ann@example.com", "month": "2026-11-01", "as_at": "2026-11-05",
         "template": "statement", "lines": [{"invoice_id": "I-1", "number": "INV-0001", "due_date": "2026-10-01",
                                             "days_overdue": 35, "amount": "120.50", "total": "150.00",
                                             "currency": "GBP"}]},
    ],
}  # fmt: skip
CASES = [(kind, raw) for kind, found in STORED.items() for raw in found]


def test_the_kinds_keep_their_stored_values():
    assert [str(k) for k in Kind] == [
        "reminder",
        "call_task",
        "note",
        "hold",
        "release",
        "notice",
        "statement",
    ]


@pytest.mark.parametrize(("kind", "raw"), CASES, ids=[f"{k}-{n}" for n, (k, _) in enumerate(CASES)])
def test_each_kind_reads_what_was_stored_and_writes_it_back_byte_for_byte(kind: Kind, raw: dict[str, Any]):
    payload = decode(kind, raw)
    assert json.dumps(encode(payload)) == json.dumps(raw)


def test_each_kind_reads_as_its_own_type_with_typed_fields():
    reminder, call = decode(Kind.REMINDER, REMINDER), decode(Kind.CALL_TASK, STORED[Kind.CALL_TASK][0])
    assert isinstance(reminder, ReminderPayload) and not isinstance(reminder, CallTaskPayload)
    assert (reminder.level, reminder.level_name, reminder.invoice_numbers()) == (2, "firm", ("INV-0001",))
    assert isinstance(call, CallTaskPayload) and call.phone == "+44 20 7946 0000"
    assert lines_of(call) == (LINE,)
    note = decode(Kind.NOTE, STORED[Kind.NOTE][0])
    assert isinstance(note, NotePayload) and note.ref == "I-1" and lines_of(note) == ()
    hold = decode(Kind.RELEASE, STORED[Kind.RELEASE][0])
    assert hold == HoldPayload("Bob's Bikes", "manual hold lifted", "manual")
    assert (customer_name(hold), reason_of(hold), email_of(hold)) == (
        "Bob's Bikes",
        "manual hold lifted",
        None,
    )
    notice, digest = (decode(Kind.NOTICE, raw) for raw in STORED[Kind.NOTICE])
    assert isinstance(notice, NoticePayload) and notice.issue == "reconnect_needed"
    assert isinstance(digest, DigestPayload) and digest.subject == "Acme Ltd: last night"
    statement = decode(Kind.STATEMENT, STORED[Kind.STATEMENT][0])
    assert isinstance(statement, StatementPayload)
    assert (statement.month, statement.as_at, email_of(statement)) == (
        date(2026, 11, 1),
        date(2026, 11, 5),
        "ann@example.com",
    )


def test_an_older_row_missing_keys_still_reads():
    hold = decode(Kind.HOLD, {"reason": "over the limit"})  # before holds named their source and customer
    assert hold == HoldPayload("", "over the limit", "rule")
    assert customer_name(hold) is None
    reminder = decode(Kind.REMINDER, {"lines": [{"invoice_id": "I-9", "level": 1}]})
    assert isinstance(reminder, ReminderPayload)
    assert (reminder.email, reminder.invoice_numbers()) == (None, ("I-9",))


def _stored(store: Store, key: str) -> dict[str, Any]:
    with store.read() as conn:
        found = conn.execute(select(outbox_table.c.payload).where(outbox_table.c.key == key)).scalar_one()
    assert isinstance(found, dict)
    return found


def test_planning_stores_each_payload_as_before_and_reads_it_back_typed(store: Store):
    actions = [
        NewAction(f"k-{n}", kind, "email", "C1", decode(kind, raw), NOW)
        for n, (kind, raw) in enumerate(CASES)
    ]
    with store.begin() as conn:
        outbox.plan(conn, "acme", actions, Mode.AUTO, NOW)
    for action, (kind, raw) in zip(actions, CASES, strict=True):
        assert list(_stored(store, action.key).items()) == list(raw.items())
        with store.read() as conn:
            found = outbox.get(conn, "acme", action.key)
        assert found is not None
        assert (found.kind, found.payload, found.retry_base) == (kind, action.payload, 0)


def test_a_person_s_retry_keeps_the_stored_keys_and_adds_retry_base_beside_them(store: Store):
    raw = STORED[Kind.HOLD][0]
    with store.begin() as conn:
        outbox.plan(conn, "acme", [NewAction("hold-1", Kind.HOLD, "ledger", "C2", decode(Kind.HOLD, raw), NOW)],
                    Mode.AUTO, NOW)  # fmt: skip
        assert outbox.claim(conn, "acme", "hold-1", "test", NOW)
        assert outbox.fail(conn, "acme", "hold-1", "refused", NOW)
        assert outbox.retry(conn, "acme", ["hold-1"], NOW) == ["hold-1"]
    assert list(_stored(store, "hold-1").items()) == [*raw.items(), ("retry_base", 1)]
    with store.read() as conn:
        found = outbox.get(conn, "acme", "hold-1")
    assert found is not None
    assert (found.state, found.retry_base, found.payload) == (State.PLANNED, 1, decode(Kind.HOLD, raw))
