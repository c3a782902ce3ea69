"""Xero's Accounting API (api.xro/2.0) over a Book: lists, single records, History, groups, e-mail, limits.

Every call needs a live bearer token whose authorisation connected the `xero-tenant-id` it names, passes the
tenant's and the app's rate windows (X-*-Remaining headers on every answer, 429 with X-Rate-Limit-Problem and
Retry-After), and writes honour Idempotency-Key (same key and body: the first answer again, nothing redone).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapters.sandbox.limiter import Verdict, Window, WindowLimiter
from adapters.xero.sandbox import listing, render, settings, writes
from adapters.xero.sandbox.answers import (
    Handler,
    json_answer,
    not_found,
    parse_since,
    problem,
    validation_error,
)
from adapters.xero.sandbox.book import Book
from adapters.xero.sandbox.identity import Identity
from adapters.xero.sandbox.where import QueryError

PREFIX = "/api.xro/2.0"
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
    "Currencies": "settings",
    "Organisation": "settings",
}


def scopes_for(resource: str, write: bool) -> set[str]:
    """The scopes any one of which lets a token make this call (broad and granular sets)."""
    area = _READ.get(resource)
    if area is None:
        return set()
    broad = {"contacts": "accounting.contacts", "settings": "accounting.settings"}.get(
        area, "accounting.transactions"
    )
    granular = broad if area in ("contacts", "settings") else f"accounting.{area}"
    allowed = {broad, granular}
    return allowed if write else allowed | {f"{s}.read" for s in allowed}


def xero_limits(
    clock: Any, day_limit: int = 5000, enabled: bool = True, app_minute_limit: int = 10_000
) -> WindowLimiter:
    """Xero's limits: 60/min, `day_limit`/day, 5 concurrent per tenant; `app_minute_limit` (10,000)/min for
    the app (lower it to test many tenants sharing the app's minute)."""
    windows = [
        Window("day", day_limit, 86_400),
        Window("appminute", app_minute_limit, 60, per_app=True),
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
    refused: int = 0  # calls answered 429 (any window, or the concurrency gate)
    # (tenant, instant on the sandbox clock) of each counted call, newest last: pacing is measured here
    arrivals: deque[tuple[str, float]] = field(default_factory=lambda: deque(maxlen=100_000))
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
            self.arrivals.append((tenant, book.clock.timestamp()))
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
            since_header = request.headers.get("if-modified-since")
            try:
                since = parse_since(since_header) if since_header else None
            except (ValueError, TypeError):
                return validation_error(f"If-Modified-Since is not a date: {since_header!r}")
            try:
                query = listing.parse(kind, request.query_params, since)
                with book.lock:
                    return listing.page(book, kind, query)
            except QueryError as exc:
                return validation_error(str(exc))

        return handler

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
            Route(
                f"{PREFIX}/ContactGroups/{{id}}", g("ContactGroups", writes.group), methods=["GET", "POST"]
            ),
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
            Route(f"{PREFIX}/Currencies", g("Currencies", settings.currencies), methods=["GET"]),
            Route(f"{PREFIX}/Organisation", g("Organisation", settings.organisation), methods=["GET"]),
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
