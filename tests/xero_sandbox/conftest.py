"""Fixtures for the Xero sandbox tests: a running sandbox and a connected token, over real HTTPS."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from adapters.sandbox import SandboxClock
from adapters.sandbox.generator import Firm, generate
from adapters.xero.sandbox import XeroSandbox, start

TODAY = date(2026, 11, 23)
NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
BROAD = (
    "openid",
    "profile",
    "email",
    "offline_access",
    "accounting.transactions",
    "accounting.contacts",
    "accounting.settings.read",
)
REDIRECT = "https://app.example.com/callback"


@pytest.fixture(scope="session")
def firm() -> Firm:
    return generate(1, "demo", today=TODAY)


@dataclass
class Connected:
    """A sandbox with a connected token: what an adapter holds after the OAuth dance."""

    sandbox: XeroSandbox
    tokens: dict[str, Any]
    http: requests.Session = field(default_factory=requests.Session)  # keep-alive: one TLS handshake

    @property
    def headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.tokens['access_token']}",
            "xero-tenant-id": self.sandbox.tenant_id,
            "Accept": "application/json",
        }

    def get(self, path: str, **kw: Any) -> requests.Response:
        headers = {**self.headers, **kw.pop("headers", {})}
        return requests.get(
            f"{self.sandbox.api_url}/{path}",
            headers=headers,
            verify=str(self.sandbox.ca_path),
            timeout=10,
            **kw,
        )

    def send(self, method: str, path: str, **kw: Any) -> requests.Response:
        headers = {**self.headers, **kw.pop("headers", {})}
        return self.http.request(
            method,
            f"{self.sandbox.api_url}/{path}",
            headers=headers,
            verify=str(self.sandbox.ca_path),
            timeout=10,
            **kw,
        )


def authorize(
    sb: XeroSandbox, scopes=BROAD, challenge: str | None = None, state: str = "st-1"
) -> requests.Response:
    params = {
        "response_type": "code",
        "client_id": sb.client_id,
        "redirect_uri": REDIRECT,
        "scope": " ".join(scopes),
        "state": state,
    }
    if challenge:
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    return requests.get(
        f"{sb.base_url}/identity/connect/authorize",
        params=params,
        verify=str(sb.ca_path),
        allow_redirects=False,
        timeout=10,
    )


def code_from(answer: requests.Response) -> dict[str, str]:
    assert answer.status_code == 302, answer.text
    return {k: v[0] for k, v in parse_qs(urlparse(answer.headers["location"]).query).items()}


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def token(sb: XeroSandbox, form: dict[str, str], basic: bool = True) -> requests.Response:
    auth = (sb.client_id, sb.client_secret) if basic else None
    if not basic:
        form = {**form, "client_id": sb.client_id, "client_secret": sb.client_secret}
    return requests.post(
        f"{sb.base_url}/connect/token", data=form, auth=auth, verify=str(sb.ca_path), timeout=10
    )


def connect(sb: XeroSandbox, scopes=BROAD) -> Connected:
    code = code_from(authorize(sb, scopes))["code"]
    answer = token(sb, {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT})
    assert answer.status_code == 200, answer.text
    return Connected(sb, answer.json())


@pytest.fixture(scope="module")
def shared(firm: Firm) -> Iterator[Connected]:
    """A read-mostly sandbox on real time with limits off, shared by a module's tests."""
    sb = start(firm, limits=False, clock=SandboxClock(NOON))
    try:
        yield connect(sb)
    finally:
        sb.stop()


@pytest.fixture
def fixed() -> Iterator[Connected]:
    """A fresh sandbox on a fixed clock that only the test moves."""
    sb = start(generate(2, "demo", today=TODAY), clock=SandboxClock(NOON, speed=0))
    try:
        yield connect(sb)
    finally:
        sb.stop()
