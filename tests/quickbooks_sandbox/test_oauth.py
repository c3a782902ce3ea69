"""Intuit's OAuth as the sandbox plays it, driven with authlib and plain requests."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session

from adapters.quickbooks.sandbox import SCOPE

REDIRECT = "https://ccm.example/callback"


def _http(sandbox) -> requests.Session:
    s = requests.Session()
    s.verify = str(sandbox.ca_path)
    s.trust_env = False
    return s


def _oauth(sandbox, auth_method: str = "client_secret_basic") -> OAuth2Session:
    s = OAuth2Session(
        sandbox.client_id,
        sandbox.client_secret,
        scope=SCOPE,
        redirect_uri=REDIRECT,
        token_endpoint_auth_method=auth_method,
        code_challenge_method="S256",
    )
    s.verify = str(sandbox.ca_path)
    s.trust_env = False
    return s


def _consent(sandbox, oauth: OAuth2Session, verifier: str) -> tuple[str, dict[str, list[str]]]:
    url, state = oauth.create_authorization_url(sandbox.authorize_url, code_verifier=verifier)
    answer = _http(sandbox).get(url, allow_redirects=False)
    assert answer.status_code == 302
    return state, parse_qs(urlparse(answer.headers["location"]).query)


def test_authorize_exchange_and_api_call_with_authlib_and_pkce(sandbox):
    oauth = _oauth(sandbox)
    verifier = generate_token(48)
    state, back = _consent(sandbox, oauth, verifier)
    assert back["state"] == [state] and back["realmId"] == [sandbox.realm]
    token = oauth.fetch_token(sandbox.token_url, code=back["code"][0], code_verifier=verifier)
    assert token["expires_in"] == 3600 and token["x_refresh_token_expires_in"] == 100 * 86400
    answer = oauth.get(f"{sandbox.api_url}/company/{sandbox.realm}/customer/2", params={"minorversion": 75})
    assert answer.status_code == 200 and answer.json()["Customer"]["Id"] == "2"


def test_code_is_single_use_and_verifier_must_match(sandbox):
    oauth = _oauth(sandbox)
    _, back = _consent(sandbox, oauth, generate_token(48))
    with pytest.raises(OAuthError, match="invalid_grant"):
        oauth.fetch_token(sandbox.token_url, code=back["code"][0], code_verifier=generate_token(48))
    with pytest.raises(OAuthError, match="invalid_grant"):
        oauth.fetch_token(sandbox.token_url, code=back["code"][0])


def test_wrong_client_secret_is_invalid_client(sandbox):
    answer = _http(sandbox).post(
        sandbox.token_url,
        data={"grant_type": "refresh_token", "refresh_token": "x"},
        auth=(sandbox.client_id, "wrong"),
    )
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_client"


def test_consent_form_allow_and_deny(sandbox):
    sandbox.auto_consent = False
    http = _http(sandbox)
    params = {
        "client_id": sandbox.client_id,
        "response_type": "code",
        "scope": SCOPE,
        "redirect_uri": REDIRECT,
        "state": "s1",
    }
    page = http.get(sandbox.authorize_url, params=params)
    assert page.status_code == 200 and 'value="allow"' in page.text and 'value="deny"' in page.text
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', page.text))
    denied = http.post(sandbox.authorize_url, data={**fields, "decision": "deny"}, allow_redirects=False)
    assert parse_qs(urlparse(denied.headers["location"]).query) == {
        "error": ["access_denied"],
        "state": ["s1"],
    }
    allowed = http.post(sandbox.authorize_url, data={**fields, "decision": "allow"}, allow_redirects=False)
    assert {"code", "state", "realmId"} <= set(parse_qs(urlparse(allowed.headers["location"]).query))


def _refresh(sandbox, refresh_token: str) -> requests.Response:
    return _http(sandbox).post(
        sandbox.token_url,
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=(sandbox.client_id, sandbox.client_secret),
    )


def test_refresh_token_value_rotates_only_after_24_hours(sandbox):
    first = sandbox.connect()
    sandbox.clock.advance(3600 * 5)
    same = _refresh(sandbox, first["refresh_token"]).json()
    assert same["refresh_token"] == first["refresh_token"] and same["access_token"] != first["access_token"]
    sandbox.clock.advance(3600 * 20)
    rotated = _refresh(sandbox, first["refresh_token"]).json()
    assert rotated["refresh_token"] != first["refresh_token"]
    # the old value still works until the new one is used (a lost answer can be retried) ...
    assert _refresh(sandbox, first["refresh_token"]).json()["refresh_token"] == rotated["refresh_token"]
    assert _refresh(sandbox, rotated["refresh_token"]).status_code == 200
    # ... then it is dead
    dead = _refresh(sandbox, first["refresh_token"])
    assert dead.status_code == 400 and dead.json()["error"] == "invalid_grant"


def test_access_token_lives_an_hour(sandbox):
    token = sandbox.connect()["access_token"]
    assert sandbox.oauth.realm_of(token) == sandbox.realm
    sandbox.clock.advance(3600)
    with pytest.raises(Exception, match="expired"):
        sandbox.oauth.realm_of(token)


def test_refresh_token_dies_after_100_days_unused_and_at_5_years(sandbox):
    tokens = sandbox.connect()
    sandbox.clock.advance(timedelta(days=99).total_seconds())
    tokens = _refresh(sandbox, tokens["refresh_token"]).json()
    sandbox.clock.advance(timedelta(days=100).total_seconds())
    assert _refresh(sandbox, tokens["refresh_token"]).json()["error"] == "invalid_grant"
    tokens = sandbox.connect()
    for _ in range(18):  # refreshed every 99 days, the grant still ends 5 years after consent
        sandbox.clock.advance(timedelta(days=99).total_seconds())
        tokens = _refresh(sandbox, tokens["refresh_token"]).json()
    assert tokens["x_refresh_token_expires_in"] == int(timedelta(days=5 * 365 - 18 * 99).total_seconds())
    sandbox.clock.advance(tokens["x_refresh_token_expires_in"])
    assert _refresh(sandbox, tokens["refresh_token"]).status_code == 400


def test_revoke_ends_the_grant(sandbox):
    tokens = sandbox.connect()
    answer = _http(sandbox).post(
        sandbox.revoke_url,
        json={"token": tokens["refresh_token"]},
        auth=(sandbox.client_id, sandbox.client_secret),
    )
    assert answer.status_code == 200
    assert _refresh(sandbox, tokens["refresh_token"]).json()["error"] == "invalid_grant"
    api = _http(sandbox).get(
        f"{sandbox.api_url}/company/{sandbox.realm}/customer/2",
        params={"minorversion": 75},
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
    )
    assert api.status_code == 401


def test_disconnect_kills_every_token(sandbox):
    tokens = sandbox.connect()
    sandbox.disconnect()
    assert _refresh(sandbox, tokens["refresh_token"]).status_code == 400


def test_client_secret_and_webhook_verifier_never_reach_logs(sandbox):
    from connector.redact import scrub

    line = scrub(f"secret={sandbox.client_secret} verifier={sandbox.notifier.verifier}")
    assert sandbox.client_secret not in line and sandbox.notifier.verifier not in line


def test_on_a_fast_clock_a_code_outlives_five_simulated_minutes_for_a_real_minute(firm, monkeypatch):
    from adapters.quickbooks.sandbox import auth, start
    from tests.clock import sandbox_clock

    sb = start(firm, seed=7, clock=sandbox_clock(speed=3600))  # a minute per 17 ms
    try:

        def exchange_after_six_minutes() -> OAuth2Session | OAuthError:
            oauth = _oauth(sb)
            verifier = generate_token(48)
            _, back = _consent(sb, oauth, verifier)
            time.sleep(0.1)  # six simulated minutes, a tenth of a real second
            try:
                oauth.fetch_token(sb.token_url, code=back["code"][0], code_verifier=verifier)
            except OAuthError as exc:
                return exc
            return oauth

        assert isinstance(exchange_after_six_minutes(), OAuth2Session), "within the real floor the code works"
        monkeypatch.setattr(auth, "CODE_REAL_FLOOR_S", 0.0)
        refused = exchange_after_six_minutes()
        assert isinstance(refused, OAuthError) and refused.error == "invalid_grant"
    finally:
        sb.stop()
