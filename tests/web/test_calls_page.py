"""The call list in Chromium: whom to call about which invoices and what to say; a bookkeeper records what came
of a call (a promise that covers the call's invoices), audited; a viewer's and a forged POST change nothing;
accessibility basics and a phone-width screenshot."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import requests
from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]
from sqlalchemy import delete, select

from connector import chasing, outbox
from connector.outbox import Mode, NewAction
from connector.payloads import Kind, decode
from connector.store.schema import call_outcomes, chasing_events, customers, invoices, web_audit
from connector.store.schema import outbox as outbox_table
from connector.web import users
from connector.web.users import Role
from tests.web.conftest import PASSWORD, TENANT, Site
from tests.web.test_pages import csrf_of, shoot

URL = f"/t/{TENANT}/calls"
CLERK, READER = "bob-calls", "val-calls"  # this module's own users
PREFIX = "test-call:"


def _calls(site: Site) -> list[tuple[str, str, str, str]]:
    """Call tasks for the firm's first two customers with open invoices: (key, customer id, name, number)."""
    c, i = customers.c, invoices.c
    with site.store.begin() as conn:
        rows = conn.execute(
            select(i.id, i.number, i.due_date, i.amount_due, i.currency, c.id.label("cid"), c.name)
            .join(customers, (c.tenant_id == i.tenant_id) & (c.id == i.customer_id))
            .where(i.tenant_id == TENANT, i.status == "open", i.amount_due > Decimal(0))
            .order_by(c.name, i.due_date)
        ).all()
        chosen: dict[str, Any] = {}
        for r in rows:
            chosen.setdefault(r.cid, r)
        picked = list(chosen.values())[:2]
        actions = [
            NewAction(
                key=f"{PREFIX}{r.cid}", kind=Kind.CALL_TASK, channel="call_task", customer_id=r.cid,
                payload=decode(Kind.CALL_TASK, {
                    "customer_name": r.name, "email": None, "policy": "standard", "level": 5,
                    "level_name": "phone call", "template": "call", "lines": [{
                        "invoice_id": r.id, "number": r.number, "due_date": r.due_date.isoformat(),
                        "level": 5, "level_name": "phone call", "amount": str(r.amount_due),
                        "currency": r.currency, "days_overdue": 45}]}),
                send_after=datetime(2026, 3, 12, 9, 0, tzinfo=UTC), replay_safe=True,
            )
            for r in picked
        ]  # fmt: skip
        outbox.plan(conn, TENANT, actions, Mode.AUTO, datetime(2026, 3, 10, 9, 30, tzinfo=UTC))
    return [(f"{PREFIX}{r.cid}", r.cid, r.name, r.number) for r in picked]


@pytest.fixture(scope="module")
def tasks(site: Site) -> Iterator[list[tuple[str, str, str, str]]]:
    """Two call tasks of this module's own, and its own users; everything they lead to removed afterwards."""
    with site.store.begin() as conn:
        for name, role in ((CLERK, Role.BOOKKEEPER), (READER, Role.VIEWER)):
            if users.get(conn, name) is None:
                users.add(conn, name, role, PASSWORD, datetime.now(UTC), [TENANT])
    made = _calls(site)
    assert len(made) == 2, "the sandbox firm has customers with open invoices"
    yield made
    with site.store.begin() as conn:
        conn.execute(delete(call_outcomes).where(call_outcomes.c.tenant_id == TENANT))
        conn.execute(delete(chasing_events).where(chasing_events.c.note.like("call%")))
        conn.execute(delete(outbox_table).where(outbox_table.c.key.like(f"{PREFIX}%")))


def cookies_of(page: Any) -> dict[str, str]:
    return {c["name"]: c["value"] for c in page.context.cookies()}


def outcome_rows(site: Site) -> list[tuple[str, str]]:
    with site.store.read() as conn:
        return [(r.key, r.outcome) for r in conn.execute(select(call_outcomes))]


def phones_of(site: Site, ids: list[str]) -> dict[str, str | None]:
    """The customers' numbers as the last sync stored them (None: the ledger keeps none)."""
    c = customers.c
    with site.store.read() as conn:
        rows = conn.execute(select(c.id, c.phone).where(c.tenant_id == TENANT, c.id.in_(ids)))
        return {r.id: r.phone for r in rows}


