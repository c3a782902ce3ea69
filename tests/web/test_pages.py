"""The bookkeeper's pages in Chromium: sign in, review, approve one reminder and reject another, settle a
failed one; who may do what; the sign-in limit; accessibility; screenshots at desktop and phone width."""

from __future__ import annotations

from typing import Any

import requests
from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]
from sqlalchemy import select

from connector import outbox
from connector.outbox import State
from connector.payloads import encode
from connector.store.schema import web_audit
from tests.web.conftest import OTHER, SEND_AT, SHOTS, TENANT, Site


def state_of(site: Site, key: str) -> State:
    with site.store.read() as conn:
        found = outbox.get(conn, TENANT, key)
    assert found is not None
    return found.state


def waiting_reminders(site: Site) -> list[outbox.Action]:
    with site.store.read() as conn:
        found = outbox.actions(conn, TENANT, [State.AWAITING_APPROVAL])
    return [
        a for a in found if a.kind == "reminder" and a.channel == "email" and encode(a.payload).get("email")
    ]


def csrf_of(page: Any) -> str:
    value = page.locator('input[name="csrf"]').first.get_attribute("value")
    assert value
    return str(value)


def shoot(page: Any, name: str) -> None:
    """The page as it is, at desktop width and at a phone's 390 px (where nothing may scroll sideways)."""
    for label, width, height in (("desktop", 1280, 900), ("phone", 390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(SHOTS / f"{name}-{label}.png"))
        if label == "phone":
            assert page.evaluate("document.documentElement.scrollWidth") <= width, name
    page.set_viewport_size({"width": 1280, "height": 900})


def test_an_anonymous_visitor_is_sent_to_sign_in(site):
    page = site.page()
    page.goto(f"{site.url}/t/{TENANT}/approvals")
    assert page.url == f"{site.url}/login?next=%2Ft%2F{TENANT}%2Fapprovals"
    assert page.get_by_role("heading", name="Sign in to ccm").is_visible()
    assert requests.get(f"{site.url}/?format=csv", allow_redirects=False, timeout=10).status_code == 303
    page.context.close()


def test_the_pages_meet_accessibility_basics_and_are_photographed(site):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page = site.signed_in("ann")
    axe = Axe()
    for name, path in (
        ("firms", "/"),
        ("last-night", f"/t/{TENANT}/"),
        ("approvals", f"/t/{TENANT}/approvals"),
    ):
        page.goto(site.url + path)
        violations = axe.run(page).response["violations"]
        bad = [
            (v["id"], v["impact"], len(v["nodes"]))
            for v in violations
            if v["impact"] in ("serious", "critical")
        ]
        assert bad == [], f"{path}: {bad}"
        shoot(page, name)
    page.context.close()
    page = site.page()
    page.goto(site.url + "/login")
    page.screenshot(path=str(SHOTS / "sign-in-desktop.png"))
    page.context.close()


def test_a_bookkeeper_approves_one_reminder_rejects_another_and_only_the_approved_goes_out(site):
    wanted = waiting_reminders(site)
    assert len(wanted) >= 3, "the sandbox firm's night should plan several e-mail reminders"
    approved, rejected, refused = wanted[0], wanted[1], wanted[2]
    site.inbox.refuse.add(str(encode(refused.payload)["email"]))  # its mail server says no: it fails

    page = site.signed_in("ann")
    row = page.get_by_role("row").filter(has_text=TENANT)
    assert "to review" in row.inner_text() and "2026-03-11 02:00" in row.inner_text()  # next night, local
    row.get_by_role("link", name="to review").click()
    page.wait_for_url(f"{site.url}/t/{TENANT}/approvals")
    card = page.locator("article").filter(has=page.locator(f'input[value="{approved.key}"]'))
    frame = card.locator("iframe.mail")
    assert frame.get_attribute("sandbox") == ""  # the e-mail's HTML never runs in ccm's page
    assert str(encode(approved.payload)["customer_name"]) in frame.content_frame.locator("body").inner_text()
    assert card.get_by_text("Subject:").is_visible()

    page.locator(f'button[value="approve:{approved.key}"]').click()
    page.wait_for_url("**/approvals?done=approve&n=1")
    assert "1 action approved" in page.get_by_role("status").inner_text()
    page.locator(f'button[value="reject:{rejected.key}"]').click()
    page.wait_for_url("**/approvals?done=reject&n=1")
    page.locator(f'input[value="{refused.key}"]').check()  # the bulk form: checked, then one button
    page.get_by_role("button", name="Approve checked").click()
    page.wait_for_url("**/approvals?done=approve&n=1")
    assert state_of(site, approved.key) is State.PLANNED
    assert state_of(site, rejected.key) is State.CANCELLED
    assert state_of(site, refused.key) is State.PLANNED

    done = site.ccm("outbox", "send", "-t", TENANT, "--at", SEND_AT)
    assert done.returncode == 0, done.stdout + done.stderr
    sent_keys = [m["X-CCM-Action"] for m in site.inbox.messages]
    assert sent_keys == [approved.key]
    assert [m["To"] for m in site.inbox.messages] == [encode(approved.payload)["email"]]
    assert state_of(site, rejected.key) is State.CANCELLED and state_of(site, refused.key) is State.FAILED

    page.goto(f"{site.url}/t/{TENANT}/")  # the failed one waits for a person: retry it from the page
    failed_row = page.get_by_role("row").filter(has_text=str(encode(refused.payload)["customer_name"]))
    assert "550" in failed_row.inner_text()
    failed_row.get_by_role("button", name="Retry").click()
    page.wait_for_url("**/?done=retry&n=1")
    assert state_of(site, refused.key) is State.PLANNED
    changes = page.get_by_role("region", name="Recent changes").inner_text()
    assert f"ann · outbox.retry {refused.key}: failed → planned" in changes
    assert f"ann · outbox.reject {rejected.key}: awaiting_approval → cancelled" in changes
    with site.store.read() as conn:
        audited = conn.execute(
            select(web_audit.c.who, web_audit.c.what).where(web_audit.c.tenant_id == TENANT)
        )
        assert ("ann", f"outbox.approve {approved.key}") in {tuple(r) for r in audited}

    csv = page.request.get(f"{site.url}/t/{TENANT}/approvals?format=csv")
    assert csv.headers["content-type"].startswith("text/csv")
    assert approved.key not in csv.text() and rejected.key not in csv.text() and "subject" in csv.text()
    page.context.close()


def test_a_viewer_reads_but_a_post_of_theirs_is_refused_and_changes_nothing(site):
    target = waiting_reminders(site)[-1]
    page = site.signed_in("vic")
    page.goto(f"{site.url}/t/{TENANT}/approvals")
    assert page.locator(f'button[value="approve:{target.key}"]').count() == 0  # no buttons to press
    answer = page.request.post(f"{site.url}/t/{TENANT}/approvals",
                               form={"csrf": csrf_of(page), "one": f"approve:{target.key}"})  # fmt: skip
    assert answer.status == 403
    assert state_of(site, target.key) is State.AWAITING_APPROVAL
    page.context.close()


def test_a_post_without_the_forms_token_is_refused_and_changes_nothing(site):
    target = waiting_reminders(site)[-1]
    page = site.signed_in("ann")
    for form in ({"one": f"approve:{target.key}"}, {"one": f"approve:{target.key}", "csrf": "forged"}):
        answer = page.request.post(f"{site.url}/t/{TENANT}/approvals", form=form)
        assert answer.status == 403
    assert state_of(site, target.key) is State.AWAITING_APPROVAL
    page.context.close()


def test_a_firm_not_granted_and_one_that_does_not_exist_are_both_not_found(site):
    page = site.signed_in("ann")
    for tenant in (OTHER, "no-such-firm"):
        assert page.goto(f"{site.url}/t/{tenant}/").status == 404
        assert page.goto(f"{site.url}/t/{tenant}/approvals").status == 404
    page.goto(site.url + "/")
    assert "Other Firm" not in page.content()
    page.context.close()


def test_the_sixth_wrong_password_in_a_row_is_refused_with_429(site):
    page = site.page()
    page.goto(site.url + "/login")
    statuses = []
    for _ in range(6):
        page.get_by_label("Name").fill(
            "mallory"
        )  # nobody real: the lockout must not end other tests' sign-ins
        page.get_by_label("Password").fill("not the password at all")
        with page.expect_response(f"{site.url}/login") as answer:
            page.get_by_role("button", name="Sign in").click()
        statuses.append(answer.value.status)
    assert statuses == [401] * 5 + [429]
    assert "Too many failed sign-ins" in page.get_by_role("alert").inner_text()
    page.context.close()
