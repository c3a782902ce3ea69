"""Credit control and dunning end to end on both sandboxes (issue 7, "what it must show").

Each test starts a sandbox in-process, connects through the ledger's real OAuth flow, runs
`connector.run.night.run_night` against a real store and a real SMTP server, and checks what the ledger's
own book shows afterwards: holds, notes, and how many writes it received.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest

from connector import creditcontrol as credit
from connector import outbox
from connector.config import Settings
from connector.model import Money, Status, Tenant
from connector.payloads import encode
from connector.reconcile import load_snapshot, reconcile
from connector.rules.calendar import SendCalendar
from connector.run.execute import Executor
from connector.run.night import run_night
from connector.run.plan import Context
from connector.store import Store
from connector.sync import run_sync
from connector.wiring import ledger_for, mapping_for
from tests import clock
from tests.e2e.sandboxes import LONDON, QuickBooksSide, Side, connected, start

OVER_LIMIT_ONLY = "version: 1\nrules:\n  - {when: over_limit, tolerance_percent: 5}\n"
OWN_NOTES = "Prefers a call before 11:00\nPO numbers on every invoice"
RELEASED = "no hold rule applies any more"


@dataclass(frozen=True)
class Days:
    """A business day D in the tenant's zone: its night (02:00, planning) and its morning (09:30, sending)."""

    night: datetime
    morning: datetime
    next_night: datetime
    day: date


def days() -> Days:
    cal = SendCalendar(LONDON[1], LONDON[2])
    tomorrow = clock.TODAY + timedelta(days=1)  # the sandboxes' firms end yesterday (tests/clock.py)
    opening = cal.next_send_time(datetime.combine(tomorrow, time(0, 0), tzinfo=cal.zone)).astimezone(cal.zone)
    night = opening.replace(hour=2, minute=0)
    return Days(
        night.astimezone(UTC), (opening + timedelta(minutes=30)).astimezone(UTC),
        (night + timedelta(days=1)).astimezone(UTC), opening.date(),
    )  # fmt: skip


@pytest.fixture(params=["xero", "quickbooks"])
def side(request: pytest.FixtureRequest) -> Iterator[Side]:
    running = start(request.param)
    yield running
    running.handle.stop()


@pytest.fixture
def tenant(side: Side, settings: Settings, store: Store) -> Tenant:
    return connected(side, settings, store)


def open_invoices(store: Store, tenant_id: str, on: date) -> dict[str, list[tuple[str, Decimal, Decimal]]]:
    """Per customer, (invoice id, outstanding as ccm reckons it, amount due as the ledger says) of open ones."""
    snapshot = load_snapshot(store, tenant_id)
    found: dict[str, list[tuple[str, Decimal, Decimal]]] = {}
    for state in reconcile(snapshot, on).ledger.invoices.values():
        inv = state.invoice
        if inv.status is Status.OPEN and state.outstanding > 0:
            found.setdefault(inv.customer_id, []).append((inv.id, state.outstanding, inv.amount_due.amount))
    return found


def disagreeing_customers(store: Store, tenant_id: str, on: date) -> set[str]:
    """Customers with an invoice whose outstanding ccm reckons differently from the ledger's amount due
    (a planted discrepancy, e.g. an invoice marked paid by a payment in another currency)."""
    states = reconcile(load_snapshot(store, tenant_id), on).ledger.invoices.values()
    return {
        s.invoice.customer_id
        for s in states
        if s.invoice.status.live and s.outstanding != s.invoice.amount_due.amount
    }


def over_limit_customer(store: Store, settings: Settings, tenant: Tenant, on: date) -> tuple[str, Money]:
    """A GBP customer whose invoices ccm and the ledger all agree on (no planted discrepancy), with
    their exposure: paying their open invoices clears it."""
    ledger = ledger_for(settings, store, tenant)
    run_sync(store, tenant.id, ledger, mapping_for(settings, tenant))
    invoices = open_invoices(store, tenant.id, on)
    disagreeing = disagreeing_customers(store, tenant.id, on)
    with store.read() as conn:
        _, accounts = credit.decide(conn, load_snapshot(store, tenant.id), on, ())
    for account in sorted(accounts, key=lambda a: a.customer_id):
        mine = invoices.get(account.customer_id, [])
        if (
            account.exposure.currency == "GBP"
            and account.exposure.amount > 200
            and mine
            and account.customer_id not in disagreeing
        ):
            return account.customer_id, account.exposure
    raise AssertionError("the demo firm has no customer with open GBP invoices")


