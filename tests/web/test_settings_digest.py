"""The settings page shows the morning digest as connector/digest.py keeps it (`ccm tenants set T --digest`),
not a profile field: off, on to the firm's contact address, or on but with no address to send to."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import fields, replace
from datetime import UTC, datetime

import pytest

from connector import digest
from connector.firmprofile import FirmProfile
from connector.store.tenants import get_tenant, save_tenant
from tests.web.conftest import TENANT, Site

URL = f"/t/{TENANT}/settings"


@pytest.fixture
def firm_put_back(site: Site) -> Iterator[None]:
    with site.store.read() as conn:
        tenant, was = get_tenant(conn, TENANT), digest.enabled(conn, TENANT)
    yield
    with site.store.begin() as conn:
        save_tenant(conn, tenant)
        digest.set_enabled(conn, TENANT, was, datetime.now(UTC))


def _digest_line(site: Site) -> str:
    page = site.signed_in("ann")
    page.goto(site.url + URL)
    text = page.locator("p.digest").inner_text()
    page.context.close()
    return " ".join(text.split())


def test_the_settings_page_shows_the_morning_digest_as_it_is_kept(site, firm_put_back):
    assert "digest" not in {f.name for f in fields(FirmProfile)}  # one place holds the opt-in
    now = datetime.now(UTC)
    with site.store.begin() as conn:
        digest.set_enabled(conn, TENANT, False, now)
    assert _digest_line(site).startswith("Off")

    with site.store.begin() as conn:
        digest.set_enabled(conn, TENANT, True, now)
        save_tenant(conn, replace(get_tenant(conn, TENANT), contact_email=None))
    assert _digest_line(site).startswith("On, but the firm has no contact address, so none is sent")

    with site.store.begin() as conn:
        save_tenant(conn, replace(get_tenant(conn, TENANT), contact_email="owner@harbour.example"))
    assert _digest_line(site) == "On: last night's summary goes to owner@harbour.example each morning."
