"""Attacks on `ccm serve`'s public surface, as an outsider on the network would make them, over real HTTP.

The firm `acme` is connected (through an operator's invite) to its Xero organisation and synced; the same
sandbox holds the attacker's organisation. Each attack must leave the firm exactly as it was: its details,
connection, encrypted tokens, records and outbox.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from connector import invites
from connector.model import Tenant
from tests.security.firm import FIRM, OTHER, Target, target
from tests.serve.harness import follow, invite, serving

pytestmark = pytest.mark.slow


def _connected(t: Target, server_url: str) -> None:
    link = invite(t.env, "xero", "acme", "--name", "Acme", "--timezone", "Europe/London",
                  "--contact-email", "owner@acme.example")  # fmt: skip
    page = follow(server_url, link, t.sandbox, choose=t.org[FIRM])
    assert "Tenant acme is connected to" in page.text, page.text
    synced = t.ccm("sync", "-t", "acme")
    assert synced.returncode == 0, synced.stderr
    assert t.stored_customers() == t.ids[FIRM]


def test_no_one_connects_or_repoints_a_firm_without_an_invite(tmp_path: Path):
    with target(tmp_path) as t, serving(t.env, t.port) as server:
        _connected(t, server.url)
        before = t.snapshot()
        takeover = {"tenant": "acme", "name": "Pwned", "timezone": "Asia/Tokyo",
                    "contact_email": "attacker@evil.example", "night_time": "12:00"}  # fmt: skip
        for ledger in ("xero", "quickbooks"):
            answer = requests.get(f"{server.url}/connect/{ledger}", params=takeover, allow_redirects=False,
                                  timeout=10)  # fmt: skip
            assert answer.status_code == 403, answer.text
            assert "location" not in answer.headers  # never sent on to a consent page
            assert "ccm invite" in answer.text and "Nothing was stored" in answer.text
        guessed = requests.get(f"{server.url}/connect/xero", params={"invite": secrets.token_urlsafe(32)},
                               allow_redirects=False, timeout=10)  # fmt: skip
        assert guessed.status_code == 403 and "not valid" in guessed.text
        forged = requests.get(f"{server.url}/oauth/xero/callback",
                              params={"code": "stolen", "state": secrets.token_hex(16)}, timeout=10)  # fmt: skip
        assert forged.status_code == 400
        chosen = requests.post(f"{server.url}/connect/xero/choose",
                               data={"state": secrets.token_hex(16), "choice": t.org[OTHER]}, timeout=10)  # fmt: skip
        assert chosen.status_code == 400
        assert t.snapshot() == before


def test_an_invite_works_once_for_its_own_ledger_and_not_after_it_expires(tmp_path: Path):
    with target(tmp_path) as t, serving(t.env, t.port) as server:
        _connected(t, server.url)
        before = t.snapshot()
        wrong_ledger = invite(t.env, "quickbooks", "newco", "--name", "New Co")
        token = wrong_ledger.split("invite=", 1)[1]
        answer = requests.get(f"{server.url}/connect/xero", params={"invite": token}, allow_redirects=False,
                              timeout=10)  # fmt: skip
        assert answer.status_code == 403 and "is for quickbooks, not xero" in answer.text

        with t.store.begin() as conn:  # an invite the operator made two days ago, for a day
            token = invites.create(conn, "later", "xero", Tenant("later", "Later Ltd", "xero"),
                                   datetime.now(UTC) - timedelta(days=2), timedelta(days=1), "test")  # fmt: skip
        expired = requests.get(f"{server.url}/connect/xero", params={"invite": token}, timeout=10)
        assert expired.status_code == 403 and "expired" in expired.text
        assert t.snapshot() == before

        revoked = invite(t.env, "xero", "acme")
        assert t.ccm("invite", "acme", "--revoke").stdout.startswith("tenant acme: 1 open invite ended")
        answer = requests.get(revoked, allow_redirects=False, timeout=10)
        assert answer.status_code == 403
        assert t.snapshot() == before


def test_an_invite_to_reconnect_cannot_repoint_the_firm_at_another_organisation(tmp_path: Path):
    with target(tmp_path) as t, serving(t.env, t.port) as server:
        _connected(t, server.url)
        details = t.ccm("invite", "acme", "--timezone", "Asia/Tokyo")
        assert (
            details.returncode == 2
            and "--timezone: tenant 'acme' exists and keeps its details" in details.stderr
        )
        unsaid = t.ccm("invite", "newfirm")  # a new tenant: which ledger? every installed one is named
        assert unsaid.returncode == 2
        assert "--ledger: say which ledger the new tenant is on (quickbooks or xero)" in unsaid.stderr
        link = invite(t.env, "xero", "acme")
        before = t.snapshot()

        refused = follow(
            server.url, link, t.sandbox, choose=t.org[OTHER]
        )  # consent to the other organisation
        assert refused.status_code == 409
        assert "holds the records of xero organisation" in refused.text
        assert f"this consent is for {OTHER}" in refused.text and "nothing was stored" in refused.text
        assert "--replace-organisation" in refused.text
        assert t.snapshot() == before
        assert t.open_invites() == 1  # still usable for the right organisation

        page = follow(server.url, link, t.sandbox, choose=t.org[FIRM])
        assert page.status_code == 200 and "Tenant acme is connected to" in page.text
        after = t.snapshot()
        assert after["tenant"] == before["tenant"]  # name, time zone, contact: as the operator set them
        assert after["connection"] == before["connection"] and after["customers"] == before["customers"]
        assert after["tokens"] != before["tokens"]  # the new consent's tokens
        assert t.open_invites() == 0
        again = requests.get(link, allow_redirects=False, timeout=10)
        assert again.status_code == 403 and "already used" in again.text


def test_anonymous_clients_learn_little_and_cannot_grow_the_log(tmp_path: Path):
    with target(tmp_path) as t:
        t.env["CCM_SERVE__METRICS_TOKEN"] = "security-test-metrics-token"
        with serving(t.env, t.port) as server:
            _connected(t, server.url)
            health = requests.get(f"{server.url}/healthz", timeout=10)
            assert health.status_code == 200
            assert "acme" not in health.text and "server" not in health.json()
            assert requests.get(f"{server.url}/metrics", timeout=10).status_code == 401

            flood = 300
            for _ in range(flood):
                answer = requests.post(f"{server.url}/webhooks/xero", data=b'{"events": []}',
                                       headers={"x-xero-signature": "forged"}, timeout=10)  # fmt: skip
                assert answer.status_code == 401
            metrics = requests.get(f"{server.url}/metrics", timeout=10,
                                   headers={"Authorization": "Bearer security-test-metrics-token"})  # fmt: skip
            assert f'ccm_webhooks_total{{ledger="xero",result="rejected"}} {flood}.0' in metrics.text
            assert server.stop() == 0
        logged = [line for line in server.output().splitlines() if "webhook.rejected" in line]
        assert len(logged) == 1, logged  # one line a minute per source, however many came
        assert "security-test-metrics-token" not in server.output()
