"""The settings page in Chromium: everyone granted reads the firm's sender, window, mode and policies; an admin
changes the mode and the sender identity (audited, before and after); a bookkeeper's or viewer's POST is 403
and changes nothing; a template previews against a chosen customer; axe; a 390 px screenshot."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]
from sqlalchemy import select

from connector.firmprofile import FirmProfile, load_profile, save_profile
from connector.store.schema import customers, invoices, web_audit
from connector.store.tenants import get_standing, set_mode
from connector.web import users
from connector.web.users import Role
from tests.web.conftest import PASSWORD, TENANT, Site
from tests.web.test_pages import csrf_of, shoot

URL = f"/t/{TENANT}/settings"
ADMIN, VIEWER = "ada", "val"  # this module's own: another module's wrong passwords may have locked vic out


@pytest.fixture(scope="module", autouse=True)
def people(site: Site) -> Iterator[None]:
    """An admin and a viewer of this module's own; the firm's mode and profile put back afterwards."""
    with site.store.begin() as conn:
        for name, role in ((ADMIN, Role.ADMIN), (VIEWER, Role.VIEWER)):
            if users.get(conn, name) is None:
                users.add(
                    conn, name, role, PASSWORD, datetime.now(UTC), None if role is Role.ADMIN else [TENANT]
                )
        mode, profile = get_standing(conn, TENANT).chosen, load_profile(conn, TENANT)
    yield
    with site.store.begin() as conn:
        set_mode(conn, TENANT, mode)
        save_profile(conn, TENANT, profile)


def chosen_mode(site: Site) -> str | None:
    with site.store.read() as conn:
        return get_standing(conn, TENANT).chosen


def audited(site: Site, what: str) -> list[tuple[str, Any, Any]]:
    a = web_audit.c
    with site.store.read() as conn:
        query = (
            select(a.who, a.before, a.after).where(a.tenant_id == TENANT, a.what == what).order_by(a.audit_id)
        )
        return [tuple(r) for r in conn.execute(query)]


def test_an_admin_changes_the_firms_mode_and_it_is_audited_with_before_and_after(site):
    before = chosen_mode(site)
    page = site.signed_in(ADMIN)
    page.goto(site.url + URL)
    page.get_by_label("Firm's mode").select_option("dry-run")
    page.get_by_role("button", name="Save mode").click()
    page.wait_for_url("**/settings?done=mode")
    assert "The firm's mode is saved." in page.get_by_role("status").inner_text()
    assert chosen_mode(site) == "dry-run"
    mode = page.get_by_role("region", name="Mode").inner_text()
    assert "Tonight: dry-run" in mode and "Chosen for the firm: dry-run" in mode
    assert audited(site, "settings.mode")[-1] == (ADMIN, {"mode": before}, {"mode": "dry-run"})

    page.get_by_label("Firm's mode").select_option("default")
    page.get_by_role("button", name="Save mode").click()
    page.wait_for_url("**/settings?done=mode")
    assert chosen_mode(site) is None
    page.context.close()


def test_an_admin_sets_the_sender_and_a_bad_address_is_refused_with_nothing_stored(site):
    page = site.signed_in(ADMIN)
    page.goto(site.url + URL)
    page.get_by_text("Change the sender identity").click()  # the form opens (no script: <details>)
    page.get_by_label("From name").fill("Harbour Credit Control")
    page.get_by_label("From address").fill("credit@harbour.example")
    page.get_by_label("Company number line").fill("Registered in England and Wales no. 01234567")
    page.get_by_role("button", name="Save sender identity").click()
    page.wait_for_url("**/settings?done=profile")
    sender = page.get_by_role("region", name="Sender identity").inner_text()
    assert "Harbour Credit Control <credit@harbour.example>" in sender
    assert "Registered in England and Wales no. 01234567" in sender
    with site.store.read() as conn:
        stored = load_profile(conn, TENANT)
    assert (stored.from_name, stored.from_address) == ("Harbour Credit Control", "credit@harbour.example")
    who, before, after = audited(site, "settings.profile")[-1]
    assert (
        who == ADMIN and before["from_address"] is None and after["from_address"] == "credit@harbour.example"
    )

    answer = page.request.post(site.url + URL + "/profile",
                               form={"csrf": csrf_of(page), "from_address": "not an address"})  # fmt: skip
    assert answer.status == 400 and "--from-address" in answer.text()
    with site.store.read() as conn:
        assert load_profile(conn, TENANT) == stored
    page.context.close()


@pytest.mark.parametrize("name", ["ann", VIEWER])
def test_a_bookkeeper_or_viewer_reads_but_cannot_change_settings(site, name):
    with site.store.begin() as conn:
        save_profile(conn, TENANT, FirmProfile(from_name="Before Ltd"))
    mode = chosen_mode(site)
    page = site.signed_in(name)
    page.goto(site.url + URL)
    assert "an admin changes them" in page.content()
    assert page.get_by_role("button", name="Save mode").count() == 0
    assert "Before Ltd" in page.get_by_role("region", name="Sender identity").inner_text()
    token = csrf_of(page)
    assert page.request.post(site.url + URL + "/mode", form={"csrf": token, "mode": "auto"}).status == 403
    answer = page.request.post(site.url + URL + "/profile", form={"csrf": token, "from_name": "Changed"})
    assert answer.status == 403
    assert chosen_mode(site) == mode
    with site.store.read() as conn:
        assert load_profile(conn, TENANT).from_name == "Before Ltd"
    page.context.close()


def test_a_post_without_the_forms_token_is_refused(site):
    page = site.signed_in(ADMIN)
    page.goto(site.url + URL)
    assert page.request.post(site.url + URL + "/mode", form={"mode": "auto"}).status == 403
    assert chosen_mode(site) != "auto"
    page.context.close()


def test_a_template_previews_for_a_chosen_customer_with_their_open_invoices(site):
    i, c = invoices.c, customers.c
    with site.store.read() as conn:
        name, number = conn.execute(
            select(c.name, i.number)
            .join(customers, (c.tenant_id == i.tenant_id) & (c.id == i.customer_id))
            .where(
                i.tenant_id == TENANT, i.status == "open", i.amount_due > Decimal(0), i.number.is_not(None)
            )
            .order_by(i.due_date)
            .limit(1)
        ).one()
    page = site.signed_in("ann")
    page.goto(site.url + URL)
    policies = page.get_by_role("region", name="Policies in use").inner_text()
    assert "first reminder" in policies and "after the due date" in policies
    page.get_by_label("Template", exact=True).select_option("reminder")
    page.get_by_label("Customer (name as in the ledger)").fill(name.upper())  # any case finds them
    page.get_by_role("button", name="Preview").click()
    page.wait_for_url("**/settings?template=reminder&customer=*")
    card = page.locator("article")
    assert f"reminder for {name}" in card.inner_text() and "Subject:" in card.inner_text()
    frame = card.locator("iframe.mail")
    assert frame.get_attribute("sandbox") == ""
    body = frame.content_frame.locator("body").inner_text()
    assert name in body and number in body

    page.goto(site.url + URL + "?template=reminder&customer=Nobody+Of+That+Name")
    assert "No customer is named 'Nobody Of That Name'" in page.locator("article").inner_text()
    page.context.close()


def test_the_settings_page_meets_accessibility_basics_and_fits_a_phone(site):
    page = site.signed_in(ADMIN)
    page.goto(site.url + URL)
    violations = Axe().run(page).response["violations"]
    bad = [
        (v["id"], v["impact"], len(v["nodes"])) for v in violations if v["impact"] in ("serious", "critical")
    ]
    assert bad == []
    shoot(page, "settings")
    page.context.close()
