"""Snoozing on the approvals page in Chromium: one row or the checked ones leave the list until the time given,
their send time moved with it, each audited; a past time is refused with nothing changed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import requests
from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]
from sqlalchemy import delete, select, update

from connector import outbox, snooze
from connector.outbox import State
from connector.store.schema import outbox as outbox_table
from connector.store.schema import outbox_snoozes, web_audit
from connector.web import users
from connector.web.users import Role
from tests.web.conftest import PASSWORD, TENANT, Site
from tests.web.test_pages import csrf_of

URL = f"/t/{TENANT}/approvals"
CLERK = "sam-snooze"
UNTIL = datetime(2026, 3, 12, 9, 0, tzinfo=UTC)  # 09:00 in London in March (GMT)


@pytest.fixture(scope="module")
def waiting(site: Site) -> Iterator[list[outbox.Action]]:
    """The firm's actions awaiting approval; afterwards their snoozes ended and send times put back."""
    with site.store.begin() as conn:
        if users.get(conn, CLERK) is None:
            users.add(conn, CLERK, Role.BOOKKEEPER, PASSWORD, datetime.now(UTC), [TENANT])
        found = outbox.actions(conn, TENANT, [State.AWAITING_APPROVAL])
    assert len(found) >= 3, "the night in approve mode left several actions awaiting approval"
    yield found
    with site.store.begin() as conn:
        conn.execute(delete(outbox_snoozes).where(outbox_snoozes.c.tenant_id == TENANT))
        o = outbox_table.c
        for a in found:
            conn.execute(
                update(outbox_table)
                .where(o.tenant_id == TENANT, o.key == a.key)
                .values(send_after=a.send_after)
            )


def shown_keys(page: object) -> set[str]:
    boxes = page.locator('input[name="keys"]')  # type: ignore[attr-defined]
    return {boxes.nth(n).get_attribute("value") for n in range(boxes.count())}


def test_one_row_and_the_checked_ones_are_snoozed_until_a_time_and_audited(site, waiting):
    page = site.signed_in(CLERK)
    page.goto(site.url + URL)
    keys = sorted(shown_keys(page))
    assert len(keys) >= 3
    violations = Axe().run(page).response["violations"]
    assert [(v["id"], v["impact"]) for v in violations if v["impact"] in ("serious", "critical")] == []

    # A time already past is refused, nothing snoozed.
    past = {"csrf": csrf_of(page), "one": f"snooze:{keys[0]}", f"until:{keys[0]}": "2026-03-01T09:00"}
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    refused = requests.post(site.url + URL, data=past, cookies=cookies, allow_redirects=False, timeout=10)
    assert refused.status_code == 400 and "must end in the future" in refused.text

    first = page.locator(f'input[name="until:{keys[0]}"]')
    first.fill("2026-03-12T09:00")
    card = page.locator("article.card", has=first)
    card.get_by_role("button", name="Snooze").click()
    assert (
        "1 action snoozed: off this list, and not sent, until the snooze ends."
        in page.get_by_role("status").inner_text()
    )
    assert keys[0] not in shown_keys(page)

    for key in keys[1:3]:
        page.locator(f'input[name="keys"][value="{key}"]').check()
    page.get_by_label("Snooze until", exact=True).fill("2026-03-12T09:00")
    page.get_by_role("button", name="Snooze checked").click()
    assert "2 actions snoozed" in page.get_by_role("status").inner_text()
    assert not shown_keys(page) & set(keys[:3])
    page.context.close()

    with site.store.read() as conn:
        assert snooze.hidden(conn, TENANT, datetime(2026, 3, 12, 8, 59, tzinfo=UTC)) == set(keys[:3])
        assert snooze.hidden(conn, TENANT, UNTIL) == set()  # back on the list when the snooze ends
        moved = {a.key: a for a in outbox.by_keys(conn, TENANT, keys[:3])}
        a = web_audit.c
        audited = conn.execute(select(a.who, a.what, a.after).where(a.what.like("outbox.snooze %"))).all()
    assert all(m.state is State.AWAITING_APPROVAL and m.send_after == UNTIL for m in moved.values())
    assert sorted(r.what for r in audited) == sorted(f"outbox.snooze {k}" for k in keys[:3])
    assert {r.who for r in audited} == {CLERK}
    assert {r.after["snoozed_until"] for r in audited} == {"2026-03-12 09:00 UTC"}
