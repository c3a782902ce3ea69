"""The connect pages for a signed-in admin, in Chromium against `ccm serve` and the Xero sandbox: the admin
picks the firm on a form (CSRF token), is sent on to Xero's consent and the firm is connected, both steps in
the audit log; a bookkeeper, a viewer and an anonymous visitor without an invite are refused (403) as before."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlparse

import pytest
import requests
from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]
from sqlalchemy import select

from connector.store.schema import web_audit
from connector.web import users
from connector.web.users import Role
from tests.web.conftest import PASSWORD, TENANT, Site
from tests.web.test_pages import csrf_of, shoot

ADMIN, CLERK = (
    "adm-connect",
    "clerk-connect",
)  # this module's own: no other module's sign-in failures lock them


@pytest.fixture(scope="module", autouse=True)
def people(site: Site) -> None:
    with site.store.begin() as conn:
        if users.get(conn, ADMIN) is None:
            users.add(conn, ADMIN, Role.ADMIN, PASSWORD, datetime.now(UTC))
        if users.get(conn, CLERK) is None:
            users.add(conn, CLERK, Role.BOOKKEEPER, PASSWORD, datetime.now(UTC), [TENANT])


def connect_audit(site: Site) -> list[tuple[str, str, str | None]]:
    a = web_audit.c
    with site.store.read() as conn:
        query = select(a.who, a.what, a.tenant_id).where(a.what.like("connect.%")).order_by(a.audit_id)
        return [(r.who, r.what, r.tenant_id) for r in conn.execute(query)]


def cookies_of(page: Any) -> dict[str, str]:
    return {c["name"]: c["value"] for c in page.context.cookies()}


def test_an_anonymous_visitor_and_a_bookkeeper_still_need_an_invite(site):
    before = connect_audit(site)
    answer = requests.get(f"{site.url}/connect/xero", allow_redirects=False, timeout=10)
    assert answer.status_code == 403 and "ccm invite" in answer.text and "location" not in answer.headers
    posted = requests.post(
        f"{site.url}/connect/xero", data={"tenant": TENANT}, allow_redirects=False, timeout=10
    )
    assert posted.status_code == 403

    page = site.signed_in(CLERK)
    shown = page.goto(f"{site.url}/connect/xero")
    assert shown is not None and shown.status == 403
    assert "Connect link needed" in page.content()
    # Even with the session's own CSRF token, a bookkeeper's POST is refused and starts nothing.
    page.goto(f"{site.url}/t/{TENANT}/")
    token = csrf_of(page)
    refused = requests.post(f"{site.url}/connect/xero", data={"csrf": token, "tenant": TENANT},
                            cookies=cookies_of(page), allow_redirects=False, timeout=10)  # fmt: skip
    assert refused.status_code == 403 and "Only an admin" in refused.text
    page.context.close()
    assert connect_audit(site) == before


def test_an_admins_post_without_the_csrf_token_is_refused(site):
    before = connect_audit(site)
    page = site.signed_in(ADMIN)
    forged = requests.post(f"{site.url}/connect/xero", data={"tenant": TENANT}, cookies=cookies_of(page),
                           allow_redirects=False, timeout=10)  # fmt: skip
    assert forged.status_code == 403 and "location" not in forged.headers
    page.context.close()
    assert connect_audit(site) == before


def test_a_signed_in_admin_connects_a_firm_without_an_invite_and_it_is_audited(site):
    xero_ca = site.env["CCM_XERO__CA_BUNDLE"]  # the sandbox's own CA
    page = site.signed_in(ADMIN)
    shown = page.goto(f"{site.url}/connect/xero?tenant={TENANT}")
    assert shown is not None and shown.status == 200
    assert page.get_by_role("heading", name="Connect a firm to Xero").is_visible()
    violations = Axe().run(page).response["violations"]
    bad = [(v["id"], v["impact"]) for v in violations if v["impact"] in ("serious", "critical")]
    assert bad == []
    shoot(page, "connect-admin")
    assert page.get_by_label("Firm").input_value() == TENANT
    page.get_by_role("button", name="Connect to Xero").click()
    go = page.get_by_role("link", name="Continue to Xero")
    authorize = go.get_attribute("href")
    assert authorize and authorize.startswith("https://")
    page.context.close()
    assert connect_audit(site)[-1] == (ADMIN, "connect.start xero", TENANT)

    # Xero's side, as the admin's browser goes through it: consent, then back to ccm's callback.
    http = requests.Session()
    answer = http.get(authorize, allow_redirects=False, verify=xero_ca, timeout=30)
    if answer.status_code == 200:
        params = dict(parse_qsl(urlparse(authorize).query))
        base = f"{urlparse(authorize).scheme}://{urlparse(authorize).netloc}"
        answer = http.post(base + urlparse(authorize).path, data={**params, "decision": "allow"},
                           allow_redirects=False, verify=xero_ca, timeout=30)  # fmt: skip
    assert answer.status_code in (302, 303), answer.text[:300]
    done = http.get(answer.headers["location"], timeout=30)
    assert done.status_code == 200 and f"Tenant {TENANT} is connected to" in done.text, done.text[:500]
    assert connect_audit(site)[-1][:2] == (ADMIN, "connect.xero Harbour Joinery Ltd")
    # The state was used once: the same consent cannot be replayed.
    again = http.get(answer.headers["location"], timeout=30)
    assert again.status_code == 400
