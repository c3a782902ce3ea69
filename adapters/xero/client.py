"""One tenant's xero-python clients: tokens from the vault, pacing, one retry policy, errors by what's next.

The SDK never refreshes on its own (its OAuth2Token has no client credentials): the vault does, serialised
across threads and processes, and stores the rotated refresh token before the new access token is used.
urllib3's own retries are off so every HTTP call is counted, paced and retried here, in one place.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import structlog
import urllib3
from tenacity import Retrying
from xero_python.accounting import AccountingApi
from xero_python.api_client import ApiClient, Configuration
from xero_python.api_client.oauth2 import OAuth2Token
from xero_python.exceptions import AccessTokenExpiredError, ApiException, ApiSSLException
from xero_python.identity import IdentityApi

from adapters.xero.pacing import LedgerTime, Pacer
from connector.errormap import ErrorRule, resolve
from connector.ledger import (
    AuthExpired,
    Fatal,
    LedgerError,
    RateLimited,
    Retriable,
    ServerError,
    after_retries,
)
from connector.oauth import TokenSet, TokenVault
from connector.retry import RetryPolicy, doubling

log = structlog.get_logger(__name__)
T = TypeVar("T")
REFRESH_MARGIN = timedelta(minutes=2)  # refresh this long before the access token expires (it lives 30 min)
MAX_ATTEMPTS = 8


class XeroNotFound(Fatal):
    """The record asked for does not exist at Xero."""


def _retriable(error: BaseException) -> bool:
    if isinstance(error, RateLimited):
        return error.scope != "day"  # a spent day stops the run; it says when it can resume
    return isinstance(error, Retriable)


# 429 (minute, app, concurrent), 5xx and connection errors; never a day limit. Backoff: 0.5 s doubling, to 30.
RETRY = RetryPolicy(MAX_ATTEMPTS, _retriable, doubling(0.5, 30.0))


def retrying(sleep: Callable[[float], None], attempts: int = MAX_ATTEMPTS) -> Retrying:
    """The one retry policy (`RETRY`) waiting with `sleep`, the ledger's clock."""
    return RETRY.retrying(sleep, attempts)


@dataclass(frozen=True, slots=True)
class TokenSource:
    """How the client gets and renews one tenant's tokens."""

    vault: TokenVault
    tenant_id: str
    refresher: Callable[[TokenSet], TokenSet]


def sdk_token(tokens: TokenSet, now: datetime) -> dict[str, Any]:
    """What xero-python's token getter returns: only the keys it accepts, `scope` as a list (a string would
    be joined character by character). The SDK checks expiry against the machine's clock, so `expires_at`
    is the token's remaining life (on the ledger's clock, `now`) from the machine's present."""
    remaining = max((tokens.expires_at - now).total_seconds(), 0.0)
    return {
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "expires_in": int(remaining),
        "expires_at": time.time() + remaining,
        "scope": list(tokens.scope),
        "token_type": tokens.token_type,
    }


