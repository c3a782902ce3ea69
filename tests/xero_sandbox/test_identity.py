"""The sandbox's Xero identity service: consent, code exchange, PKCE, expiry, rotation with grace, revocation."""

from __future__ import annotations

import time

import requests
from authlib.integrations.requests_client import OAuth2Session

from adapters.sandbox import SandboxClock
from adapters.xero.sandbox import start
from tests.xero_sandbox.conftest import NOON, REDIRECT, authorize, code_from, connect, pkce, token


def test_auto_consent_redirects_with_a_code_and_the_state(fixed):
    query = code_from(authorize(fixed.sandbox, state="abc"))
    assert query["state"] == "abc"
    assert query["code"]


def test_the_consent_form_allows_or_denies(firm):
    sb = start(firm, auto_consent=False, clock=SandboxClock(NOON))
    try:
        page = authorize(sb, state="xyz")
        assert page.status_code == 200 and "Allow access" in page.text and firm.name in page.text
        form = {
            "response_type": "code",
            "client_id": sb.client_id,
            "redirect_uri": REDIRECT,
            "state": "xyz",
            "scope": "offline_access accounting.transactions",
        }
        url = f"{sb.base_url}/identity/connect/authorize"
        denied = requests.post(
            url, data={**form, "decision": "deny"}, verify=str(sb.ca_path), allow_redirects=False
        )
        assert code_from(denied) == {"error": "access_denied", "state": "xyz"}
        allowed = requests.post(
            url, data={**form, "decision": "allow"}, verify=str(sb.ca_path), allow_redirects=False
        )
        assert "code" in code_from(allowed)
    finally:
        sb.stop()


def test_an_unknown_client_is_refused_at_authorize(fixed):
    answer = requests.get(
        f"{fixed.sandbox.base_url}/identity/connect/authorize",
        verify=str(fixed.sandbox.ca_path),
        params={"response_type": "code", "client_id": "nobody", "redirect_uri": REDIRECT, "scope": "openid"},
        allow_redirects=False,
    )
    assert answer.status_code == 400 and "unauthorized_client" in answer.text


def test_code_exchange_works_with_basic_auth_and_client_secret_post_and_only_once(fixed):
    sb = fixed.sandbox
    for basic in (True, False):
        code = code_from(authorize(sb))["code"]
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT}
        first = token(sb, form, basic=basic)
        assert first.status_code == 200
        body = first.json()
        assert body["expires_in"] == 1800 and body["token_type"] == "Bearer" and body["refresh_token"]
        again = token(sb, form, basic=basic)
        assert (again.status_code, again.json()) == (400, {"error": "invalid_grant"})


def test_a_wrong_client_secret_is_invalid_client(fixed):
    sb = fixed.sandbox
    answer = requests.post(
        f"{sb.base_url}/connect/token",
        auth=(sb.client_id, "wrong"),
        verify=str(sb.ca_path),
        data={"grant_type": "refresh_token", "refresh_token": fixed.tokens["refresh_token"]},
    )
    assert (answer.status_code, answer.json()) == (400, {"error": "invalid_client"})


def test_pkce_needs_the_matching_verifier(fixed):
    sb = fixed.sandbox
    verifier, challenge = pkce()
    code = code_from(authorize(sb, challenge=challenge))["code"]
    wrong = token(
        sb,
        {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier + "x",
        },
    )
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    code = code_from(authorize(sb, challenge=challenge))["code"]
    # A public client (PKCE, no secret) may exchange with its client_id alone.
    right = requests.post(
        f"{sb.base_url}/connect/token",
        verify=str(sb.ca_path),
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
            "client_id": sb.client_id,
        },
    )
    assert right.status_code == 200 and right.json()["access_token"]


def test_access_tokens_expire_after_30_minutes_of_the_sandbox_clock(fixed):
    assert fixed.get("Contacts").status_code == 200
    fixed.sandbox.clock.advance(29 * 60)
    assert fixed.get("Contacts").status_code == 200
    fixed.sandbox.clock.advance(61)
    expired = fixed.get("Contacts")
    assert expired.status_code == 401 and expired.json()["Detail"].startswith("TokenExpired")


def test_refresh_rotates_and_the_previous_token_replays_the_same_pair_for_30_minutes(fixed):
    sb = fixed.sandbox
    old = fixed.tokens["refresh_token"]
    first = token(sb, {"grant_type": "refresh_token", "refresh_token": old}, basic=False).json()
    assert first["refresh_token"] != old and first["access_token"] != fixed.tokens["access_token"]
    sb.clock.advance(29 * 60)
    lost_and_retried = token(sb, {"grant_type": "refresh_token", "refresh_token": old}).json()
    assert lost_and_retried == first
    sb.clock.advance(2 * 60)
    late = token(sb, {"grant_type": "refresh_token", "refresh_token": old})
    assert (late.status_code, late.json()) == (400, {"error": "invalid_grant"})
    newer = token(sb, {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]})
    assert newer.status_code == 200


