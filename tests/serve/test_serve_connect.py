"""Connecting a firm through `ccm serve`'s own pages, over HTTP, against both sandboxes.

The operator makes a link with `ccm invite`; the firm's owner opens it, consents (or does not) on the
ledger's page, and comes back to the server's callback. Consent given: the tenant, its connection and its
encrypted tokens are stored and the tenant is scheduled. Consent denied, a forged or replayed callback, an
organisation that was not granted: a page saying what happened, and nothing stored. (Attacks on these pages
are in tests/security/test_connect_pages.py.)
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
from connector.store.schema import oauth_grants, oauth_states, oauth_tokens, tenants
from connector.store.tenants import get_connection, get_tenant
from tests import clock
from tests.serve.harness import (
    SMALL,
    clean_env,
    connect,
    follow,
    free_port,
    invite,
    qbo_env,
    serving,
    wait_for,
    xero_env,
)

pytestmark = pytest.mark.slow


def _count(store: Store, table) -> int:
    with store.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


@pytest.mark.parametrize("ledger", ["xero", "quickbooks"])
def test_connecting_through_the_server(ledger: str, tmp_path: Path):
    port = free_port()
    sandbox: Any
    if ledger == "xero":
        sandbox = xero_sandbox.start(seed=71, size="demo", clock=clock.sandbox_clock(), limits=False,
                                     auto_consent=False)  # fmt: skip
        env_for = xero_env
    else:
        sandbox = qbo_sandbox.start(generate(72, "demo", today=clock.TODAY), seed=72, clock=clock.sandbox_clock(),
                                    limits=False, auto_consent=False)  # fmt: skip
        env_for = qbo_env
    home = tmp_path / "home"
    env = clean_env() | env_for(sandbox, port) | {"CCM_HOME": str(home)}
    store = Store.open(f"sqlite:///{home / 'ccm.db'}")
    try:
        with serving(env, port) as server:
            ask = requests.get(f"{server.url}/connect/{ledger}", timeout=10)
            assert ask.status_code == 403 and f"ccm invite TENANT --ledger {ledger}" in ask.text

            denied = connect(server, ledger, "acme", sandbox, allow=False)
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

            link = invite(server.env, ledger, "acme", "--timezone", "America/New_York", "--country", "US",
                          "--base-currency", "USD", "--night-time", "03:15",
                          "--contact-email", "owner@acme.example")  # fmt: skip
            page = follow(server.url, link, sandbox)
            assert page.status_code == 200, page.text
            assert "Tenant acme is connected to" in page.text
            assert "its nights at 03:15 America/New_York" in page.text
            again = requests.get(link, allow_redirects=False, timeout=10)
            assert again.status_code == 403 and "already used" in again.text
            wait_for(lambda: server.health()["scheduled"] >= 1, 10, "the tenant's nightly job")
            health = server.health()
            assert health["status"] == "ok" and health["database"] == "ok" and health["scheduled"] == 1
            assert server.stop() == 0
    finally:
        sandbox.stop()

    with store.read() as conn:
        tenant = get_tenant(conn, "acme")
        connection = get_connection(conn, "acme")
    assert (tenant.timezone, tenant.country, tenant.base_currency) == ("America/New_York", "US", "USD")
    assert (tenant.night_time, tenant.contact_email) == ("03:15", "owner@acme.example")
    assert connection is not None and connection.state is ConnectionState.CONNECTED
    settings = load_settings(None, env)
    tokens = TokenVault.open(store, settings).get("acme")
    assert tokens is not None and tokens.access_token
    with store.read() as conn:
        stored = conn.execute(select(oauth_grants.c.ciphertext)).scalar_one()
    assert tokens.access_token not in stored and tokens.refresh_token not in stored  # encrypted at rest
    assert _count(store, oauth_states) == 0  # each state is used once
    store.close()


def test_a_consent_covering_several_xero_organisations_lets_the_person_pick_the_one(tmp_path: Path):
    port = free_port()
    firms = [
        generate(73 + i, SMALL, today=clock.TODAY, name=name)
        for i, name in enumerate(("North Ltd", "South Ltd", "West Ltd"))
    ]
    xero = xero_sandbox.start(firms[0], extra_firms=firms[1:], clock=clock.sandbox_clock(), limits=False)
    org = {book.firm_name: tid for tid, book in xero.books.items()}
    home = tmp_path / "home"
    env = clean_env() | xero_env(xero, port) | {"CCM_HOME": str(home)}
    store = Store.open(f"sqlite:///{home / 'ccm.db'}")
    try:
        with serving(env, port) as server:
            link = invite(server.env, "xero", "north", "--name", "North")
            asked = follow(server.url, link, xero)  # stops at the choice
            assert "Choose the organisation" in asked.text and "Which one is North?" in asked.text
            assert all(name in asked.text for name in org)
            assert 'name="tenant_' not in asked.text  # the invite names the tenant: no other can be made
            state = asked.text.split('name="state" value="', 1)[1].split('"', 1)[0]
            wrong = requests.post(f"{server.url}/connect/xero/choose", data={"state": state, "choice": "nope"},
                                  timeout=10)  # fmt: skip
            assert wrong.status_code == 400 and "nothing was stored" in wrong.text
            assert _count(store, tenants) == 0

            asked = follow(server.url, link, xero)  # the link was not used up by the failed choice
            state = asked.text.split('name="state" value="', 1)[1].split('"', 1)[0]
            two = [("state", state), ("choice", org["North Ltd"]), ("choice", org["South Ltd"])]
            both = requests.post(f"{server.url}/connect/xero/choose", data=two, timeout=10)
            assert both.status_code == 400 and "choose exactly one organisation" in both.text
            assert _count(store, tenants) == 0

            page = follow(server.url, link, xero, choose=org["North Ltd"])
            assert page.status_code == 200, page.text
            assert "Tenant north is connected to North Ltd" in page.text
            assert server.stop() == 0
    finally:
        xero.stop()
    with store.read() as conn:
        link_row = get_connection(conn, "north")
        assert get_tenant(conn, "north").name == "North"
    assert link_row is not None and link_row.external_id == org["North Ltd"]
    assert _count(store, tenants) == 1  # South and West were granted but not chosen
    store.close()
