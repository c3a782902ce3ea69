"""`ccm connect` over HTTP end to end against both sandboxes: consent given, consent denied, disconnect."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlparse

import pytest
import requests

from adapters.sandbox.generator import FirmSize, generate
from connector.config import load_settings
from connector.model import ConnectionState
from connector.oauth import TokenVault
from connector.store import Store
from connector.store.tenants import get_connection, list_tenants
from tests import clock

CCM = str(Path(sys.executable).parent / "ccm")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _sandbox(ledger: str, auto_consent: bool) -> tuple[Any, dict[str, str]]:
    if ledger == "xero":
        from adapters.xero import sandbox as xero

        h = xero.start(
            seed=3, size="demo", clock=clock.sandbox_clock(), limits=False, auto_consent=auto_consent
        )
        return h, h.env()
    from adapters.quickbooks import sandbox as qbo

    q = qbo.start(generate(3, "demo", today=clock.TODAY), seed=3, clock=clock.sandbox_clock(), limits=False,
                  auto_consent=auto_consent)  # fmt: skip
    return q, q.env()


def _env(ledger: str, sandbox_env: dict[str, str], home: Path) -> dict[str, str]:
    key = "XERO" if ledger == "xero" else "QUICKBOOKS"
    redirect = f"http://127.0.0.1:{_free_port()}/oauth/{ledger}/callback"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CCM_")}
    return clean | sandbox_env | {"CCM_HOME": str(home), f"CCM_{key}__REDIRECT_URI": redirect}


def _browse(sandbox: Any, url: str, *, allow: bool | None) -> requests.Response:
    """What the person's browser does: open the page (and answer the consent form), follow the redirect."""
    answer = requests.get(url, allow_redirects=False, verify=str(sandbox.ca_path), timeout=30)
    if allow is not None:  # a consent form: post it back with the person's decision
        params = dict(parse_qsl(urlparse(url).query))
        path = urlparse(url).path
        answer = requests.post(sandbox.base_url + path, data={**params, "decision": "allow" if allow else "deny"},
                               allow_redirects=False, verify=str(sandbox.ca_path), timeout=30)  # fmt: skip
    assert answer.status_code in (302, 303, 307), answer.text[:300]
    return requests.get(answer.headers["location"], timeout=30)  # back to ccm's loopback callback