class XeroClient:
    """Calls Xero for one tenant (organisation) with paced, retried, token-fresh requests."""

    def __init__(
        self,
        *,
        api_url: str,
        ca_bundle: str | None,
        xero_tenant_id: str,
        tokens: TokenSource,
        pacer: Pacer,
        clock: LedgerTime,
    ) -> None:
        self.xero_tenant_id = xero_tenant_id
        self.tokens = tokens
        self.pacer = pacer
        self.clock = clock
        self.calls = 0  # HTTP calls to the accounting and identity APIs (retries included)
        self.throttled = 0  # of which answered 429
        self.http_seconds = 0.0  # time spent waiting on answers (the ledger's share of a sync's time)
        self._current: TokenSet | None = None
        config = Configuration(oauth2_token=OAuth2Token())  # no client credentials: the SDK cannot refresh
        config.ssl_ca_cert = ca_bundle
        self.api_client = ApiClient(
            config, oauth2_token_getter=self._token_dict, oauth2_token_saver=self._refuse_sdk_save
        )
        self.api_client.rest_client.pool_manager.connection_pool_kw["retries"] = False
        base = api_url.rstrip("/")
        self.accounting = AccountingApi(self.api_client, base_url=f"{base}/api.xro/2.0")
        self.identity = IdentityApi(self.api_client, base_url=base)

    # ---- tokens
    def _token_dict(self) -> dict[str, Any]:
        tokens = self._current
        if tokens is None:
            raise AuthExpired("no access token loaded")
        return sdk_token(tokens, self.clock.now())

    @staticmethod
    def _refuse_sdk_save(token: Mapping[str, Any]) -> None:
        raise Fatal("xero-python tried to refresh on its own; refreshes go through the vault")

    def _ensure_tokens(self) -> None:
        now = self.clock.now()
        if self._current is None or self._current.expires_within(REFRESH_MARGIN, now):
            self._current = self.tokens.vault.fresh(
                self.tokens.tenant_id, self.tokens.refresher, REFRESH_MARGIN
            )

    def force_refresh(self) -> None:
        """Refresh now (the ledger refused the access token before its time)."""
        self._current = self.tokens.vault.refresh(self.tokens.tenant_id, self.tokens.refresher, force=True)

    # ---- calls
    def call(self, what: str, request: Callable[[], T]) -> T:
        """Run one SDK request (usually with `_preload_content=False`) under pacing and the retry policy.

        Raises:
            RateLimited: the day limit is spent (scope "day"), or 429s outlasted the retries.
            AuthExpired: the tokens are dead; the tenant must reconnect.
            Fatal / XeroNotFound: a request Xero will not serve.
            Retriable: transient failures outlasted the retries.
        """
        seen: list[LedgerError] = []  # every failed attempt: the error says how the ledger answered them
        try:
            for attempt in retrying(self.clock.sleep):
                with attempt:
                    try:
                        return self._once(what, request, refreshed=False)
                    except LedgerError as exc:
                        seen.append(exc)
                        raise
        except Retriable as exc:
            raise after_retries("Xero", exc, seen, what) from None
        raise AssertionError("unreachable: tenacity reraises")  # pragma: no cover

    def _once(self, what: str, request: Callable[[], T], *, refreshed: bool) -> T:
        self._ensure_tokens()
        try:
            with self.pacer.slot():
                self.calls += 1
                began = time.perf_counter()
                try:
                    response = request()
                    _ = getattr(
                        response, "data", None
                    )  # read the body here: waiting on it is the ledger's time
                finally:
                    self.http_seconds += time.perf_counter() - began
        except ApiSSLException as exc:
            raise Fatal(f"{what}: TLS failed ({exc.reason}); check xero.ca_bundle / xero.api_url") from None
        except AccessTokenExpiredError:
            if refreshed:
                raise AuthExpired(f"{what}: the access token expired and could not be renewed") from None
            self.force_refresh()
            return self._once(what, request, refreshed=True)
        except ApiException as exc:
            status = _status(exc)
            headers = _headers(exc)
            self.pacer.observe(headers)
            if status == 429:
                self.throttled += 1
            if status == 401 and not refreshed:
                self.force_refresh()
                return self._once(what, request, refreshed=True)
            if status == 429:
                raise self.pacer.rate_limited(headers) from None  # which limit, and holds the gates back
            raise _translate(what, status, exc) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise Retriable(f"{what}: connection failed ({type(exc).__name__})") from None
        self.pacer.observe(_headers_of(response))
        return response


def _status(exc: ApiException) -> int:
    resp = getattr(exc, "http_resp", None)
    status = getattr(resp, "status", None)
    return int(status) if isinstance(status, int) else int(getattr(exc, "_status", 0) or 0)


def _headers(exc: ApiException) -> dict[str, str]:
    resp = getattr(exc, "http_resp", None)
    return _headers_of(resp) if resp is not None else {}


def _headers_of(response: Any) -> dict[str, str]:
    inner = getattr(response, "urllib3_response", response)  # the SDK's RESTResponse wraps urllib3's
    raw = getattr(inner, "headers", None)
    return {str(k).lower(): str(v) for k, v in (raw or {}).items()}


@dataclass(frozen=True, slots=True)
class XeroAnswer:
    """A failed call as the error table reads it: the call, Xero's HTTP status (0: none came), its text."""

    what: str
    status: int
    error: ApiException

    @property
    def reason(self) -> str:
        """Xero's own words for it: the body, on one line, at most 200 characters."""
        return _reason(self.error)


# What each answer means (a 429 is the pacer's: it says which limit, and holds the gates back that long).
ERRORS: tuple[ErrorRule[XeroAnswer], ...] = (
    ErrorRule(401, AuthExpired, "{what}: Xero refused a freshly renewed access token (HTTP 401)"),
    ErrorRule(403, AuthExpired, "{what}: the organisation is no longer connected to ccm (HTTP 403)"),
    ErrorRule(404, XeroNotFound, "{what}: not found at Xero (HTTP 404)"),
    ErrorRule(0, Retriable, "{what}: Xero answered HTTP nothing"),
    ErrorRule(lambda a: a.status >= 500, ServerError, "{what}: Xero answered HTTP {status}",
              lambda a: {"status": a.status}),
    ErrorRule(lambda a: True, Fatal, "{what}: Xero refused the request (HTTP {status}): {reason}"),
)  # fmt: skip


def _translate(what: str, status: int, exc: ApiException) -> LedgerError:
    error = resolve(ERRORS, XeroAnswer(what, status, exc))
    assert error is not None  # the last row matches every answer
    return error


def _reason(exc: ApiException) -> str:
    body = getattr(getattr(exc, "http_resp", None), "data", b"") or b""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    return " ".join(text.split())[:200] or "no detail"