def test_over_the_limit_is_held_in_the_ledger_and_released_once_paid(side, settings, store, tenant):
    d = days()
    rules = settings.tenant_dir(tenant.id) / "credit.yaml"
    rules.parent.mkdir(parents=True, exist_ok=True)
    rules.write_text(OVER_LIMIT_ONLY)  # the tenant's own rules: only limits put anyone on hold here
    customer_id, exposure = over_limit_customer(store, settings, tenant, d.day)
    if isinstance(side, QuickBooksSide):
        side.set_customer_notes(customer_id, OWN_NOTES)
    limit = Money((exposure.amount / 2).quantize(Decimal("0.01")), "GBP")
    with store.begin() as conn:
        credit.set_limit(conn, tenant.id, customer_id, limit, d.night, "set")
    before = side.writes()

    night = run_night(store, settings, tenant.id, now=d.night)

    reason = f"exposure {exposure} is over the limit {limit} by more than 5%"
    assert [(h.customer_id, h.action, h.reason) for h in night.holds] == [(customer_id, "hold", reason)]
    assert night.outcome is not None and night.outcome.holds == [customer_id]
    assert side.on_hold(customer_id)
    assert any(reason in note for note in side.notes(customer_id))
    if isinstance(side, QuickBooksSide):
        notes = side.customer_notes(customer_id).split("\n")
        assert notes[:2] == OWN_NOTES.split("\n")  # the firm's own text, untouched, above ccm's line
        assert notes[2].startswith("[ccm credit hold] since ") and notes[2].endswith(reason)
    held = side.writes()
    assert held > before

    again = run_night(store, settings, tenant.id, now=d.night)

    assert again.holds == []
    assert again.outcome is not None and again.outcome.holds == [] and again.outcome.notes == 0
    assert side.writes() == held  # the same night twice: the ledger receives nothing new

    for invoice_id, _, due in open_invoices(store, tenant.id, d.day)[customer_id]:
        side.pay(invoice_id, due)
    paid = run_night(store, settings, tenant.id, now=d.next_night)

    released = f"{RELEASED}: nothing is owed (net exposure £0.00)"
    assert [(h.customer_id, h.action, h.reason) for h in paid.holds] == [(customer_id, "release", released)]
    assert not side.on_hold(customer_id)
    assert RELEASED in side.notes(customer_id)[-1]
    if isinstance(side, QuickBooksSide):
        assert side.customer_notes(customer_id) == OWN_NOTES
    with store.read() as conn:
        assert not credit.holds(conn, tenant.id)[customer_id].on_hold


def test_a_payment_between_planning_and_sending_cancels_that_reminder(side, settings, store, tenant, inbox):
    d = days()
    night = run_night(store, settings, tenant.id, now=d.night)

    assert night.plan is not None and inbox.messages == []  # planned at night, nothing sent outside hours
    planned = [a for a in night.plan.actions if a.channel == "email" and len(encode(a.payload)["lines"]) >= 2]
    assert planned, "the demo firm has a customer due a reminder for two or more invoices"
    action = planned[0]
    paid, *still_due = encode(action.payload)["lines"]
    side.pay(paid["invoice_id"], Decimal(paid["amount"]))

    morning = run_night(store, settings, tenant.id, now=d.morning)

    assert morning.outcome is not None
    cancelled = dict(morning.outcome.cancelled)
    assert cancelled[action.key] == f"{paid['number']}: paid, credited or voided since planning"
    to_them = [m for m in inbox.messages if m["To"] == encode(action.payload)["email"]]
    assert len(to_them) == 1
    body = to_them[0].get_body(preferencelist=("plain",)).get_content()
    assert paid["number"] not in body
    for line in still_due:
        assert line["number"] in body
    assert to_them[0]["X-CCM-Action"] != action.key
    sent, writes = len(inbox.messages), side.writes()

    again = run_night(store, settings, tenant.id, now=d.morning)

    assert again.outcome is not None and again.outcome.sent == [] and again.outcome.notes == 0
    assert (len(inbox.messages), side.writes()) == (sent, writes)  # nothing goes out twice


def test_a_reminder_waits_when_the_ledger_cannot_be_rechecked_before_sending(
    side, settings, store, tenant, inbox
):
    d = days()
    night = run_night(store, settings, tenant.id, now=d.night)
    planned = {a.key for a in night.plan.actions if a.channel == "email"} if night.plan else set()
    assert planned, "the demo firm has reminders to send in the morning"
    if isinstance(side, QuickBooksSide):
        side.handle.disconnect()  # the firm revoked ccm in QuickBooks: the re-pull cannot happen
    else:
        side.handle.disconnect(side.handle.tenant_id)

    ledger = ledger_for(settings, store, tenant)
    executor = Executor(store, settings, Context.load(settings, tenant), ledger, "morning-send")
    outcome = executor.run(
        d.morning, resync=lambda: run_sync(store, tenant.id, ledger, mapping_for(settings, tenant))
    )

    assert outcome.sent == [] and inbox.messages == []
    held = dict(outcome.deferred)
    assert planned <= set(held)
    assert all(
        reason.startswith("not sent: the ledger could not be re-checked first") for reason in held.values()
    )
    with store.read() as conn:
        waiting = {
            a.key: a.send_after for a in outbox.due(conn, tenant.id, d.morning + timedelta(minutes=15))
        }
    assert planned <= set(waiting)  # tried again a quarter of an hour later, not dropped