def test_an_unused_refresh_token_dies_after_60_days(fixed):
    sb = fixed.sandbox
    sb.clock.advance(60 * 86_400 + 1)
    dead = token(sb, {"grant_type": "refresh_token", "refresh_token": fixed.tokens["refresh_token"]})
    assert (dead.status_code, dead.json()) == (400, {"error": "invalid_grant"})


def test_connections_list_the_tenant_and_revocation_removes_them(fixed):
    sb = fixed.sandbox
    auth = {"Authorization": f"Bearer {fixed.tokens['access_token']}"}
    rows = requests.get(f"{sb.base_url}/connections", headers=auth, verify=str(sb.ca_path)).json()
    assert [(r["tenantId"], r["tenantType"]) for r in rows] == [(sb.tenant_id, "ORGANISATION")]
    revoked = requests.post(
        f"{sb.base_url}/connect/revocation",
        auth=(sb.client_id, sb.client_secret),
        data={"token": fixed.tokens["refresh_token"]},
        verify=str(sb.ca_path),
    )
    assert revoked.status_code == 200
    assert fixed.get("Contacts").status_code == 401
    dead = token(sb, {"grant_type": "refresh_token", "refresh_token": fixed.tokens["refresh_token"]})
    assert dead.json() == {"error": "invalid_grant"}


def test_a_disconnected_tenant_is_forbidden_but_the_token_still_lists_connections(fixed):
    fixed.sandbox.disconnect()
    answer = fixed.get("Invoices")
    assert answer.status_code == 403 and answer.json()["Detail"] == "AuthenticationUnsuccessful"
    sb = fixed.sandbox
    rows = requests.get(
        f"{sb.base_url}/connections",
        verify=str(sb.ca_path),
        headers={"Authorization": f"Bearer {fixed.tokens['access_token']}"},
    ).json()
    assert rows == []


def test_deleting_a_connection_disconnects_that_tenant(fixed):
    sb = fixed.sandbox
    auth = {"Authorization": f"Bearer {fixed.tokens['access_token']}"}
    [row] = requests.get(f"{sb.base_url}/connections", headers=auth, verify=str(sb.ca_path)).json()
    gone = requests.delete(f"{sb.base_url}/connections/{row['id']}", headers=auth, verify=str(sb.ca_path))
    assert gone.status_code == 204
    assert fixed.get("Invoices").status_code == 403


def test_a_token_without_offline_access_gets_no_refresh_token(fixed):
    other = connect(fixed.sandbox, scopes=("accounting.transactions.read",))
    assert "refresh_token" not in other.tokens


def test_authlib_runs_the_whole_flow_against_the_sandbox(fixed):
    sb = fixed.sandbox
    verifier, _ = pkce()
    session = OAuth2Session(
        sb.client_id,
        sb.client_secret,
        scope="offline_access accounting.transactions",
        redirect_uri=REDIRECT,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_post",
    )
    session.verify = str(sb.ca_path)
    url, state = session.create_authorization_url(
        f"{sb.base_url}/identity/connect/authorize", code_verifier=verifier
    )
    callback = requests.get(url, verify=str(sb.ca_path), allow_redirects=False).headers["location"]
    tokens = session.fetch_token(
        f"{sb.base_url}/connect/token",
        authorization_response=callback,
        code_verifier=verifier,
        state=state,
        verify=str(sb.ca_path),
    )
    refreshed = session.refresh_token(
        f"{sb.base_url}/connect/token", refresh_token=tokens["refresh_token"], verify=str(sb.ca_path)
    )
    assert refreshed["refresh_token"] != tokens["refresh_token"]


def test_issued_tokens_and_the_client_secret_never_reach_text_that_is_scrubbed(fixed):
    from connector.redact import scrub

    line = f"token={fixed.tokens['access_token']} refresh {fixed.tokens['refresh_token']} {fixed.sandbox.client_secret}"
    cleaned = scrub(line)
    assert fixed.tokens["access_token"] not in cleaned and fixed.tokens["refresh_token"] not in cleaned
    assert fixed.sandbox.client_secret not in cleaned


def test_on_a_fast_clock_a_code_outlives_five_simulated_minutes_for_a_real_minute(monkeypatch):
    from adapters.sandbox.generator import generate
    from adapters.xero.sandbox import identity
    from tests.clock import TODAY

    sb = start(generate(2, "demo", today=TODAY), clock=SandboxClock(NOON, speed=3600))  # a minute per 17 ms
    try:

        def exchange_after_six_minutes() -> requests.Response:
            code = code_from(authorize(sb))["code"]
            time.sleep(0.1)  # six simulated minutes, a tenth of a real second
            return token(sb, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT})

        assert exchange_after_six_minutes().status_code == 200, "within the real floor the code still works"
        monkeypatch.setattr(identity, "CODE_REAL_FLOOR_S", 0.0)
        late = exchange_after_six_minutes()
        assert (late.status_code, late.json()) == (400, {"error": "invalid_grant"})
    finally:
        sb.stop()
