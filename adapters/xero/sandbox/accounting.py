"""Xero's Accounting API (api.xro/2.0) over a Book: lists, single records, History, groups, e-mail, limits.

Every call needs a live bearer token whose authorisation connected the `xero-tenant-id` it names, passes the
tenant's and the app's rate windows (X-*-Remaining headers on every answer, 429 with X-Rate-Limit-Problem and
Retry-After), and writes honour Idempotency-Key (same key and body: the first answer again, nothing redone).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.sandbox.limiter import Verdict, Window, WindowLimiter
from adapters.xero.sandbox import render, writes
from adapters.xero.sandbox.answers import (
    Handler,
    json_answer,
    not_found,
    parse_since,
    parse_where,
    problem,
    validation_error,
)
from adapters.xero.sandbox.book import Book
from adapters.xero.sandbox.identity import Identity

PREFIX = "/api.xro/2.0"
MAX_PAGE = 1000
MAX_NOTE = 2500
LISTS = ("Contacts", "Invoices", "CreditNotes", "Payments", "Overpayments", "Prepayments")
_READ = {
    "Contacts": "contacts",
    "ContactGroups": "contacts",
    "Invoices": "invoices",
    "CreditNotes": "invoices",
    "Payments": "payments",
    "Overpayments": "payments",
    "Prepayments": "payments",
}


def scopes_for(resource: str, write: bool) -> set[str]:
    """The scopes any one of which lets a token make this call (broad and granular sets)."""
    area = _READ.get(resource)
    if area is None:
        return set()
    broad = "accounting.contacts" if area == "contacts" else "accounting.transactions"
    granular = "accounting.contacts" if area == "contacts" else f"accounting.{area}"
    allowed = {broad, granular}
    return allowed if write else allowed | {f"{s}.read" for s in allowed}


def xero_limits(clock: Any, day_limit: int = 5000, enabled: bool = True) -> WindowLimiter:
    """Xero's limits: 60/min, `day_limit`/day, 5 concurrent per tenant; 10,000/min for the app."""
    windows = [
        Window("day", day_limit, 86_400),
        Window("appminute", 10_000, 60, per_app=True),
        Window("minute", 60, 60),
    ]
    return WindowLimiter(clock, windows, concurrency=5, enabled=enabled)


