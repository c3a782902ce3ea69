"""One python-quickbooks client per company, with the settings' minorversion and API address."""

from __future__ import annotations

from adapters.quickbooks.client import QboApi
from adapters.quickbooks.pacing import Pacer


class NoTokens:
    def access_token(self) -> str:
        return "unused"

    def after_unauthorized(self, rejected: str) -> str:
        return "unused"


def api(realm: str, minor: int = 75) -> QboApi:
    return QboApi(realm, "https://qbo.example/", minor, NoTokens(), pacer=Pacer())


def test_each_company_gets_its_own_sdk_client_never_the_global_one():
    one, two = api("111"), api("222")
    assert one.sdk is not two.sdk
    assert (one.sdk.company_id, two.sdk.company_id) == ("111", "222")


def test_the_minorversion_and_the_api_address_come_from_the_settings():
    client = api("111", minor=79)
    assert client.sdk.minorversion == 79
    assert client.company_url == "https://qbo.example/v3/company/111"
    assert client.sdk.api_url == "https://qbo.example/v3"  # not Intuit's, not the SDK's sandbox URL


def test_a_callback_without_a_valid_realm_id_is_refused_in_one_line():
    import pytest

    from adapters.quickbooks import auth
    from adapters.quickbooks.settings import QuickBooksSettings
    from connector.ledger import AuthExpired

    qbo = QuickBooksSettings(client_id="id", client_secret="secret-value")
    with pytest.raises(
        AuthExpired, match=r"^the QuickBooks callback carried no valid realmId \(got 'abc'\)$"
    ):
        auth.complete(qbo, None, None, "acme", "code", "abc")  # type: ignore[arg-type]
