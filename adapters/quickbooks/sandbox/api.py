"""The accounting API under /v3/company/{realm}/: query, read, update, Attachable, send, batch, CDC.

Every request is authenticated (Bearer), then counted against the realm's limits (10/s, 500/min, 10 in
flight; batch 40/min). `minorversion` may be left out or be below 75: since 2025-08-01 QBO serves either as
75 (Intuit developer blog, 2025-01-21). One Api serves one company (realm); a sandbox of several companies
has one Api per realm, sharing the OAuth server and the limiters (which count per realm).

A write (any POST but a query) carrying `requestid` is done once per realm and id: a repeat gets the first
answer again instead of being applied again, whatever its body, as Intuit documents it; a repeat arriving
while the first is still being served waits for its answer. A first answer that is a 5xx is not kept (the
write did not happen). Users report QBO ignoring requestid at times: `honour_requestid = False` plays that.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from adapters.quickbooks.sandbox import pdf
from adapters.quickbooks.sandbox.auth import OAuthError, OAuthServer
from adapters.quickbooks.sandbox.company import ENTITIES, QUERYABLE, Company
from adapters.quickbooks.sandbox.faults import QboFault, auth_failed, lowercase_body, throttle_xml, validation
from adapters.quickbooks.sandbox.jsontext import dumps, has_marks
from adapters.quickbooks.sandbox.query import QueryError, convert, parse
from adapters.sandbox.limiter import WindowLimiter

MIN_MINOR_VERSION = 75
MAX_BATCH_ITEMS = 30
# Intuit: "The maximum number of entities that can be returned in a response is 1000" (querying-data guide,
# quoted in ruckus/quickbooks-ruby#263); a batch answer is held to it across all its items.
MAX_BATCH_OBJECTS = 1000
# CDC takes every entity but these (Intuit's change-data-capture page); any other QBO entity this company
# holds none of answers an empty list.
CDC_UNSUPPORTED = frozenset({"JournalCode", "TimeActivity", "TaxAgency", "TaxCode", "TaxRate"})
OTHER_ENTITIES = ("Budget", "CreditCardPayment", "Transfer", "RecurringTransaction", "ReimburseCharge",
                  "InventoryAdjustment", "ExchangeRate", "Preferences")  # fmt: skip
_ALL_ENTITIES = {e.lower(): e for e in (*QUERYABLE, *OTHER_ENTITIES, *CDC_UNSUPPORTED)}
ARRIVALS_KEPT = 100_000
REQUEST_IDS_KEPT = 100_000  # per sandbox; the oldest are forgotten first
REQUEST_ID_WAIT_S = 30.0  # how long a repeat waits for the first request's answer
_PATHS = {e.lower(): e for e in ENTITIES}


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer: status, body text and its media type."""

    status: int
    body: str | bytes
    media_type: str = "application/json"


