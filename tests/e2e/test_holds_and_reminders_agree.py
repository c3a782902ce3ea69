"""Holds follow exposure, and holds and reminders agree, on both sandboxes (issue 12, items 5 and 8).

A small firm built by hand (not the generator's demo), on a pinned day: a customer in credit with an old open
invoice, a customer over their limit on a debt 400 days old, a customer whose only debt is 350 days old and
small, and a customer 10 days late. One night plans and holds; its morning sends. What the customers receive
is read from the SMTP server, what is held from the night's decisions and the outbox.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from adapters.quickbooks import sandbox as qbo_sandbox
from adapters.sandbox.records import Firm, GenCustomer, GenInvoice, GenLine, GenPayment
from adapters.xero import sandbox as xero_sandbox
from connector import creditcontrol as credit
from connector.config import Settings
from connector.model import Money, Tenant
from connector.payloads import encode
from connector.run.night import run_night
from connector.store import Store
from tests.e2e.sandboxes import QuickBooksSide, Side, XeroSide, connected
from tests.smtp import Inbox

DAY = date(2026, 11, 24)  # a Tuesday, no bank holiday in England
NIGHT = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # London is on GMT in November
MORNING = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
GENTLE = "If payment is already on its way, thank you"
POLICY = """version: 1
default: everyone
policies:
  - name: everyone
    days: calendar
    chase_on_hold: true
    levels:
      - {name: first reminder, offset: 3, channel: email, template: reminder}
      - {name: second reminder, offset: 14, channel: email, template: firm, min_days_since_last: 7}
      - {name: final notice, offset: 30, channel: email, template: final, min_days_since_last: 7}
"""
WHEN = datetime(2025, 1, 1, tzinfo=UTC)


def uid(n: int) -> str:
    """A uuid-shaped id, as both ledgers' sandboxes expect of a generated firm."""
    return f"00000000-0000-4000-8000-{n:012d}"


def customer(cid: str, name: str) -> GenCustomer:
    email = f"{name.split(maxsplit=1)[0].lower()}@example.com"
    return GenCustomer(id=cid, name=name, email=email, currency="GBP", behaviour="never", segment="Retail",
                       created=WHEN, updated=WHEN)  # fmt: skip


def invoice(iid: str, number: str, cid: str, amount: str, days_overdue: int) -> GenInvoice:
    due = DAY - timedelta(days=days_overdue)
    total = Decimal(amount)
    stamp = datetime.combine(due - timedelta(days=30), datetime.min.time(), tzinfo=UTC)
    return GenInvoice(
        id=iid, number=number, customer_id=cid, issue_date=due - timedelta(days=30), due_date=due,
        currency="GBP", currency_rate=Decimal(1), lines=(GenLine("Installation", Decimal(1), total, Decimal(0)),),
        subtotal=total, tax=Decimal(0), total=total, status="authorised", created=stamp, updated=stamp,
    )  # fmt: skip


def firm() -> Firm:
    paid_on = DAY - timedelta(days=30)
    stamp = datetime.combine(paid_on, datetime.min.time(), tzinfo=UTC)
    overpayment = GenPayment(
        id=uid(9), customer_id=uid(1), date=paid_on, currency="GBP", currency_rate=Decimal(1),
        amount=Decimal("1417.90"), kind="overpayment", allocations=(), created=stamp, updated=stamp,
    )  # fmt: skip
    return Firm(
        name="Hand Built Ltd", base_currency="GBP", country="GB", timezone="Europe/London", today=DAY,
        customers=(
            customer(uid(1), "Juniper Software Services"), customer(uid(2), "Kestrel Motors"),
            customer(uid(3), "Elm Bakery"), customer(uid(4), "Ashford Florist"),
        ),
        invoices=(
            invoice(uid(5), "INV-000101", uid(1), "1000.00", 90),
            invoice(uid(6), "INV-000102", uid(2), "2000.00", 400),
            invoice(uid(7), "INV-000103", uid(3), "300.00", 350),
            invoice(uid(8), "INV-000104", uid(4), "200.00", 10),
        ),
        payments=(overpayment,), credit_notes=(), plants=(),
    )  # fmt: skip


