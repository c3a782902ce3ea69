"""One python-quickbooks client per company, with our own HTTP session, pacing, retries and error mapping.

The SDK never refreshes tokens and misreads throttling (a 429 with an XML body becomes "Error reading json
response"), so every request goes through `_SdkClient.process_request`: it paces the realm, adds the current
bearer token, and turns the status and body into ccm's typed errors before the SDK parses anything. The
SDK's global-singleton mode is never used: each `QboApi` builds its own client for its realm.

Reads are retried on 5xx and dropped connections. Writes are not: a write whose answer is lost may have
been applied, so it raises OutcomeUnknown and the caller looks at QBO before sending it again (writeback.py).
A write is resent here only after a 429 or a 401, which QBO answers before doing anything. Every write
carries a `requestid`, which Intuit documents as making a repeat answer the first answer instead of
applying again; the re-check does not rely on it.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import requests
import structlog
from quickbooks import QuickBooks
from quickbooks import exceptions as qbe

from adapters.quickbooks.pacing import Pacer
from adapters.quickbooks.retry import retrying
from connector.ledger import (
    AuthExpired,
    Fatal,
    LedgerError,
    RateLimited,
    Retriable,
    ServerError,
    after_retries,
)
from connector.redact import scrub

log = structlog.get_logger(__name__)
TIMEOUT_S = 60
THROTTLED = 3001  # QBO's ThrottleExceeded fault code
STALE_OBJECT = 5010
NOT_FOUND = 610
DEFAULT_RETRY_AFTER = 60.0
_XML_CODE = re.compile(r'<Error[^>]*\bcode="(\d+)"')


class TokenSource(Protocol):
    """Where the client gets its bearer token (the vault, in production)."""

    def access_token(self) -> str: ...

    def after_unauthorized(self, rejected: str) -> str:
        """A token to retry with after `rejected` got a 401 (refreshing unless someone already did)."""
        ...


class StaleObject(Retriable):
    """QBO fault 5010: the SyncToken sent is not the latest; re-read the object and apply the change again."""

    resend = False  # sending the same body again cannot succeed: the caller must re-read first


class OutcomeUnknown(Retriable):
    """A write was sent and its answer lost (a dropped connection, a 5xx, an unreadable answer): QuickBooks
    may or may not have applied it. Never resent as it is: look at the ledger first, now or on a later try."""

    resend = False


class NotFound(Fatal):
    """QBO fault 610: the object does not exist (or was deleted)."""


class Refused(Fatal):
    """QBO refused the request as invalid (a validation fault); the message carries its code and text."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _fault_text(code: int, message: str, detail: str) -> str:
    text = f"QuickBooks fault {code}: {message}" + (f" ({detail})" if detail and detail != message else "")
    return scrub(" ".join(text.split()))[:300]


def _retry_after(response: requests.Response) -> float:
    try:
        return max(float(response.headers.get("Retry-After", DEFAULT_RETRY_AFTER)), 0.0)
    except ValueError:
        return DEFAULT_RETRY_AFTER


def with_tid(text: str, tid: str | None) -> str:
    """`text` naming the answer's `intuit_tid` (what Intuit support asks for), when there was one."""
    return f"{text} (intuit_tid {scrub(tid)[:80]})" if tid else text


def classify(response: requests.Response) -> LedgerError | None:
    """The typed error a raw QBO answer means, judged from the status AND the body (JSON or XML)."""
    status = response.status_code
    body = response.text[:2000]
    tid = response.headers.get("intuit_tid")
    xml_code = _XML_CODE.search(body)
    if status == 429 or "ThrottleExceeded" in body or (xml_code and int(xml_code.group(1)) == THROTTLED):
        return RateLimited(_retry_after(response), "minute",
                           with_tid("QuickBooks throttled the request (fault 3001)", tid))  # fmt: skip
    if status >= 500:
        return ServerError(with_tid(f"QuickBooks answered HTTP {status}", tid), status)
    if status == 403:
        return AuthExpired(with_tid("QuickBooks refused access to this company (HTTP 403)", tid))
    if xml_code and status != 401:  # any other XML fault: the SDK cannot read it
        return Fatal(with_tid(f"QuickBooks fault {xml_code.group(1)} (HTTP {status})", tid))
    return None