@dataclass
class Api:
    """The API's state: the company, the OAuth server and the limiters."""

    company: Company
    oauth: OAuthServer
    limiter: WindowLimiter
    batch_limiter: WindowLimiter
    on_change: Callable[[str, str, str], None] = lambda entity, id_, operation: None
    slow_s: float = 0.0  # test control: time each call holds its concurrency slot
    calls: dict[str, int] = field(default_factory=dict)  # per path kind, calls answered (not throttled)
    honour_requestid: bool = True  # False: a repeated requestid is applied again
    replayed: int = 0  # writes answered from a repeated requestid's first answer
    refused: int = 0  # requests answered 429 (the per-realm windows, the in-flight gate or the batch limit)
    # sandbox-clock timestamps of the requests that reached the API (throttled ones too): what tests measure
    arrivals: deque[float] = field(default_factory=lambda: deque(maxlen=ARRIVALS_KEPT), repr=False)
    _answers: OrderedDict[tuple[str, str], Answer] = field(default_factory=OrderedDict, repr=False)
    _pending: dict[tuple[str, str], threading.Event] = field(default_factory=dict, repr=False)
    _ids_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def stamp(self) -> str:
        """The `time` of an answer, in the company's zone with milliseconds."""
        return self.company.now().astimezone(self.company.tz).isoformat(timespec="milliseconds")

    def fault(self, exc: QboFault) -> Answer:
        """A Fault envelope answer; a 401 or 403 in the gateway's lowercase shape with an epoch-ms time."""
        if exc.status in {401, 403}:
            epoch_ms = int(self.company.now().timestamp() * 1000)
            return Answer(exc.status, dumps(lowercase_body(exc, epoch_ms)))
        return Answer(exc.status, dumps({"Fault": exc.fault(), "time": self.stamp()}))

    def throttled(self, detail: str) -> Answer:
        """QBO's 429: an XML body whatever was asked (counted in `refused`)."""
        self.refused += 1
        return Answer(429, throttle_xml(self.stamp(), detail), "application/xml")

    def handle(self, method: str, realm: str, path: str, params: Mapping[str, str],
               headers: Mapping[str, str], body: bytes) -> Answer:  # fmt: skip
        """Answer one API request (runs in a worker thread)."""
        self.arrivals.append(self.limiter.clock.timestamp())
        try:
            token_realm = self._authenticate(headers.get("authorization", ""))
        except QboFault as exc:
            return self.fault(exc)
        if token_realm != realm or realm != self.company.realm:
            return self.fault(QboFault("3100", "message=ApplicationAuthorizationFailed; errorCode=003100; "
                                       "statusCode=403", f"the token is not for company {realm}",
                                       kind="SERVICE", status=403))  # fmt: skip
        with self.limiter.call(realm) as verdict:
            if not verdict.allowed:
                return self.throttled(f"The request limit was reached ({verdict.problem}).")
            if self.slow_s:
                time.sleep(self.slow_s)
            kind = path.strip("/").split("/", 1)[0]
            request_id = params.get("requestid")
            if request_id and self.honour_requestid and method == "POST" and kind != "query":
                answer = self._once((realm, request_id), lambda: self._answer(method, path, params, body))
            else:
                answer = self._answer(method, path, params, body)
            if answer.status == 200:
                self.calls[kind] = self.calls.get(kind, 0) + 1
            return answer

    def _answer(self, method: str, path: str, params: Mapping[str, str], body: bytes) -> Answer:
        try:
            _minor_version(params)
            parts = path.strip("/").split("/")
            if method == "GET" and len(parts) == 3 and parts[0] == "invoice" and parts[2] == "pdf":
                row = self.company.get("Invoice", parts[1])
                doc = self.company.doc("Invoice", row)
                return Answer(200, pdf.invoice_pdf(doc, self.company.firm.name), "application/pdf")
            return Answer(200, self._envelope(self._route(method, path, params, body)))
        except _Throttled:
            return self.throttled("The batch request limit was reached (40 per minute).")
        except QboFault as exc:
            return self.fault(exc)

    def _once(self, key: tuple[str, str], serve: Callable[[], Answer]) -> Answer:
        """The answer of the first request with this (realm, requestid), serving it if there is none yet."""
        while True:
            with self._ids_lock:
                kept = self._answers.get(key)
                if kept is not None:
                    self.replayed += 1
                    return kept
                pending = self._pending.get(key)
                if pending is None:
                    mine = self._pending[key] = threading.Event()
                    break
            pending.wait(REQUEST_ID_WAIT_S)  # a repeat while the first is served: wait for its answer
        try:
            answer = serve()
            if answer.status < 500 and answer.status != 429:
                with self._ids_lock:
                    self._answers[key] = answer
                    while len(self._answers) > REQUEST_IDS_KEPT:
                        self._answers.popitem(last=False)
            return answer
        finally:
            with self._ids_lock:
                del self._pending[key]
            mine.set()

    def _authenticate(self, authorization: str) -> str:
        if not authorization.lower().startswith("bearer "):
            raise auth_failed("no Bearer access token in the Authorization header")
        try:
            return self.oauth.realm_of(authorization[7:].strip())
        except OAuthError as exc:
            raise auth_failed(exc.description) from None

    def _route(self, method: str, path: str, params: Mapping[str, str], body: bytes) -> str:
        """The inner part of the answer's JSON object (the `time` is added around it)."""
        parts = path.strip("/").split("/")
        entity = _PATHS.get(parts[0])
        if parts == ["query"]:
            text = params.get("query", "") if method == "GET" else body.decode("utf-8", "replace")
            inner = self.query_response(text)
        elif parts == ["cdc"] and method == "GET":
            inner = self.cdc(params)
        elif parts == ["batch"] and method == "POST":
            inner = self.batch(_json(body))
        elif len(parts) == 3 and parts[0] == "invoice" and parts[2] == "send" and method == "POST":
            row = self.company.send_invoice(parts[1], params.get("sendTo"))
            self.on_change("Invoice", str(row.id), "Emailed")
            inner = self._object("Invoice", row)
        elif len(parts) == 2 and parts[0] == "companyinfo" and method == "GET":
            inner = self.company_info()
        elif entity == "Invoice" and len(parts) == 2 and method == "GET" and _includes_link(params):
            row = self.company.get(entity, parts[1])
            link = self.company.invoice_link(row)
            doc = json.loads(self.company.text(entity, row))
            inner = f'"{entity}":' + dumps({**doc, "InvoiceLink": link} if link else doc)
        elif entity is not None and len(parts) == 2 and method == "GET":
            inner = self._object(entity, self.company.get(entity, parts[1]))
        elif entity is not None and len(parts) == 1 and method == "POST":
            inner = self.write(entity, "update", _json(body), params)
        else:
            raise QboFault("500", "Unsupported Operation", f"Operation {method} {path} is not supported")
        return inner

    def _envelope(self, inner: str) -> str:
        return "{" + inner + ',"time":"' + self.stamp() + '"}'

    def _object(self, entity: str, row: Any) -> str:
        return f'"{entity}":' + self.company.text(entity, row)

    def query_response(self, text: str) -> str:
        """`"QueryResponse":{...}` for a query."""
        return self._query(text, None)[0]

    def _query(self, text: str, room: int | None) -> tuple[str, int]:
        """`"QueryResponse":{...}` and its number of objects; at most `room` of them (inside a batch)."""
        try:
            query = parse(text, QUERYABLE)
        except QueryError as exc:
            raise validation(str(exc)) from None
        rows, total = self.company.select(query)
        if room is not None:
            rows = rows[:room]
        if total is not None:
            return f'"QueryResponse":{{"totalCount":{total}}}', 0
        if not rows:
            return '"QueryResponse":{}', 0
        items = ",".join(self.company.text(query.entity, r) for r in rows)
        return (f'"QueryResponse":{{"{query.entity}":[{items}],"startPosition":{query.start},'
                f'"maxResults":{len(rows)}}}'), len(rows)  # fmt: skip

    def cdc(self, params: Mapping[str, str]) -> str:
        """`"CDCResponse":[...]`: changes and tombstones since changedSince, at most 1,000 objects."""
        names = [n.strip() for n in params.get("entities", "").split(",") if n.strip()]
        if not names:
            raise validation(
                "cdc needs entities=Invoice,Payment,...", code="2020", message="Required param missing"
            )
        try:
            since: datetime = convert(params.get("changedSince", ""), "datetime")
        except ValueError:
            detail = f"changedSince {params.get('changedSince')!r} is not an ISO date-time"
            raise validation(detail, code="2020", message="Invalid changedSince") from None
        wanted = [_ALL_ENTITIES.get(n.lower(), n) for n in names]
        for name in wanted:
            if name in CDC_UNSUPPORTED or name not in _ALL_ENTITIES.values():
                detail = f"CDC does not support entity {name}"
                raise validation(detail, code="4001", message="Invalid entities")
        found = self.company.changed_since(wanted, since)
        parts = []
        for entity, rows in found.items():
            items = ",".join(
                self.company.tombstone(r) if r.deleted else self.company.text(entity, r) for r in rows
            )
            parts.append(f'{{"{entity}":[{items}],"startPosition":1,"maxResults":{len(rows)}}}')
        return '"CDCResponse":[{"QueryResponse":[' + ",".join(parts) + "]}]"

    def write(self, entity: str, operation: str, body: Any, params: Mapping[str, str]) -> str:
        """Create an Attachable or update any entity; `"Entity":{...}` of the result."""
        if not isinstance(body, dict):
            detail = f"{entity}: the request body must be a JSON object"
            raise validation(detail, message="Request has invalid or unsupported property")
        if entity == "Invoice" and params.get("operation") == "void":
            row = self.company.void_invoice(str(body.get("Id", "")), str(body.get("SyncToken", "")))
            self.on_change(entity, str(row.id), "Void")
            return self._object(entity, row)
        if params.get("operation") in {"delete", "void"}:
            raise QboFault(
                "500", "Unsupported Operation", f"{entity} {params['operation']} is not supported here"
            )
        if entity == "Attachable" and "Id" not in body and operation in {"create", "update"}:
            row = self.company.create_attachable(body)
            self.on_change(entity, str(row.id), "Create")
        elif "Id" in body and operation == "update":
            row = self.company.update(entity, body)
            self.on_change(entity, str(row.id), "Update")
        else:
            raise QboFault("500", "Unsupported Operation", f"{operation} of {entity} is not supported here")
        return self._object(entity, row)

    def batch(self, body: Any) -> str:
        """`"BatchItemResponse":[...]`: up to 30 queries and writes, each answered or faulted on its own."""
        items = body.get("BatchItemRequest") if isinstance(body, dict) else None
        if not isinstance(items, list) or not items:
            raise validation("batch needs a non-empty BatchItemRequest list", message="Request has invalid "
                             "or unsupported property")  # fmt: skip
        if len(items) > MAX_BATCH_ITEMS:
            raise validation(f"{len(items)} BatchItemRequests, at most {MAX_BATCH_ITEMS}",
                             message="Batch request exceeds the limit")  # fmt: skip
        verdict = self.batch_limiter.acquire(self.company.realm)
        if not verdict.allowed:
            raise _Throttled
        self.batch_limiter.release(self.company.realm)
        out = []
        room = MAX_BATCH_OBJECTS
        for item in items:
            bid = dumps(str(item.get("bId", ""))) if isinstance(item, dict) else '""'
            try:
                inner, objects = self._batch_item(item, room)
                room = max(room - objects, 0)
                out.append("{" + f'"bId":{bid},' + inner + "}")
            except QboFault as exc:
                out.append("{" + f'"bId":{bid},"Fault":' + dumps(exc.fault()) + "}")
        return '"BatchItemResponse":[' + ",".join(out) + "]"

    def _batch_item(self, item: Any, room: int) -> tuple[str, int]:
        """One item's answer and how many objects it holds (a query gives at most `room`)."""
        if not isinstance(item, dict):
            raise validation("each BatchItemRequest must be an object", message="Invalid batch item")
        if "Query" in item:
            return self._query(str(item["Query"]), room)
        entity = next((e for e in ENTITIES if e in item), None)
        if entity is None:
            raise validation(
                f"batch item {item.get('bId')!r} names no supported entity", message="Invalid batch item"
            )
        return self.write(entity, str(item.get("operation", "")), item[entity], {}), 1

    def company_info(self) -> str:
        """`"CompanyInfo":{...}` with the firm's name, country and the company's currency and zone."""
        firm = self.company.firm
        info = {"Id": "1", "SyncToken": "0", "CompanyName": firm.name, "LegalName": firm.name,
                "Country": firm.country, "CompanyAddr": {"Country": firm.country},
                "NameValue": [{"Name": "HomeCurrency", "Value": firm.base_currency},
                              {"Name": "TimeZone", "Value": firm.timezone}],
                "domain": "QBO", "sparse": False}  # fmt: skip
        return '"CompanyInfo":' + dumps(info)