@pytest.fixture(params=["xero", "quickbooks"])
def side(request: pytest.FixtureRequest) -> Iterator[Side]:
    running: Side = (
        XeroSide(xero_sandbox.start(firm(), limits=False))
        if request.param == "xero"
        else QuickBooksSide(qbo_sandbox.start(firm(), limits=False))
    )
    yield running
    running.handle.stop()


@pytest.fixture
def tenant(side: Side, settings: Settings, store: Store) -> Tenant:
    found = connected(side, settings, store)
    folder = settings.tenant_dir(found.id)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "policy.yaml").write_text(POLICY)
    return found


def ids_of(store: Store, tenant_id: str) -> dict[str, str]:
    """Customer name -> ccm's id for it (each ledger numbers customers its own way)."""
    from connector.reconcile import load_snapshot

    return {c.name: c.id for c in load_snapshot(store, tenant_id).customers}


def bodies(inbox: Inbox) -> dict[str, str]:
    """Recipient -> plain-text body of every message the SMTP server received."""
    found = {}
    for message in inbox.messages:
        body = message.get_body(preferencelist=("plain",))
        assert body is not None, f"a message to {message['To']} has no text part"
        found[str(message["To"])] = body.get_content()
    return found


def test_a_night_holds_by_net_exposure_and_words_each_first_reminder_for_the_customer(
    side, settings, store, tenant, inbox
):
    from connector.reconcile import load_snapshot
    from connector.sync import run_sync
    from connector.wiring import ledger_for, mapping_for

    run_sync(store, tenant.id, ledger_for(settings, store, tenant), mapping_for(settings, tenant))
    ids = ids_of(store, tenant.id)
    assert len(load_snapshot(store, tenant.id).invoices) == 4
    kestrel, juniper = ids["Kestrel Motors"], ids["Juniper Software Services"]
    with store.begin() as conn:
        credit.set_limit(conn, tenant.id, kestrel, Money(Decimal("500"), "GBP"), NIGHT, "set")
        # held by a rule on an earlier night, when Juniper still owed; the overpayment has come in since
        credit.record_hold(conn, tenant.id, juniper, True, "rule", "payment rating E", "hold-earlier", NIGHT)

    night = run_night(store, settings, tenant.id, now=NIGHT)

    decided = {h.customer_id: (h.action, h.reason) for h in night.holds}
    assert decided[kestrel][0] == "hold"
    assert decided[kestrel][1].startswith("exposure £2,000.00 is over the limit £500.00 by more than 5%")
    assert decided[juniper] == (
        "release",
        "no hold rule applies any more: nothing is owed "
        "(net exposure -£417.90: open £1,000.00 less £1,417.90 unapplied)",
    )
    assert set(decided) == {kestrel, juniper}  # Elm (300.00 owed) is under every rule's 500.00
    assert night.outcome is not None and night.outcome.holds == [kestrel]
    assert night.outcome.releases == [juniper]  # written to the ledger through the outbox
    with store.read() as conn:
        assert not credit.holds(conn, tenant.id)[juniper].on_hold
    assert night.plan is not None
    assert night.plan.evaluation.flags == (  # a question for the bookkeeper, not a hold
        "Juniper Software Services: £1,417.90 unapplied while 1 invoice(s) are due a reminder; apply it in "
        "the ledger or refund it",
    )
    worded = {encode(a.payload)["customer_name"]: encode(a.payload)["template"] for a in night.plan.actions}
    assert worded == {"Kestrel Motors": "hold", "Elm Bakery": "overdue", "Ashford Florist": "reminder"}

    run_night(store, settings, tenant.id, now=MORNING)

    sent = bodies(inbox)
    assert set(sent) == {"kestrel@example.com", "elm@example.com", "ashford@example.com"}
    assert "on credit hold" in sent["kestrel@example.com"] and GENTLE not in sent["kestrel@example.com"]
    assert "well past its due date" in sent["elm@example.com"] and GENTLE not in sent["elm@example.com"]
    assert GENTLE in sent["ashford@example.com"]  # ten days late: the gentle first reminder is right