@dataclass
class Accounting:
    """The accounting routes of one sandbox, over its books (one per tenant)."""

    books: dict[str, Book]
    identity: Identity
    limiter: WindowLimiter
    email_cap: int = 1000
    service_time_s: float = 0.0  # time a call holds its concurrency slot (lets tests reach the 5-call gate)
    calls: int = 0
    refused: int = 0
    _idempotent: dict[tuple[str, str], tuple[str, Response]] = field(default_factory=dict)

    # ---- the guard every call passes --------------------------------------------------------------------
    def guarded(self, resource: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            access = self.identity.check(request.headers.get("authorization"))
            if isinstance(access, str):
                return problem(401, "Unauthorized", access)
            tenant = request.headers.get("xero-tenant-id")
            book = self.books.get(tenant or "")
            if book is None or not self.identity.tenant_allowed(access, tenant):
                return problem(403, "Forbidden", "AuthenticationUnsuccessful")
            write = request.method != "GET"
            needed = scopes_for(resource, write)
            if needed and not needed & set(access.grant.scopes):
                return problem(401, "Unauthorized", "AuthorizationUnsuccessful")
            assert tenant is not None
            return await self._limited(request, book, tenant, handler)

        return endpoint

    async def _limited(self, request: Request, book: Book, tenant: str, handler: Handler) -> Response:
        with self.limiter.call(tenant) as verdict:
            if not verdict.allowed:
                self.refused += 1
                answer: Response = Response("Rate limit exceeded", status_code=429, media_type="text/plain")
                answer.headers["X-Rate-Limit-Problem"] = verdict.problem or "minute"
                if verdict.retry_after is not None:
                    answer.headers["Retry-After"] = str(verdict.retry_after)
                return self._headers(answer, verdict)
            self.calls += 1
            if self.service_time_s:
                await asyncio.sleep(self.service_time_s)
            key = request.headers.get("idempotency-key")
            if request.method == "GET" or not key:
                return self._headers(await handler(request, book), verdict)
            return self._headers(await self._once(request, book, tenant, key, handler), verdict)

    async def _once(self, request: Request, book: Book, tenant: str, key: str, handler: Handler) -> Response:
        if len(key) > 128:
            return validation_error("Idempotency-Key must be at most 128 characters")
        fingerprint = hashlib.sha256(
            request.method.encode() + request.url.path.encode() + await request.body()
        )
        seen = self._idempotent.get((tenant, key))
        if seen is not None:
            if seen[0] != fingerprint.hexdigest():
                return validation_error("Idempotency-Key was already used with a different request")
            first = seen[1]
            return Response(first.body, status_code=first.status_code, media_type=first.media_type)
        answer = await handler(request, book)
        if answer.status_code < 500:
            self._idempotent[(tenant, key)] = (fingerprint.hexdigest(), answer)
        return answer

    def _headers(self, answer: Response, verdict: Verdict) -> Response:
        left = verdict.remaining
        answer.headers["X-DayLimit-Remaining"] = str(left.get("day", 0))
        answer.headers["X-MinLimit-Remaining"] = str(left.get("minute", 0))
        answer.headers["X-AppMinLimit-Remaining"] = str(left.get("appminute", 0))
        return answer

    # ---- lists ------------------------------------------------------------------------------------------
    def list_endpoint(self, kind: str) -> Handler:
        async def handler(request: Request, book: Book) -> Response:
            q = request.query_params
            try:
                page = int(q.get("page", "1"))
                size = int(q.get("pageSize", "100"))
            except ValueError:
                return validation_error("page and pageSize must be whole numbers")
            if page < 1 or not 1 <= size <= MAX_PAGE:
                return validation_error(f"page must be >= 1 and pageSize between 1 and {MAX_PAGE}")
            order = (q.get("order") or "UpdatedDateUTC ASC").strip()
            if order.split()[0] != "UpdatedDateUTC":
                return validation_error(f"the sandbox orders by UpdatedDateUTC only, not {order!r}")
            try:
                parse_where(q.get("where") or "")
            except ValueError as exc:
                return validation_error(str(exc))
            since_header = request.headers.get("if-modified-since")
            try:
                since = parse_since(since_header) if since_header else None
            except (ValueError, TypeError):
                return validation_error(f"If-Modified-Since is not a date: {since_header!r}")
            with book.lock:
                return self._page(book, kind, q, since, page, size, order.endswith("DESC"))

        return handler

    def _page(
        self, book: Book, kind: str, q: Any, since: datetime | None, page: int, size: int, desc: bool
    ) -> Response:
        coll = book.collection(kind)
        since_ms = None if since is None else int(since.timestamp() * 1_000_000) // 1000
        start = coll.start_after(since_ms)
        keep = self._filter(book, kind, q)
        if keep is None:
            keys = coll.keys[start:] if desc else None
            total = len(coll.keys) - start
            if desc:
                assert keys is not None
                chosen = [rid for _, rid in reversed(keys)][(page - 1) * size : page * size]
            else:
                chosen = [rid for _, rid in coll.keys[start + (page - 1) * size : start + page * size]]
        else:
            matched = [rid for _, rid in coll.keys[start:] if keep(coll.by_id[rid])]
            if desc:
                matched.reverse()
            total, chosen = len(matched), matched[(page - 1) * size : page * size]
        records = ",".join(book.render_json(kind, coll.by_id[rid]) for rid in chosen)
        head = {
            "Id": str(uuid.uuid4()),
            "Status": "OK",
            "ProviderName": "ccm Xero sandbox",
            "DateTimeUTC": f"/Date({int(book.clock.now().timestamp() * 1000)})/",
            "pagination": {
                "page": page,
                "pageSize": size,
                "pageCount": math.ceil(total / size),
                "itemCount": total,
            },
        }
        body = json.dumps(head, separators=(",", ":"))[:-1] + f',"{kind}":[{records}]}}'
        return Response(body, media_type="application/json; charset=utf-8")

    def _filter(self, book: Book, kind: str, q: Any) -> Callable[[Any], bool] | None:
        """A predicate for the query's filters, or None when the sorted keys can be sliced directly."""
        tests: list[Callable[[Any], bool]] = []
        if q.get("IDs"):
            ids = {i.strip().lower() for i in q["IDs"].split(",")}
            tests.append(lambda r: r.id in ids)
        if q.get("ContactIDs") and kind != "Contacts":
            contacts = {i.strip().lower() for i in q["ContactIDs"].split(",")}
            tests.append(lambda r: r.customer_id in contacts)
        if kind == "Contacts" and q.get("includeArchived", "false").lower() != "true":
            tests.append(lambda r: not r.archived)
        if q.get("Statuses") and kind == "Invoices":
            statuses = {s.strip().upper() for s in q["Statuses"].split(",")}
            tests.append(lambda r: book.invoice_status(r) in statuses)
        if q.get("where"):
            clauses = parse_where(q["where"])
            tests.append(lambda r: all(book.render(kind, r).get(f) == v for f, v in clauses))
        if not tests:
            return None
        return lambda r: all(t(r) for t in tests)

    def one_endpoint(self, kind: str) -> Handler:
        async def handler(request: Request, book: Book) -> Response:
            with book.lock:
                rec = book.collection(kind).get(request.path_params["id"].lower())
                if rec is None:
                    return not_found()
                head = {
                    "Id": str(uuid.uuid4()),
                    "Status": "OK",
                    "ProviderName": "ccm Xero sandbox",
                    "DateTimeUTC": f"/Date({int(book.clock.now().timestamp() * 1000)})/",
                    kind: [book.render(kind, rec)],
                }
                return json_answer(head)

        return handler

    # ---- history ----------------------------------------------------------------------------------------
    def history_endpoint(self, kind: str) -> Handler:
        async def handler(request: Request, book: Book) -> Response:
            with book.lock:
                rec = book.collection(kind).get(request.path_params["id"].lower())
                if rec is None:
                    return not_found()
                if request.method == "GET":
                    notes = book.record_history(rec.id, rec.created)
                    return json_answer({"HistoryRecords": [_note(n) for n in notes]})
            try:
                sent = json.loads(await request.body())
                details = [str(r["Details"]) for r in sent["HistoryRecords"]]
            except (ValueError, KeyError, TypeError):
                return validation_error('the body must be {"HistoryRecords":[{"Details":"..."}]}')
            if not details or any(not d.strip() for d in details):
                return validation_error("History records must have Details")
            if any(len(d) > MAX_NOTE for d in details):
                return validation_error(f"Details must be {MAX_NOTE} characters or fewer")
            with book.lock:
                made = [book.add_note(rec.id, d) for d in details]
            return json_answer({"HistoryRecords": [_note(n) for n in made]})

        return handler

    # ---- routing ----------------------------------------------------------------------------------------
    def routes(self) -> list[Route]:
        g = self.guarded
        out = []
        for kind in LISTS:
            out.append(Route(f"{PREFIX}/{kind}", g(kind, self.list_endpoint(kind)), methods=["GET"]))
            out.append(Route(f"{PREFIX}/{kind}/{{id}}", g(kind, self.one_endpoint(kind)), methods=["GET"]))
            out.append(
                Route(
                    f"{PREFIX}/{kind}/{{id}}/History",
                    g(kind, self.history_endpoint(kind)),
                    methods=["GET", "PUT", "POST"],
                )
            )
        out += [
            Route(
                f"{PREFIX}/ContactGroups", g("ContactGroups", writes.groups), methods=["GET", "PUT", "POST"]
            ),
            Route(f"{PREFIX}/ContactGroups/{{id}}", g("ContactGroups", writes.group), methods=["GET"]),
            Route(
                f"{PREFIX}/ContactGroups/{{id}}/Contacts",
                g("ContactGroups", writes.group_members),
                methods=["PUT", "DELETE"],
            ),
            Route(
                f"{PREFIX}/ContactGroups/{{id}}/Contacts/{{contact}}",
                g("ContactGroups", writes.group_member),
                methods=["DELETE"],
            ),
            Route(
                f"{PREFIX}/Invoices/{{id}}/Email",
                g("Invoices", writes.email_endpoint(self.email_cap)),
                methods=["POST"],
            ),
            Route(
                f"{PREFIX}/Invoices/{{id}}/OnlineInvoice",
                g("Invoices", writes.online_invoice),
                methods=["GET"],
            ),
            Route(
                f"{PREFIX}/InvoiceReminders/Settings",
                g("InvoiceReminders", writes.reminders),
                methods=["GET"],
            ),
        ]
        return out


def _note(n: Any) -> dict[str, Any]:
    return {
        "Changes": n.changes,
        "DateUTCString": render.iso_instant(n.at),
        "DateUTC": render.ms(n.at),
        "User": n.user,
        "Details": n.details,
    }
