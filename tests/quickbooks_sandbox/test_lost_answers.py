"""The apply-then-drop fault (adapters/sandbox/faults.py) and QBO's requestid, as the sandbox plays them.

A write applied and its answer lost must show in the company's books; a request repeated with its requestid
gets the first answer and is not applied again (per realm), unless the sandbox plays a QBO ignoring it.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests

from adapters.sandbox.faults import Faults
from tests.quickbooks_sandbox.conftest import Client

INVOICE = "51"  # an invoice of the seed-7 demo firm


def _note(invoice: str, text: str) -> dict[str, Any]:
    return {"Note": text, "AttachableRef": [{"EntityRef": {"type": "Invoice", "value": invoice}}]}


def _notes(sandbox: Any, text: str) -> int:
    company = sandbox.company
    with company.lock:
        rows = list(company.tables["Attachable"].by_id.values())
    return sum(company.doc("Attachable", row).get("Note") == text for row in rows)


def test_a_write_applied_then_answered_503_is_in_the_books(client: Client, sandbox):
    sandbox.faults.apply_drop_rate, sandbox.faults.apply_drop_as = 1.0, "503"
    answer = client.call("POST", "attachable", body=_note(INVOICE, "lost answer"))
    assert answer.status_code == 503
    assert _notes(sandbox, "lost answer") == 1  # QBO did it; only the answer was lost
    assert sandbox.faults.lost == [f"POST /v3/company/{sandbox.realm}/attachable"]


def test_a_write_applied_then_dropped_is_in_the_books(client: Client, sandbox):
    sandbox.faults.apply_drop_next, sandbox.faults.apply_drop_as = 1, "drop"
    with pytest.raises(requests.ConnectionError):
        client.call("POST", f"invoice/{_emailable(sandbox)}/send")
    assert len(sandbox.company.emailed) == 1
    client.http.close()
    assert client.call("POST", "attachable", body=_note(INVOICE, "after")).status_code == 200  # one only


def test_reads_keep_their_answers_unless_asked(client: Client, sandbox):
    sandbox.faults.apply_drop_rate, sandbox.faults.apply_drop_as = 1.0, "503"
    assert client.call("GET", "customer/2").status_code == 200
    sandbox.faults.apply_drop_all_methods = True
    assert client.call("GET", "customer/2").status_code == 503
    sandbox.faults.clear()
    assert client.call("GET", "customer/2").status_code == 200


def test_only_skip_and_next_pick_which_answers_are_lost(client: Client, sandbox):
    faults = sandbox.faults
    faults.apply_drop_only, faults.apply_drop_as = r"/attachable$", "503"
    faults.apply_drop_skip, faults.apply_drop_next = 1, 1
    assert client.query("SELECT * FROM Customer WHERE Id = '2'")  # a POST, not matching: untouched
    statuses = [client.call("POST", "attachable", body=_note(INVOICE, f"n{i}")).status_code for i in range(3)]
    assert statuses == [200, 503, 200]
    assert [_notes(sandbox, f"n{i}") for i in range(3)] == [1, 1, 1]


def test_draws_are_seeded_and_changeable_live():
    def draws(faults: Faults) -> list[str | None]:
        return [faults.draw_apply_drop("POST", "/x") for _ in range(40)]

    one, two = Faults(seed=5, apply_drop_rate=0.3), Faults(seed=5, apply_drop_rate=0.3)
    assert draws(one) == draws(two)
    assert {"drop", "503", None} == set(draws(Faults(seed=5, apply_drop_rate=0.5)))
    one.apply_drop_rate = 0.0
    assert draws(one) == [None] * 40
    with pytest.raises(ValueError, match="apply_drop_as"):
        Faults(apply_drop_next=1, apply_drop_as="sometimes").draw_apply_drop("POST", "/x")


def _emailable(sandbox: Any) -> str:
    company = sandbox.company
    return next(str(r.id) for r in company.tables["Invoice"].by_id.values()
                if not r.deleted and company.doc("Invoice", r).get("BillEmail"))  # fmt: skip


def test_a_repeated_requestid_gets_the_first_answer_and_is_not_applied_again(client: Client, sandbox):
    first = client.call("POST", "attachable", body=_note(INVOICE, "once"), params={"requestid": "r-1"})
    again = client.call("POST", "attachable", body=_note(INVOICE, "once"), params={"requestid": "r-1"})
    other = client.call("POST", "attachable", body=_note(INVOICE, "other"), params={"requestid": "r-1"})
    assert first.status_code == again.status_code == other.status_code == 200
    assert again.text == first.text and other.text == first.text  # the first answer, whatever the body
    assert _notes(sandbox, "once") == 1 and _notes(sandbox, "other") == 0
    assert sandbox.api.replayed == 2
    invoice = _emailable(sandbox)
    sends = [client.call("POST", f"invoice/{invoice}/send", params={"requestid": "r-2"}) for _ in range(2)]
    assert [s.status_code for s in sends] == [200, 200]
    assert sandbox.company.emailed == [invoice]


def test_a_fault_answer_is_kept_for_its_requestid_too(client: Client, sandbox):
    bad = {"Id": "2", "SyncToken": "999", "sparse": True, "Notes": "x"}
    first = client.call("POST", "customer", body=bad, params={"requestid": "r-stale"})
    assert first.status_code == 400
    fixed = {**bad, "SyncToken": client.call("GET", "customer/2").json()["Customer"]["SyncToken"]}
    again = client.call("POST", "customer", body=fixed, params={"requestid": "r-stale"})
    assert (again.status_code, again.text) == (400, first.text)  # a new request needs a new requestid


def test_a_sandbox_ignoring_requestid_applies_each_repeat(client: Client, sandbox):
    sandbox.api.honour_requestid = False
    for _ in range(2):
        client.call("POST", "attachable", body=_note(INVOICE, "twice"), params={"requestid": "r-3"})
    assert _notes(sandbox, "twice") == 2


def test_queries_are_never_answered_from_a_requestid(client: Client, sandbox):
    text = "SELECT * FROM Attachable WHERE Note = 'late'"
    assert client.call("POST", "query", text=text, params={"requestid": "r-4"}).json()["QueryResponse"] == {}
    client.call("POST", "attachable", body=_note(INVOICE, "late"))
    answer = client.call("POST", "query", text=text, params={"requestid": "r-4"}).json()["QueryResponse"]
    assert len(answer["Attachable"]) == 1


def test_a_repeat_while_the_first_is_served_waits_for_its_answer(client: Client, sandbox):
    sandbox.api.slow_s = 0.3
    answers: list[requests.Response] = []

    def post() -> None:
        extra = Client(sandbox, client.token)
        answers.append(
            extra.call("POST", "attachable", body=_note(INVOICE, "raced"), params={"requestid": "r-5"})
        )
        extra.http.close()

    threads = [threading.Thread(target=post) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].text == answers[1].text
    assert _notes(sandbox, "raced") == 1