def _connect(env: dict[str, str], ledger: str) -> subprocess.Popen[str]:
    return subprocess.Popen([CCM, "connect", ledger, "-t", "acme", "--no-browser", "--timeout", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip


def _authorize_url(child: subprocess.Popen[str]) -> str:
    assert child.stdout is not None
    for _ in range(5):
        line = child.stdout.readline()
        if re.match(r"^https://", line):
            return line.strip()
    raise AssertionError("ccm connect printed no authorize URL")


@pytest.mark.parametrize("ledger", ["xero", "quickbooks"])
def test_connect_then_sync_then_disconnect(ledger: str, tmp_path: Path):
    sandbox, sandbox_env = _sandbox(ledger, auto_consent=True)
    try:
        env = _env(ledger, sandbox_env, tmp_path / "home")
        child = _connect(env, ledger)
        url = _authorize_url(child)
        assert _browse(sandbox, url, allow=None).text == "ccm: connected. You can close this window."
        stdout, stderr = child.communicate(timeout=60)
        assert child.returncode == 0, stderr
        assert "connected tenant acme to" in stdout
        listed = subprocess.run([CCM, "connections"], capture_output=True, text=True, env=env, check=False)
        assert "acme" in listed.stdout and "connected" in listed.stdout
        synced = subprocess.run(
            [CCM, "sync", "-t", "acme"], capture_output=True, text=True, env=env, check=False
        )
        assert synced.returncode == 0, synced.stderr[-2000:]
        gone = subprocess.run(
            [CCM, "disconnect", "acme"], capture_output=True, text=True, env=env, check=False
        )
        assert gone.returncode == 0, gone.stderr
        settings = load_settings(None, env)
        store = Store.open(settings.db_url)
        with store.read() as conn:
            link = get_connection(conn, "acme")
        assert link is not None and link.state is ConnectionState.DISCONNECTED
        assert TokenVault.open(store, settings).get("acme") is None
        store.close()
        again = subprocess.run(
            [CCM, "sync", "-t", "acme"], capture_output=True, text=True, env=env, check=False
        )
        assert again.returncode != 0  # the ledger no longer lets ccm in
    finally:
        sandbox.stop()


@pytest.mark.parametrize("ledger", ["xero", "quickbooks"])
def test_a_person_who_denies_consent_gets_a_clear_message_and_nothing_is_stored(ledger: str, tmp_path: Path):
    sandbox, sandbox_env = _sandbox(ledger, auto_consent=False)
    try:
        env = _env(ledger, sandbox_env, tmp_path / "home")
        child = _connect(env, ledger)
        url = _authorize_url(child)
        assert "not granted" in _browse(sandbox, url, allow=False).text
        _, stderr = child.communicate(timeout=60)
        assert child.returncode == 1
        assert stderr == "ccm: consent was not given (access_denied); nothing was stored\n"
        settings = load_settings(None, env)
        store = Store.open(settings.db_url)
        with store.read() as conn:
            assert list_tenants(conn) == []
        assert TokenVault.open(store, settings).get("acme") is None
        store.close()
    finally:
        sandbox.stop()


def test_a_redirect_uri_that_is_not_loopback_is_refused(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CCM_")} | {
        "CCM_HOME": str(tmp_path), "CCM_XERO__REDIRECT_URI": "https://example.com/callback",
        "CCM_XERO__CLIENT_ID": "x", "CCM_XERO__CLIENT_SECRET": "y",
    }  # fmt: skip
    done = subprocess.run([CCM, "connect", "xero", "-t", "acme", "--no-browser"], capture_output=True, text=True,
                          env=env, check=False)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.startswith("ccm: error: xero.redirect_uri: redirect_uri must be a loopback http URL")


def _two_org_xero() -> tuple[Any, dict[str, str]]:
    from adapters.xero import sandbox as xero

    size = FirmSize(5, 100, 50)
    h = xero.start(generate(91, size, today=clock.TODAY, name="North Ltd"), clock=clock.sandbox_clock(),
                   extra_firms=[generate(92, size, today=clock.TODAY, name="South Ltd")], limits=False)  # fmt: skip
    return h, {"CCM_XERO__CLIENT_ID": h.client_id, "CCM_XERO__CLIENT_SECRET": h.client_secret,
               "CCM_XERO__LOGIN_URL": h.base_url, "CCM_XERO__IDENTITY_URL": h.base_url,
               "CCM_XERO__API_URL": h.base_url, "CCM_XERO__CA_BUNDLE": str(h.ca_path)}  # fmt: skip


def test_several_xero_organisations_from_one_consent_become_tenants_sharing_it(tmp_path: Path):
    sandbox, sandbox_env = _two_org_xero()
    try:
        env = _env("xero", sandbox_env, tmp_path / "home")
        child = subprocess.Popen([CCM, "connect", "xero", "-t", "north", "--org", "North Ltd", "--org",
                                  "South Ltd=south", "--no-browser", "--timeout", "60"], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
        _browse(sandbox, _authorize_url(child), allow=None)
        stdout, stderr = child.communicate(timeout=60)
        assert child.returncode == 0, stderr
        assert "connected tenant north to North Ltd" in stdout
        assert "connected tenant south to South Ltd" in stdout
        settings = load_settings(None, env)
        store = Store.open(settings.db_url)
        vault = TokenVault.open(store, settings)
        assert vault.sharing("north") == ["south"]
        store.close()

        undecided = _connect(env, "xero")  # two granted, no --org, no terminal to ask at
        _browse(sandbox, _authorize_url(undecided), allow=None)
        _, stderr = undecided.communicate(timeout=60)
        assert undecided.returncode == 1
        assert stderr.startswith("ccm: several organisations were granted; choose one: North Ltd (")
        assert stderr.endswith("nothing was stored (connect again with --org NAME)\n")
    finally:
        sandbox.stop()
