"""Connecting a firm through `ccm serve`'s own pages, over HTTP, against both sandboxes.

A person opens /connect/{ledger}, consents (or does not) on the ledger's page, and comes back to the server's
callback. Consent given: the tenant, its connection and its encrypted tokens are stored and the tenant is
scheduled. Consent denied, a forged or replayed callback, an organisation that was not granted, a bad tenant
id: a page saying what happened, and nothing stored.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import func, select

from adapters.quickbooks import sandbox as qbo_sandbox
from adapters.sandbox.generator import generate
from adapters.xero import sandbox as xero_sandbox
from connector.config import load_settings
from connector.model import ConnectionState
from connector.oauth import TokenVault
from connector.store import Store
from connector.store.schema import apscheduler_jobs, oauth_states, oauth_tokens, tenants
from connector.store.tenants import get_connection, get_tenant
from tests.serve.harness import SMALL, clean_env, connect, free_port, qbo_env, serving, wait_for, xero_env

pytestmark = pytest.mark.slow


def _count(store: Store, table) -> int:
    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


@pytest.mark.parametrize("ledger", ["xero", "quickbooks"])
def test_connecting_through_the_server(ledger: str, tmp_path: Path):
    port = free_port()
    sandbox: Any
    if ledger == "xero":
        sandbox = xero_sandbox.start(seed=71, size="demo", limits=False, auto_consent=False)
        env_for = xero_env
    else:
        sandbox = qbo_sandbox.start(seed=72, size="demo", limits=False, auto_consent=False)
        env_for = qbo_env
    home = tmp_path / "home"
    env = clean_env() | env_for(sandbox, port) | {"CCM_HOME": str(home)}
    store = Store.open(f"sqlite:///{home / 'ccm.db'}")
    try:
        with serving(env, port) as server:
            ask = requests.get(f"{server.url}/connect/{ledger}", timeout=10)
            assert ask.status_code == 200 and 'name="tenant"' in ask.text  # no tenant given: a form asks

            bad = requests.get(f"{server.url}/connect/{ledger}", params={"tenant": "../etc"}, timeout=10)
            assert bad.status_code == 400
            assert "tenant: use letters, digits" in bad.text
            zone = requests.get(f"{server.url}/connect/{ledger}", params={"tenant": "acme", "timezone": "Mars/Base"},
                                timeout=10)  # fmt: skip
            assert zone.status_code == 400 and "timezone: unknown time zone &#39;Mars/Base&#39;" in zone.text

            denied = connect(server.url, ledger, "acme", sandbox, allow=False)
            assert denied.status_code == 200
            assert "Access was not granted (access_denied); nothing was stored." in denied.text
            assert (_count(store, tenants), _count(store, oauth_tokens), _count(store, oauth_states)) == (
                0,
                0,
                0,
            )

            forged = requests.get(f"{server.url}/oauth/{ledger}/callback",
                                  params={"code": "x", "state": secrets.token_hex(16), "realmId": "1"}, timeout=10)  # fmt: skip
            assert forged.status_code == 400 and "unknown, expired or already used" in forged.text

            page = connect(server.url, ledger, "acme", sandbox, timezone="America/New_York", country="US",
                           base_currency="USD", night_time="03:15", contact_email="owner@acme.example")  # fmt: skip
            assert page.status_code == 200, page.text
            assert "Tenant acme is connected to" in page.text
            assert "its nights at 03:15 America/New_York" in page.text
            wait_for(lambda: _count(store, apscheduler_jobs) >= 1, 10, "the tenant's nightly job")
            health = server.health()
            assert health["status"] == "ok" and health["database"] == "ok"
            assert server.stop() == 0
    finally:
        sandbox.stop()

    with store.read() as conn:
        tenant = get_tenant(conn, "acme")
        link = get_connection(conn, "acme")
        jobs = [row.id for row in conn.execute(select(apscheduler_jobs.c.id))]
    assert (tenant.timezone, tenant.country, tenant.base_currency) == ("America/New_York", "US", "USD")
    assert (tenant.night_time, tenant.contact_email) == ("03:15", "owner@acme.example")
    assert link is not None and link.state is ConnectionState.CONNECTED
    assert "night:acme" in jobs
    settings = load_settings(None, env)
    tokens = TokenVault.open(store, settings).get("acme")
    assert tokens is not None and tokens.access_token
    with store.read() as conn:
        stored = conn.execute(select(oauth_tokens.c.ciphertext)).scalar_one()
    assert tokens.access_token not in stored and tokens.refresh_token not in stored  # encrypted at rest
    assert _count(store, oauth_states) == 0  # each state is used once
    store.close()


def test_a_consent_covering_several_xero_organisations_lets_the_person_pick(tmp_path: Path):
    port = free_port()
    firms = [
        generate(73 + i, SMALL, name=name) for i, name in enumerate(("North Ltd", "South Ltd", "West Ltd"))
    ]
    xero = xero_sandbox.start(firms[0], extra_firms=firms[1:], limits=False)
    org = {book.firm_name: tid for tid, book in xero.books.items()}
    home = tmp_path / "home"
    env = clean_env() | xero_env(xero, port) | {"CCM_HOME": str(home)}
    store = Store.open(f"sqlite:///{home / 'ccm.db'}")
    try:
        with serving(env, port) as server:
            asked = connect(server.url, "xero", "north", xero)  # stops at the choice
            assert "Choose the organisations" in asked.text
            assert all(name in asked.text for name in org)
            offered = (
                'name="tenant_' + org["South Ltd"] + '" value="south-ltd"'
            )  # a tenant id made from its name
            assert offered in asked.text
            state = asked.text.split('name="state" value="', 1)[1].split('"', 1)[0]
            wrong = requests.post(f"{server.url}/connect/xero/choose", data={"state": state, "choice": "nope"},
                                  timeout=10)  # fmt: skip
            assert wrong.status_code == 400 and "nothing was stored" in wrong.text
            assert _count(store, tenants) == 0

            asked = connect(server.url, "xero", "north", xero)
            state = asked.text.split('name="state" value="', 1)[1].split('"', 1)[0]
            form = [("state", state), ("choice", org["North Ltd"]), ("choice", org["South Ltd"]),
                    ("tenant_" + org["North Ltd"], "north"), ("tenant_" + org["South Ltd"], "south")]  # fmt: skip
            page = requests.post(f"{server.url}/connect/xero/choose", data=form, timeout=10)
            assert page.status_code == 200, page.text
            assert "Tenant north is connected to North Ltd" in page.text
            assert "tenant south is connected to South Ltd" in page.text
            assert server.stop() == 0
    finally:
        xero.stop()
    with store.read() as conn:
        links = {t: get_connection(conn, t) for t in ("north", "south")}
        grants = dict(conn.execute(select(oauth_tokens.c.tenant_id, oauth_tokens.c.grant_id)).all())
    assert {t: link.external_id for t, link in links.items() if link} == {
        "north": org["North Ltd"],
        "south": org["South Ltd"],
    }
    assert grants["north"] == grants["south"] is not None  # one consent: one token set, kept together
    assert _count(store, tenants) == 2  # West Ltd was granted but not chosen
    store.close()
