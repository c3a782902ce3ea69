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
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import requests
import structlog
from quickbooks import QuickBooks
from quickbooks import exceptions as qbe
from tenacity import Retrying, wait_exponential_jitter

from adapters.quickbooks.pacing import Pacer
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
from connector.redact import scrub
from connector.retry import RetryPolicy

log = structlog.get_logger(__name__)
TIMEOUT_S = 60
THROTTLED = 3001  # QBO's ThrottleExceeded fault code
STALE_OBJECT = 5010
NOT_FOUND = 610
DEFAULT_RETRY_AFTER = 60.0
MAX_ATTEMPTS = 5
MAX_WAIT_S = 120.0  # a longer Retry-After ends the run (the engine reports when it can resume)
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


class QboNotFound(Fatal):
    """QBO fault 610: the object does not exist (or was deleted)."""


class QboRefused(Fatal):
    """QBO refused the request as invalid (a validation fault); the message carries its code and text."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _worth_retrying(exc: BaseException) -> bool:
    if isinstance(exc, RateLimited):
        return exc.retry_after <= MAX_WAIT_S
    return isinstance(exc, Retriable) and getattr(exc, "resend", True)


# Reads go through it as they are. Writes reach it only as RateLimited (QBO refused them before doing
# anything) or as errors marked `resend = False` (OutcomeUnknown, StaleObject), which it never resends: see
# `QboApi._write` and writeback.py, which look at QBO before sending a write again.
RETRY = RetryPolicy(MAX_ATTEMPTS, _worth_retrying, wait_exponential_jitter(multiplier=0.5, max=8.0))


def retrying(attempts: int = MAX_ATTEMPTS, sleep: Callable[[float], None] = time.sleep) -> Retrying:
    """A Retrying that re-runs a call on RateLimited (after its Retry-After) and Retriable (backing off).

    After `attempts` tries, or on any other error, the last error is raised as it was.
    """
    return RETRY.retrying(sleep, attempts)


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


@dataclass(frozen=True, slots=True)
class QboAnswer:
    """A raw QBO answer as the HTTP error table reads it: status, body (its first 2,000 characters), the XML
    fault code in it if any, and the `intuit_tid` note its messages end with."""

    status: int
    body: str
    xml_code: str | None
    tid: str
    retry_after: float

    @classmethod
    def of(cls, response: requests.Response) -> QboAnswer:
        body = response.text[:2000]
        found = _XML_CODE.search(body)
        tid = response.headers.get("intuit_tid")
        return cls(response.status_code, body, found.group(1) if found else None,
                   with_tid("", tid), _retry_after(response))  # fmt: skip


def _throttled(a: QboAnswer) -> bool:
    fault = int(a.xml_code) if a.xml_code is not None else None
    return a.status == 429 or "ThrottleExceeded" in a.body or fault == THROTTLED


# What a raw answer means, judged from the status AND the body (JSON or XML); no row: the SDK reads it.
HTTP_ERRORS: tuple[ErrorRule[QboAnswer], ...] = (
    ErrorRule(_throttled, RateLimited, "QuickBooks throttled the request (fault 3001){tid}",
              lambda a: {"retry_after": a.retry_after, "scope": "minute"}),
    ErrorRule(lambda a: a.status >= 500, ServerError, "QuickBooks answered HTTP {status}{tid}",
              lambda a: {"status": a.status}),
    ErrorRule(403, AuthExpired, "QuickBooks refused access to this company (HTTP 403){tid}"),
    # any other XML fault: the SDK cannot read it
    ErrorRule(lambda a: a.xml_code is not None and a.status != 401, Fatal,
              "QuickBooks fault {xml_code} (HTTP {status}){tid}"),
)  # fmt: skip


def classify(response: requests.Response) -> LedgerError | None:
    """The typed error a raw QBO answer means (`HTTP_ERRORS`), or None for an answer the SDK may read."""
    return resolve(HTTP_ERRORS, QboAnswer.of(response))


@dataclass(frozen=True, slots=True)
class QboFault:
    """A fault the SDK raised, as the fault table reads it: its code (0: none) and its text for messages."""

    code: int
    text: str

    @property
    def status(self) -> int:  # the table's rows match fault codes here
        return self.code


def _default_wait(_: QboFault) -> dict[str, Any]:
    return {"retry_after": DEFAULT_RETRY_AFTER, "scope": "minute"}  # the SDK's 3001 loses any Retry-After


# What a fault the SDK raised means, by its code (an AuthorizationException is AuthExpired whatever its code).
FAULTS: tuple[ErrorRule[QboFault], ...] = (
    ErrorRule(THROTTLED, RateLimited, "{text}", _default_wait),
    ErrorRule(STALE_OBJECT, StaleObject, "{text}"),
    ErrorRule(NOT_FOUND, QboNotFound, "{text}"),
    ErrorRule(lambda f: f.code >= 10000, Retriable, "{text}"),  # the SDK's code for an answer it cannot read
    ErrorRule(lambda f: True, QboRefused, "{text}", lambda f: {"code": f.code}),
)  # fmt: skip


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
    attempts: int = MAX_ATTEMPTS
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

    def _retrying(self) -> Retrying:
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
            error = resolve(FAULTS, QboFault(code, text))
            assert error is not None  # the last row matches every fault
            raise error from None

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
