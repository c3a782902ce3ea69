"""Fixtures: a QBO sandbox on a fixed clock, an authenticated requests session and a python-quickbooks client."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any

import pytest
import requests

from adapters.quickbooks.sandbox import QuickBooksSandbox, start
from adapters.sandbox.clock import SandboxClock
from adapters.sandbox.generator import Firm, generate

TODAY = date(2026, 11, 2)


@pytest.fixture(scope="session")
def firm() -> Firm:
    return generate(seed=7, size="demo", today=TODAY)


@pytest.fixture
def clock() -> SandboxClock:
    return SandboxClock(start=datetime(2026, 11, 2, 9, 0, tzinfo=UTC), speed=0)


@pytest.fixture
def sandbox(firm: Firm, clock: SandboxClock) -> Iterator[QuickBooksSandbox]:
    sb = start(firm, seed=7, clock=clock)
    yield sb
    sb.stop()


class Client:
    """requests against the sandbox's API with a Bearer token, trusting only the sandbox's CA."""

    def __init__(self, sb: QuickBooksSandbox, token: str | None = None) -> None:
        self.sb = sb
        self.http = requests.Session()
        self.http.verify = str(sb.ca_path)
        self.http.trust_env = False  # REQUESTS_CA_BUNDLE would override `verify`
        self.token = token or sb.connect()["access_token"]

    def call(
        self,
        method: str,
        path: str,
        *,
        minor: str | None = "75",
        body: Any = None,
        text: str | None = None,
        params: dict[str, str] | None = None,
        token: str | None = None,
    ) -> requests.Response:
        query = dict(params or {})
        if minor is not None:
            query["minorversion"] = minor
        headers = {"Authorization": f"Bearer {token or self.token}", "Accept": "application/json"}
        if text is not None:
            headers["Content-Type"] = "application/text"
            return self.http.request(
                method,
                f"{self.sb.api_url}/company/{self.sb.realm}/{path}",
                params=query,
                data=text.encode(),
                headers=headers,
            )
        return self.http.request(
            method,
            f"{self.sb.api_url}/company/{self.sb.realm}/{path}",
            params=query,
            json=body,
            headers=headers,
        )

    def query(self, text: str, **kw: Any) -> dict[str, Any]:
        answer = self.call("POST", "query", text=text, **kw)
        assert answer.status_code == 200, answer.text
        return answer.json()["QueryResponse"]


@pytest.fixture
def client(sandbox: QuickBooksSandbox) -> Iterator[Client]:
    c = Client(sandbox)
    yield c
    c.http.close()  # an idle keep-alive connection would hold up the server's shutdown


def sdk_client(sb: QuickBooksSandbox, tokens: dict[str, Any] | None = None) -> Any:
    """python-quickbooks pointed at the sandbox: one client per company, minorversion explicit."""
    from quickbooks import QuickBooks

    tokens = tokens or sb.connect()
    auth = SimpleNamespace(
        client_id=sb.client_id,
        environment="production",
        access_token=tokens["access_token"],
        refresh_token=tokens["refresh_token"],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        qb = QuickBooks(auth_client=auth, company_id=sb.realm, minorversion=75)
    qb.api_url_v3 = qb.sandbox_api_url_v3 = sb.api_url
    qb.session.verify = str(sb.ca_path)
    qb.session.trust_env = False
    return qb
