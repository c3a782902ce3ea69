"""Xero writes whose answers are lost: the sandbox replays the first answer for a repeated Idempotency-Key,
and the adapter resends a write only with its key (a membership's DELETE, idempotent itself, has none).

The shared contract (tests/contract/test_lost_answers.py) counts the effects of every write; these pin the
two halves it relies on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from adapters.sandbox import SandboxClock
from adapters.sandbox.faults import Faults
from adapters.sandbox.generator import generate
from adapters.xero.sandbox import start
from connector.store import Store
from tests.contract.xero_harness import XeroHarness
from tests.xero_sandbox.conftest import NOON, TODAY, Connected, connect


@pytest.fixture
def xero() -> Iterator[Connected]:
    sb = start(generate(2, "demo", today=TODAY), clock=SandboxClock(NOON, speed=0), faults=Faults(seed=3))
    try:
        yield connect(sb)
    finally:
        sb.stop()


def _lose_next(x: Connected, how: str) -> None:
    x.sandbox.running.faults.apply_drop_next = 1
    x.sandbox.running.faults.apply_drop_as = how


def _put(x: Connected, path: str, body: dict[str, Any], key: str) -> requests.Response:
    return x.send("PUT", path, json=body, headers={"Idempotency-Key": key})


@pytest.mark.parametrize("how", ["503", "drop"])
def test_a_note_whose_answer_was_lost_is_replayed_for_its_key_not_written_again(xero: Connected, how: str):
    book = xero.sandbox.book
    invoice = next(iter(book.invoices.by_id))
    body = {"HistoryRecords": [{"Details": "Reminder 1 [ccm:k1]"}]}
    _lose_next(xero, how)
    try:
        lost = _put(xero, f"Invoices/{invoice}/History", body, "k1:note").status_code
    except requests.ConnectionError:
        lost = 0
        xero.http.close()
    assert lost in ({503} if how == "503" else {0})
    assert [n.details for n in book.history[invoice]] == ["Reminder 1 [ccm:k1]"]  # applied, answer lost
    again = _put(xero, f"Invoices/{invoice}/History", body, "k1:note")
    assert again.status_code == 200
    assert again.json()["HistoryRecords"][0]["Details"] == "Reminder 1 [ccm:k1]"  # the first answer
    assert [n.details for n in book.history[invoice]] == ["Reminder 1 [ccm:k1]"]


def test_an_email_and_a_membership_whose_answers_were_lost_are_replayed(xero: Connected):
    book = xero.sandbox.book
    inv = next(i for i in book.invoices.by_id.values()
               if i.kind == "sales" and book.invoice_status(i) == "AUTHORISED" and book.customer(i.customer_id).email)  # fmt: skip
    _lose_next(xero, "503")
    assert (
        xero.send("POST", f"Invoices/{inv.id}/Email", json={}, headers={"Idempotency-Key": "k2"}).status_code
        == 503
    )
    assert (
        xero.send("POST", f"Invoices/{inv.id}/Email", json={}, headers={"Idempotency-Key": "k2"}).status_code
        == 204
    )
    assert book.emailed == [inv.id]
    group = _put(xero, "ContactGroups", {"ContactGroups": [{"Name": "Credit Hold"}]}, "k3").json()
    group_id = group["ContactGroups"][0]["ContactGroupID"]
    members = {"Contacts": [{"ContactID": inv.customer_id}]}
    _lose_next(xero, "503")
    assert _put(xero, f"ContactGroups/{group_id}/Contacts", members, "k4").status_code == 503
    assert inv.customer_id in book.groups[group_id].members
    replay = _put(xero, f"ContactGroups/{group_id}/Contacts", members, "k4")
    assert replay.status_code == 200
    assert json.loads(replay.text)["Contacts"][0]["ContactID"] == inv.customer_id


def test_the_adapter_resends_only_writes_carrying_their_idempotency_key(sqlite_store: Store, tmp_path: Path):
    h = XeroHarness()
    h.start(sqlite_store, tmp_path)
    try:
        h.connect()
        writes: list[tuple[str, str, str | None]] = []
        accounting = h.sandbox.accounting
        limited = accounting._limited

        async def recording(request: Any, book: Any, tenant: str, handler: Any) -> Any:
            if request.method != "GET":
                writes.append((request.method, request.url.path, request.headers.get("idempotency-key")))
            return await limited(request, book, tenant, handler)

        accounting._limited = recording  # type: ignore[method-assign]
        customer, invoice = h.a_customer(), h.an_invoice()
        h.faults.apply_drop_rate, h.faults.apply_drop_as = 0.5, "503"  # some answers lost: resends happen
        ledger = h.ledger()
        ledger.add_note(f"invoice:{invoice}", "Reminder 1", "k/note")
        ledger.set_hold(f"customer:{customer}", True, "over limit", "k/hold")
        ledger.set_hold(f"customer:{customer}", False, "paid up", "k/release")
        ledger.send_via_ledger(f"invoice:{invoice}", "k/send")
        h.faults.clear()
        assert len(h.faults.lost) >= 2
        keyless = [(method, path) for method, path, key in writes if not key]
        assert keyless and all(m == "DELETE" and "/ContactGroups/" in p for m, p in keyless)  # a release only
        assert len(writes) > len({(m, p, k) for m, p, k in writes})  # resent, with the same key each time
        assert h.emails_sent(invoice) == 1 and not h.on_hold(customer)
    finally:
        h.stop()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'ccm.db'}")
    yield opened
    opened.close()
