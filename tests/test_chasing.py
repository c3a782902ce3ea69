"""Disputes, promises, plans, pauses and do-not-chase: recorded by the CLI, read by the planner."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from connector import chasing
from connector.model import Customer, Invoice, Money, Status, Tenant
from connector.store import Store, records
from connector.store.tenants import save_tenant
from tests.test_cli import ccm

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def books(store: Store, tenant_id: str = "acme") -> None:
    gbp = Money(Decimal("120.00"), "GBP")
    with store.begin() as conn:
        save_tenant(conn, Tenant(tenant_id, "Acme Ltd", "scripted"))
        records.upsert(conn, tenant_id, "customer", [
            Customer("C-ANN", "Ann's Café", email="ann@example.com"),
            Customer("C-BOB", "Bob's Bikes"), Customer("C-BOB2", "Bob's Boats"),
        ])  # fmt: skip
        records.upsert(conn, tenant_id, "invoice", [
            Invoice("I-1", "C-ANN", gbp, gbp, Status.OPEN, date(2026, 10, 1), date(2026, 10, 31), "INV-0001"),
        ])  # fmt: skip


def test_states_gather_settings_and_open_events(store: Store):
    books(store)
    with store.begin() as conn:
        chasing.open_event(conn, "acme", "C-ANN", chasing.DISPUTE, NOW, invoice_id="I-1", note="wrong price")
        chasing.open_event(conn, "acme", "C-ANN", chasing.PROMISE, NOW, until=date(2026, 12, 1))
        chasing.open_event(conn, "acme", "C-ANN", chasing.PROMISE, NOW, until=date(2026, 12, 5))  # replaces
        chasing.open_event(conn, "acme", "C-BOB", chasing.PLAN, NOW)
        chasing.update_settings(conn, "acme", "C-BOB2", NOW, do_not_chase=True, paused_until=date(2027, 1, 1))
        found = chasing.states(conn, "acme")
        history = chasing.events(conn, "acme", "C-ANN")
    assert found["C-ANN"].disputed == frozenset({"I-1"})
    assert found["C-ANN"].promise_until == date(2026, 12, 5)
    assert found["C-BOB"].on_plan
    assert found["C-BOB2"].do_not_chase
    assert found["C-BOB2"].paused_until == date(2027, 1, 1)
    assert [(e.kind, e.outcome) for e in history] == [
        ("promise", None),
        ("promise", "replaced"),
        ("dispute", None),
    ]


def test_customers_are_found_by_id_name_or_a_unique_part(store: Store):
    books(store)
    with store.read() as conn:
        assert chasing.find_customer(conn, "acme", "C-ANN") == ("C-ANN", "Ann's Café")
        assert chasing.find_customer(conn, "acme", "ann's café") == ("C-ANN", "Ann's Café")
        assert chasing.find_customer(conn, "acme", "café") == ("C-ANN", "Ann's Café")
        with pytest.raises(
            chasing.CustomerOrInvoiceNotFound,
            match=r"'Bob' matches several customers \(Bob's Bikes, Bob's Boats\)",
        ):
            chasing.find_customer(conn, "acme", "Bob")
        with pytest.raises(chasing.CustomerOrInvoiceNotFound, match="no customer 'Zed' in tenant 'acme'"):
            chasing.find_customer(conn, "acme", "Zed")
        assert chasing.find_invoice(conn, "acme", "INV-0001") == ("I-1", "C-ANN", "INV-0001")


@pytest.fixture
def cli_books(home: Path) -> None:
    store = Store.open(f"sqlite:///{home / 'ccm.db'}")
    books(store)
    store.close()


def test_the_commands_record_and_undo(capsys, home, cli_books, monkeypatch):
    monkeypatch.setattr(
        "connector.cli.commands.chasing._now", lambda: datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
    )
    assert (
        ccm(capsys, "dispute", "INV-0001", "--note", "wrong price")[1]
        == "invoice INV-0001 (Ann's Café): disputed (wrong price); not chased\n"
    )
    assert ccm(capsys, "dispute", "INV-0001", "--resolve")[0] == 0
    code, out, _ = ccm(capsys, "promise", "Ann", "--until", "2026-12-01", "--amount", "60")
    assert (code, out) == (
        0,
        "Ann's Café: promised to pay £60.00 by 2026-12-01 on INV-0001; reminders for it wait until then\n",
    )
    assert ccm(capsys, "plan", "Bob's Bikes")[0] == 0
    assert (
        ccm(capsys, "pause", "Bob's Boats", "--until", "2027-01-10")[1]
        == "Bob's Boats: paused until 2027-01-10\n"
    )
    assert ccm(capsys, "do-not-chase", "C-BOB2")[0] == 0
    assert ccm(capsys, "policy", "Ann", "high-risk")[1] == "Ann's Café: policy high-risk\n"
    store = Store.open(f"sqlite:///{home / 'ccm.db'}")
    with store.read() as conn:
        found = chasing.states(conn, "acme")
    store.close()
    assert found["C-ANN"].disputed == frozenset()
    assert found["C-ANN"].promise_until is None  # the promise covers the invoice, not the customer
    assert found["C-ANN"].promised == {"I-1": date(2026, 12, 1)}
    assert found["C-ANN"].policy == "high-risk"
    assert found["C-BOB"].on_plan
    assert found["C-BOB2"].paused_until == date(2027, 1, 10)
    assert found["C-BOB2"].do_not_chase


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("dispute", "INV-9", "--reason", "not ours"), "ccm: error: no invoice 'INV-9' in tenant 'acme'"),
        (("dispute", "INV-0001", "--resolve"), "ccm: error: invoice INV-0001 has no open dispute"),
        (
            ("promise", "Ann", "--until", "soon"),
            "ccm: error: --until: not a date (expected YYYY-MM-DD): 'soon'",
        ),
        (("promise", "Ann", "--until", "2026-12-01", "--amount", "lots"), "ccm: error: --amount/--currency"),
        (("promise", "Bob", "--until", "2026-12-01"), "ccm: error: 'Bob' matches several customers"),
        (("pause", "Ann"), "ccm: error: give either --until DATE or --resume"),
        (("plan", "Ann", "--end"), "ccm: error: Ann's Café is not on a payment plan"),
        (
            ("policy", "Ann", "lenient"),
            "ccm: error: no policy named 'lenient' (have: high-risk, key-accounts, standard)",
        ),
        (("policy", "Ann", "--tenant", "zeta", "standard"), "ccm: error: unknown tenant 'zeta'"),
    ],
)
def test_bad_chasing_arguments_are_one_line(capsys, home, cli_books, args, message):
    code, _, err = ccm(capsys, *args)
    assert code == 2
    assert err.startswith(message)
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("pause", "Ann", "--until", "2026-11-23"), "ccm: error: --until: 2026-11-23 is in the past"),
        (("pause", "Ann", "--until", "9999-12-31"), "ccm: error: --until: 9999-12-31 is more than 5 years"),
        (("plan", "Ann", "--until", "2026-11-23"), "ccm: error: --until: 2026-11-23 is in the past"),
        (("plan", "Ann", "--until", "2031-11-25"), "ccm: error: --until: 2031-11-25 is more than 5 years"),
    ],
)
def test_pause_and_plan_until_take_the_promise_range(capsys, home, cli_books, monkeypatch, args, message):
    monkeypatch.setattr(
        "connector.cli.commands.chasing._now", lambda: datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
    )
    code, _, err = ccm(capsys, *args)
    assert (code, err.count("\n")) == (2, 1)
    assert err.startswith(message)
    store = Store.open(f"sqlite:///{home / 'ccm.db'}")
    with store.read() as conn:
        found = chasing.states(conn, "acme").get("C-ANN", chasing.ChasingState())
    store.close()
    assert (found.paused_until, found.on_plan) == (None, False)  # nothing recorded


def test_pause_and_plan_until_accept_today_and_five_years_ahead(capsys, home, cli_books, monkeypatch):
    monkeypatch.setattr(
        "connector.cli.commands.chasing._now", lambda: datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
    )
    assert ccm(capsys, "pause", "Ann", "--until", "2026-11-24")[1] == "Ann's Café: paused until 2026-11-24\n"
    assert ccm(capsys, "plan", "Ann", "--until", "2031-11-24")[0] == 0