class _Throttled(QboFault):
    def __init__(self) -> None:
        super().__init__("3001", "ThrottleExceeded", "batch limit", status=429)


def _includes_link(params: Mapping[str, str]) -> bool:
    """`?include=invoiceLink` (QBO reads it from minorversion 36; ccm asks for 75 or more)."""
    return "invoicelink" in {part.strip().lower() for part in params.get("include", "").split(",")}


def _minor_version(params: Mapping[str, str]) -> int:
    """The minor version served: 75 when none is given or a lower one is (QBO since 2025-08-01)."""
    raw = params.get("minorversion")
    if raw is None:
        return MIN_MINOR_VERSION
    if not raw.isdigit():
        raise validation(f"minorversion {raw!r} is not a number", code="2010",
                         message="Request has invalid or unsupported property")  # fmt: skip
    return max(int(raw), MIN_MINOR_VERSION)


def _json(body: bytes) -> Any:
    try:
        value = json.loads(body or b"null", parse_float=Decimal)
    except ValueError as exc:
        raise validation(
            f"the request body is not JSON: {exc}",
            code="2010",
            message="Request has invalid or unsupported property",
        ) from None
    if has_marks(value):
        raise validation("the request body holds a NUL or SOH control character", code="2010",
                         message="Request has invalid or unsupported property")  # fmt: skip
    return value