def test_the_call_list_reads_well_and_is_photographed(site, tasks):
    page = site.signed_in(CLERK)
    page.goto(site.url + URL)
    phones = phones_of(site, [cid for _, cid, _, _ in tasks])
    assert any(phones.values()), "the sandbox gives most customers a phone number"
    for _, cid, name, number in tasks:
        card = page.locator("article.call", has_text=f"Call {name}")
        assert card.count() == 1, name
        text = card.inner_text()
        assert number in text and "45 days overdue" in text
        phone = phones[cid]
        if phone:  # the number to dial, as a tel: link
            assert phone in text and "No phone number on record" not in text
            assert card.locator(f'a[href="tel:{phone.replace(" ", "")}"]').count() == 1
        else:
            assert "No phone number on record" in text
        assert "What to say: Ask" in text and "Say you are calling from Harbour Joinery Ltd" in text
    violations = Axe().run(page).response["violations"]
    bad = [
        (v["id"], v["impact"], len(v["nodes"])) for v in violations if v["impact"] in ("serious", "critical")
    ]
    assert bad == []
    shoot(page, "calls")  # desktop and 390 px wide, nothing scrolling sideways
    csv_text = requests.get(site.url + URL + "?format=csv", cookies=cookies_of(page), timeout=10).text
    assert csv_text.startswith("key,customer,phone,invoices,amounts,total,what to say,due (UTC)")
    assert all(name in csv_text and number in csv_text for _, _, name, number in tasks)
    page.context.close()


def test_a_viewers_post_and_a_forged_one_change_nothing(site, tasks):
    key = tasks[0][0]
    page = site.signed_in(READER)
    page.goto(site.url + URL)
    assert page.locator("form.outcome").count() == 0  # a viewer is shown no form
    token = csrf_of(page)  # the sign-out form's
    form = {"key": key, "outcome": "paid"}
    refused = requests.post(site.url + URL, data={**form, "csrf": token}, cookies=cookies_of(page),
                            allow_redirects=False, timeout=10)  # fmt: skip
    assert refused.status_code == 403
    page.context.close()
    page = site.signed_in(CLERK)
    forged = requests.post(
        site.url + URL, data=form, cookies=cookies_of(page), allow_redirects=False, timeout=10
    )
    assert forged.status_code == 403
    page.context.close()
    assert outcome_rows(site) == []


def test_a_bookkeeper_records_a_promise_from_the_call_and_it_is_audited(site, tasks):
    key, customer_id, name, _ = tasks[0]
    page = site.signed_in(CLERK)
    page.goto(site.url + URL)
    # A date before the firm's today: the browser's date field does not offer it; the server refuses it too.
    past = {"csrf": csrf_of(page), "key": key, "outcome": "promise", "until": "2026-03-01", "amount": "50"}
    refused = requests.post(
        site.url + URL, data=past, cookies=cookies_of(page), allow_redirects=False, timeout=10
    )
    assert refused.status_code == 400 and "Pay by: 2026-03-01 is in the past" in refused.text
    assert outcome_rows(site) == []

    card = page.locator("article.call", has_text=f"Call {name}")
    card.locator("select[name=outcome]").select_option("promise")
    card.locator("input[name=until]").fill("2026-03-31")
    card.locator("input[name=amount]").fill("50")
    card.locator("input[name=note]").fill("pays at month end")
    card.get_by_role("button", name=f"Record the call to {name}").click()
    status = page.get_by_role("status").inner_text()
    assert (
        f"Recorded for {name}: promised to pay £50.00" in status
        and "by 2026-03-31: pays at month end" in status
    )
    assert page.locator("article.call", has_text=f"Call {name}").count() == 0  # done: off the list
    assert page.locator("article.call", has_text=f"Call {tasks[1][2]}").count() == 1
    page.context.close()

    assert outcome_rows(site) == [(key, "promise")]
    with site.store.read() as conn:
        promised = chasing.states(conn, TENANT)[customer_id].promised
        planned = outbox.get(conn, TENANT, key)
        a = web_audit.c
        audited = conn.execute(select(a.who, a.after).where(a.what == f"call.done {key}")).all()
    assert set(promised.values()) == {date(2026, 3, 31)} and len(promised) == 1
    assert planned is not None and planned.state == "cancelled"  # called already: not listed again
    assert [(r.who, r.after["outcome"]) for r in audited] == [(CLERK, "promise")]
    page = site.signed_in(CLERK)
    page.goto(f"{site.url}/t/{TENANT}/")  # the firm's page lists the change
    assert f"call.done {key}: to call → called: promise" in page.locator("#changes + ul").inner_text()
    page.context.close()