class _SdkClient(QuickBooks):
    """python-quickbooks for one realm, with requests sent through `send` (set by QboApi)."""

    send: Callable[[str, str, dict[str, str], Any, Any], requests.Response]

    def process_request(
        self, request_type: str, url: str, headers: Any = "", params: Any = "", data: Any = ""
    ) -> requests.Response:
        return self.send(request_type, url, dict(headers or {}), params, data)


@dataclass
class QboApi:
    """QBO's accounting API for one realm: raw JSON in and out, typed errors, every request counted."""

    realm: str
    base_url: str
    minor_version: int
    tokens: TokenSource
    verify: Path | bool = True
    pacer: Pacer | None = None
    attempts: int = 5
    sleep: Callable[[float], None] | None = None

    def __post_init__(self) -> None:
        self.calls = 0
        self.throttled = 0
        self._http = requests.Session()
        # Passed on every request: a session-level `verify` loses to REQUESTS_CA_BUNDLE in requests.
        self._verify = str(self.verify) if isinstance(self.verify, Path) else self.verify
        self._pacer = self.pacer or Pacer.for_realm(self.realm)
        self._sdk = _SdkClient(company_id=self.realm, minorversion=self.minor_version)
        self._sdk.api_url_v3 = self.base_url.rstrip("/") + "/v3"
        self._sdk.sandbox = False
        self._sdk.send = self._send
        self._token = ""
        self._last = threading.local()  # per thread: the intuit_tid of the last answer, for error messages

    @property
    def sdk(self) -> QuickBooks:
        return self._sdk

    @property
    def company_url(self) -> str:
        return f"{self._sdk.api_url_v3}/company/{self.realm}"

    # -- the wire
    def _request(
        self, method: str, url: str, headers: dict[str, str], params: Any, data: Any, refreshed: bool = False
    ) -> requests.Response:
        if not refreshed:
            self._token = self.tokens.access_token()  # refreshed ahead of expiry: a long sync outlives it
        with self._pacer.slot(batch=url.rstrip("/").endswith("/batch")):
            self.calls += 1
            headers["Authorization"] = f"Bearer {self._token}"
            try:
                return self._http.request(method, url, headers=headers, params=params, data=data,
                                          timeout=TIMEOUT_S, verify=self._verify)  # fmt: skip
            except requests.RequestException as exc:
                raise Retriable(f"QuickBooks unreachable: {type(exc).__name__}") from None

    def _send(
        self, method: str, url: str, headers: dict[str, str], params: Any, data: Any
    ) -> requests.Response:
        response = self._request(method, url, headers, params, data)
        if response.status_code == 401:
            self._token = self.tokens.after_unauthorized(self._token)
            response = self._request(method, url, headers, params, data, refreshed=True)
            if response.status_code == 401:
                raise AuthExpired(with_tid("QuickBooks refused a freshly refreshed access token (HTTP 401)",
                                           response.headers.get("intuit_tid")))  # fmt: skip
        self._last.tid = response.headers.get("intuit_tid")
        error = classify(response)
        if error is not None:
            if isinstance(error, RateLimited):
                self.throttled += 1
                log.warning("quickbooks.throttled", realm=self.realm, retry_after=error.retry_after)
            raise error
        return response

    def _retrying(self) -> Any:
        return retrying(self.attempts, self.sleep) if self.sleep else retrying(self.attempts)

    def _call(self, action: Callable[[], Any]) -> Any:
        """Run an SDK read with retries, translating the SDK's exceptions into ccm's."""
        seen: list[LedgerError] = []  # every failed attempt: the error says how QuickBooks answered them

        def once() -> Any:
            try:
                return self._translated(action)
            except LedgerError as exc:
                seen.append(exc)
                raise

        try:
            return self._retrying()(once)
        except Retriable as exc:
            error = after_retries("QuickBooks", exc, seen)
            if error is not exc:  # a summary of the attempts: name the last answer's intuit_tid
                error = Retriable(with_tid(str(error), getattr(self._last, "tid", None)))
            raise error from None

    def _write(self, what: str, action: Callable[[], Any]) -> Any:
        """Run an SDK write: resent after a 429 only; a lost answer raises OutcomeUnknown, never a resend."""

        def once() -> Any:
            try:
                return self._translated(action)
            except (RateLimited, StaleObject):
                raise
            except Retriable as exc:
                raise OutcomeUnknown(
                    f"{what}: the answer was lost ({exc}); QuickBooks may have done it"
                ) from None

        return self._retrying()(once)

    def _translated(self, action: Callable[[], Any]) -> Any:
        self._last.tid = None
        try:
            return action()
        except qbe.AuthorizationException as exc:
            text = with_tid(_fault_text(exc.error_code, exc.message, exc.detail), self._last.tid)
            raise AuthExpired(text) from None
        except qbe.QuickbooksException as exc:
            code = exc.error_code if isinstance(exc.error_code, int) else 0
            text = with_tid(_fault_text(code, exc.message, exc.detail), self._last.tid)
            if code == THROTTLED:
                raise RateLimited(DEFAULT_RETRY_AFTER, "minute", text) from None
            if code == STALE_OBJECT:
                raise StaleObject(text) from None
            if code == NOT_FOUND:
                raise NotFound(text) from None
            if code >= 10000:  # the SDK's own code for an answer it could not read
                raise Retriable(text) from None
            raise Refused(code, text) from None

    # -- operations (raw JSON)
    def query(self, text: str) -> dict[str, Any]:
        """Run a QBO query; the whole answer (QueryResponse and time)."""
        result: dict[str, Any] = self._call(lambda: self._sdk.query(text))
        return result

    def cdc(self, entities: Sequence[str], changed_since: str) -> dict[str, Any]:
        """Change data capture for `entities` since the instant `changed_since` (ISO 8601)."""
        result: dict[str, Any] = self._call(
            lambda: self._sdk.change_data_capture(",".join(entities), changed_since)
        )
        return result

    def read(self, entity: str, record_id: str, include: str | None = None) -> dict[str, Any]:
        """One object; `include` asks for more (`invoiceLink`: an Invoice's pay-online link)."""
        params = {"include": include} if include else None
        result = self._call(lambda: self._sdk.get_single_object(entity, record_id, params=params))
        return dict(result[entity])

    def pdf(self, entity: str, record_id: str) -> bytes:
        """The object as QBO prints it (`GET .../{entity}/{id}/pdf`), retried as a read."""
        url = f"{self.company_url}/{entity.lower()}/{record_id}/pdf"
        headers = {"Accept": "application/pdf"}
        params = {"minorversion": str(self.minor_version)}
        content: bytes = self._call(lambda: self._send("GET", url, dict(headers), params, None).content)
        if not content.startswith(b"%PDF"):
            raise Retriable(f"QuickBooks answered {entity} {record_id}'s PDF with something else")
        return content

    def create(self, entity: str, body: Mapping[str, Any], request_id: str | None = None) -> dict[str, Any]:
        """Create an object, sent once (see `_write`); `request_id` is QBO's requestid for it."""
        text = json.dumps(body)
        result = self._write(
            f"create {entity}", lambda: self._sdk.create_object(entity, text, request_id=request_id)
        )
        return dict(result[entity])

    def update(self, entity: str, body: Mapping[str, Any], request_id: str | None = None) -> dict[str, Any]:
        """A (sparse, if `body` says so) update, sent once; raises StaleObject on a stale SyncToken."""
        text = json.dumps(body)
        result = self._write(
            f"update {entity} {body.get('Id')}",
            lambda: self._sdk.update_object(entity, text, request_id=request_id),
        )
        return dict(result[entity])

    def send_invoice(
        self, invoice_id: str, send_to: str | None = None, request_id: str | None = None
    ) -> dict[str, Any]:
        """QBO emails the invoice with its own template (to `send_to`, else the invoice's BillEmail); sent
        once (see `_write`)."""
        params = {"sendTo": send_to} if send_to else {}
        url = f"{self.company_url}/invoice/{invoice_id}/send"
        result = self._write(
            f"e-mail of invoice {invoice_id}",
            lambda: self._sdk.post(url, "", content_type="application/octet-stream", params=dict(params),
                                   request_id=request_id),
        )  # fmt: skip
        return dict(result.get("Invoice", {}))

    def batch(self, items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """Up to 30 queries in one request: the answer (BatchItemResponse, time). Retried as a read: never
        put a write in it."""
        body = json.dumps({"BatchItemRequest": list(items)})
        result: dict[str, Any] = self._call(lambda: self._sdk.batch_operation(body))
        return result

    def close(self) -> None:
        self._http.close()
