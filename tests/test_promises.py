"""`ccm promise` covers the invoices promised (the others are still chased); `ccm dispute` takes an invoice
number or id and a reason, and every later output names the invoice by its number."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from connector import chasing
from connector.model import Customer, Invoice, Money, Status, Tenant
from connector.rules.calendar import SendCalendar
from connector.rules.dunning import Debtor, DueItem, Skip, evaluate
from connector.rules.policy import load_policies
from connector.store import Store, records
from connector.store.tenants import save_tenant
from tests.test_cli import ccm

NOW = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)


def gbp(amount: str) -> Money:
    return Money(Decimal(amount), "GBP")


@pytest.fixture
def books(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr("connector.cli.commands.chasing._now", lambda: NOW)
    store = Store.open(f"sqlite:///{home / 'ccm.db'}")
    with store.begin() as conn:
        save_tenant(conn, Tenant("acme", "Acme Ltd", "scripted"))
        records.upsert(conn, "acme", "customer", [
            Customer("C-ANN", "Ann's Café", email="ann@example.com"), Customer("C-BOB", "Bob's Bikes"),
        ])  # fmt: skip
        records.upsert(conn, "acme", "invoice", [
            Invoice("I-1", "C-ANN", gbp("120"), gbp("120"), Status.OPEN, date(2026, 9, 1), date(2026, 10, 1),
                    "INV-0001"),
            Invoice("I-2", "C-ANN", gbp("80"), gbp("80"), Status.OPEN, date(2026, 10, 1), date(2026, 10, 31),
                    "INV-0002"),
            Invoice("I-3", "C-ANN", gbp("50"), gbp("0"), Status.PAID, date(2026, 8, 1), date(2026, 8, 31),
                    "INV-0003"),
            Invoice("I-9", "C-BOB", gbp("99"), gbp("99"), Status.OPEN, date(2026, 10, 1), date(2026, 10, 31),
                    "INV-0009"),
        ])  # fmt: skip
    store.close()
    return home / "ccm.db"


def states(db: Path) -> chasing.ChasingState:
    store = Store.open(f"sqlite:///{db}")
    with store.read() as conn:
        found = chasing.states(conn, "acme").get("C-ANN", chasing.ChasingState())
    store.close()
    return found


def test_a_promise_on_one_invoice_leaves_the_other_chased(capsys, books):
    code, out, err = ccm(
        capsys, "promise", "Ann", "--invoice", "INV-0002", "--amount", "80", "--until", "2026-12-01"
    )
    assert (code, err) == (0, "")
    assert (
        out
        == "Ann's Café: promised to pay £80.00 by 2026-12-01 on INV-0002; reminders for it wait until then\n"
    )
    found = states(books)
    assert found.promised == {"I-2": date(2026, 12, 1)}
    assert found.promise_until is None  # not the whole customer
    code, out, _ = ccm(capsys, "customer", "Ann's Café", "--as-of", "2026-11-24")
    assert code == 0
    assert "promised: INV-0002 by 2026-12-01" in out
    assert "INV-0002" in out.split("chasing history")[1] and "I-2 " not in out.split("chasing history")[1]


def test_an_amount_without_invoices_covers_the_oldest_it_pays(capsys, books):
    code, out, _ = ccm(capsys, "promise", "Ann", "--amount", "100", "--until", "2026-12-01")
    assert code == 0
    assert "on INV-0001;" in out  # 100 does not reach the second invoice
    assert states(books).promised == {"I-1": date(2026, 12, 1)}
    code, out, _ = ccm(capsys, "promise", "Ann", "--amount", "150", "--until", "2026-12-02")
    assert "on INV-0001, INV-0002;" in out and "reminders for them" in out
    assert states(books).promised == {"I-1": date(2026, 12, 2), "I-2": date(2026, 12, 2)}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--invoice", "INV-0009"), "ccm: error: --invoice: invoice INV-0009 is another customer's"),
        (
            ("--invoice", "INV-0003"),
            "ccm: error: --invoice: invoice INV-0003 is not open (nothing to promise)",
        ),
        (("--invoice", "INV-7"), "ccm: error: --invoice: no invoice 'INV-7' in tenant 'acme'"),
        (
            ("--amount", "10", "--currency", "EUR"),
            "ccm: error: Ann's Café: the customer has no open invoice in EUR",
        ),
    ],
)
def test_a_promise_on_invoices_it_cannot_cover_records_nothing(capsys, books, args, message):
    code, _, err = ccm(capsys, "promise", "Ann", "--until", "2026-12-01", *args)
    assert (code, err.count("\n")) == (2, 1)
    assert err.startswith(message), err
    assert states(books).promised == {}


def test_a_dispute_takes_a_number_or_id_and_a_reason_and_shows_the_number(capsys, books):
    code, _, err = ccm(capsys, "dispute", "INV-0001")
    assert (code, err) == (2, "ccm: error: --reason: say why the invoice is disputed, in a few words\n")
    assert states(books).disputed == frozenset()
    code, out, _ = ccm(capsys, "dispute", "I-2", "--reason", "goods returned")  # by id: named by number
    assert (code, out) == (0, "invoice INV-0002 (Ann's Café): disputed (goods returned); not chased\n")
    assert states(books).disputed == frozenset({"I-2"})
    code, out, _ = ccm(capsys, "customer", "Ann's Café", "--as-of", "2026-11-24")
    assert "disputed: INV-0002" in out and "goods returned" in out
    code, out, _ = ccm(capsys, "customer", "Ann's Café", "--as-of", "2026-11-24", "--format", "json")
    assert '"disputed": "INV-0002"' in out
    assert ccm(capsys, "dispute", "INV-0002", "--resolve")[1] == (
        "invoice INV-0002 (Ann's Café): dispute resolved; chased again\n"
    )


def test_dunning_skips_the_promised_invoice_and_chases_the_other():
    policies = load_policies()  # the built-in policies: a first reminder a few days after the due date
    today = date(2026, 11, 24)
    debtor = Debtor("C-ANN", "Ann's Café", "ann@example.com", items=(
        DueItem("I-1", date(2026, 10, 1), gbp("120"), "INV-0001"),
        DueItem("I-2", date(2026, 10, 31), gbp("80"), "INV-0002", promised_until=date(2026, 12, 1)),
    ))  # fmt: skip
    found = evaluate("acme", [debtor], policies, SendCalendar("Europe/London", "GB"), today)
    chased = {line.item.number for r in found.reminders for line in r.lines}
    assert chased == {"INV-0001"}
    assert [(s.invoice_id, s.reason, s.detail) for s in found.skipped] == [
        ("I-2", Skip.PROMISE, "by 2026-12-01")
    ]
    later = evaluate("acme", [debtor], policies, SendCalendar("Europe/London", "GB"), date(2026, 12, 2))
    assert {line.item.number for r in later.reminders for line in r.lines} == {"INV-0001", "INV-0002"}


def test_the_customer_list_searches_names_ids_and_invoice_numbers_on_the_store(store: Store):
    from connector.web.customer_views import search

    with store.begin() as conn:
        save_tenant(conn, Tenant("acme", "Acme Ltd", "scripted"))
        records.upsert(conn, "acme", "customer", [
            Customer("C-ANN", "Ann's Café", email="ann@example.com"), Customer("C-50", "50% Off Ltd"),
            Customer("C-BOB", "Bob's Bikes"),
        ])  # fmt: skip
        records.upsert(conn, "acme", "invoice", [
            Invoice("I-1", "C-ANN", gbp("120"), gbp("120"), Status.OPEN, date(2026, 9, 1), date(2026, 10, 1),
                    "INV-0001"),
            Invoice("I-2", "C-ANN", gbp("80"), gbp("30"), Status.OPEN, date(2026, 10, 1), date(2026, 10, 31),
                    "INV-0002"),
        ])  # fmt: skip
        chasing.add_note(conn, "acme", "C-ANN", "rang: pays Friday", NOW)
        chasing.record_promise(conn, "acme", "C-ANN", chasing.open_invoices(conn, "acme", "C-ANN")[1:],
                               date(2026, 12, 1), gbp("30"), "", NOW)  # fmt: skip
    with store.read() as conn:
        assert [r.name for r in search(conn, "acme", "", 1).rows] == [
            "50% Off Ltd",
            "Ann's Café",
            "Bob's Bikes",
        ]
        assert [r.name for r in search(conn, "acme", "CAF", 1).rows] == ["Ann's Café"]
        assert [r.name for r in search(conn, "acme", "inv-0002", 1).rows] == ["Ann's Café"]
        assert [r.name for r in search(conn, "acme", "%", 1).rows] == [
            "50% Off Ltd"
        ]  # literally, not a wildcard
        assert [r.name for r in search(conn, "acme", "C-BOB", 1).rows] == ["Bob's Bikes"]
        ann = search(conn, "acme", "ann", 1).rows[0]
        assert (ann.open_invoices, ann.outstanding) == (2, "£150.00")
        paged = search(conn, "acme", "", 2, size=2)
        assert (paged.page, paged.pages, paged.total, [r.name for r in paged.rows]) == (
            2,
            2,
            3,
            ["Bob's Bikes"],
        )
        found = chasing.states(conn, "acme")["C-ANN"]
        history = chasing.events(conn, "acme", "C-ANN")
    assert found.promised == {"I-2": date(2026, 12, 1)} and found.promise_until is None
    assert [(e.kind, e.invoice_number, e.note) for e in history] == [  # newest first: same time, later id
        ("promise", "INV-0002", ""),
        ("note", None, "rang: pays Friday"),
    ]
