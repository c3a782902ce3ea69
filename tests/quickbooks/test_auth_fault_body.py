"""ccm's QuickBooks client reads the real 401/403 bodies (lowercase `fault`, epoch-ms time) as it must: a 401
that a refresh does not cure is AuthExpired ("reconnect needed"), a 403 is AuthExpired too.

Source: the 401 capture in routablehq/python-quickbooks#250 and the 403 capture in frappe/erpnext#29161,
which the sandbox now answers with (tests/quickbooks_sandbox/test_auth_fault_body.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from adapters.quickbooks.client import QboApi
from adapters.quickbooks.pacing import Pacer
from adapters.quickbooks.sandbox import QuickBooksSandbox, start
from adapters.sandbox.clock import SandboxClock
from adapters.sandbox.generator import generate
from connector.ledger import AuthExpired
from tests.quickbooks.sandboxed import START


class Tokens:
    """A token source whose refresh hands out `refreshed` (what the vault would after a refresh)."""

    def __init__(self, first: str, refreshed: str) -> None:
        self.first, self.refreshed = first, refreshed
        self.refreshes = 0

    def access_token(self) -> str:
        return self.first

    def after_unauthorized(self, rejected: str) -> str:
        self.refreshes += 1
        return self.refreshed


@pytest.fixture
def sandbox() -> Iterator[QuickBooksSandbox]:
    clock = SandboxClock(start=START, speed=0)
    sb = start(generate(3, "demo", today=START.date()), seed=3, clock=clock)
    yield sb
    sb.stop()


def _api(sb: QuickBooksSandbox, tokens: Tokens, realm: str | None = None) -> QboApi:
    return QboApi(
        realm or sb.realm, sb.base_url, 75, tokens, verify=sb.ca_path, pacer=Pacer(), sleep=lambda s: None
    )


def test_a_401_a_refresh_cannot_cure_is_auth_expired(sandbox):
    tokens = Tokens("revoked", "still-no-good")
    with pytest.raises(AuthExpired, match="HTTP 401") as caught:
        _api(sandbox, tokens).read("Customer", "2")
    assert tokens.refreshes == 1
    assert "intuit_tid 1-" in str(caught.value)


def test_a_401_cured_by_a_refresh_goes_on(sandbox):
    good = sandbox.connect()["access_token"]
    assert _api(sandbox, Tokens("expired", good)).read("Customer", "2")["Id"] == "2"


def test_a_403_for_a_company_the_token_is_not_for_is_auth_expired(sandbox):
    good = sandbox.connect()["access_token"]
    with pytest.raises(AuthExpired, match="refused access to this company"):
        _api(sandbox, Tokens(good, good), realm="1234").read("Customer", "2")
