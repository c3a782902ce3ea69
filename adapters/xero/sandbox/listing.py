"""One page of a list endpoint (GET /Invoices, /Contacts, ...) with Xero's query parameters.

`page`, `pageSize`, `If-Modified-Since`, `IDs`, `ContactIDs`, `Statuses`, `InvoiceNumbers`, `includeArchived`,
`searchTerm`, `where`, `order` and `summaryOnly`. With none of the record-level filters and the default order
(UpdatedDateUTC) a page is a slice of the sorted keys; otherwise each candidate is rendered once and filtered,
sorted (ties keep UpdatedDateUTC order) and sliced.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from starlette.responses import Response

from adapters.xero.sandbox.book import Book
from adapters.xero.sandbox.where import (
    OrderKeys,
    Predicate,
    QueryError,
    compile_order,
    compile_where,
    field_names,
    sort_key,
)
from adapters.xero.schema import raw_schema

MAX_PAGE = 1000
STREAMS = {
    "Contacts": "contacts",
    "Invoices": "invoices",
    "CreditNotes": "credit_notes",
    "Payments": "payments",
    "Overpayments": "overpayments",
    "Prepayments": "prepayments",
}
TYPE_NAMES = {
    "Contacts": "Contact",
    "Invoices": "Invoice",
    "CreditNotes": "CreditNote",
    "Payments": "Payment",
    "Overpayments": "Overpayment",
    "Prepayments": "Prepayment",
}
# summaryOnly (GET Contacts, Invoices): "only lightweight fields, excluding computation-heavy fields" (spec).
SUMMARY_LEAVES_OUT = {
    "Invoices": ("LineItems", "Payments", "CreditNotes", "Prepayments", "Overpayments"),
    "Contacts": ("Balances",),
}
# The spec's searchTerm: case-insensitive text search across these fields.
SEARCHED = {
    "Contacts": ("Name", "FirstName", "LastName", "ContactNumber", "EmailAddress"),
    "Invoices": ("InvoiceNumber", "Reference"),
}
_DEFAULT_ORDER = {"updateddateutc", "updateddateutc asc", "updateddateutc desc"}


@cache
def fields(kind: str) -> dict[str, str]:
    """The dotted paths `where` and `order` may name for a list (from the spec's schema, arrays left out)."""
    return field_names(raw_schema()[STREAMS[kind]])


def _ids(text: str | None) -> frozenset[str] | None:
    return frozenset(i.strip().lower() for i in text.split(",") if i.strip()) if text else None


@dataclass(frozen=True, slots=True)
class ListQuery:
    """A list request's parameters, checked."""

    page: int
    size: int
    since: datetime | None
    descending: bool  # the default order, newest change first
    order: OrderKeys | None
    where: Predicate | None
    ids: frozenset[str] | None
    contact_ids: frozenset[str] | None
    statuses: frozenset[str] | None
    numbers: frozenset[str] | None
    search: str | None
    summary: bool
    include_archived: bool

    @property
    def rendered(self) -> bool:
        """Whether candidates must be rendered (a filter or an order that reads Xero's fields)."""
        return bool(self.where or self.order or self.search)


def parse(kind: str, q: Mapping[str, str], since: datetime | None) -> ListQuery:
    """The list query for `kind` from the request's parameters; a bad one is a QueryError."""
    try:
        page = int(q.get("page", "1"))
        size = int(q.get("pageSize", "100"))
    except ValueError:
        raise QueryError("page and pageSize must be whole numbers") from None
    if page < 1 or not 1 <= size <= MAX_PAGE:
        raise QueryError(f"page must be >= 1 and pageSize between 1 and {MAX_PAGE}")
    order_text = " ".join((q.get("order") or "UpdatedDateUTC ASC").split())
    default = order_text.lower() in _DEFAULT_ORDER
    type_name = TYPE_NAMES[kind]
    statuses = _ids(q.get("Statuses")) if kind == "Invoices" else None
    return ListQuery(
        page=page,
        size=size,
        since=since,
        descending=default and order_text.lower().endswith("desc"),
        order=None if default else compile_order(order_text, fields(kind), type_name),
        where=compile_where(q.get("where") or "", fields(kind), type_name),
        ids=_ids(q.get("IDs")),
        contact_ids=_ids(q.get("ContactIDs")) if kind != "Contacts" else None,
        statuses=frozenset(s.upper() for s in statuses) if statuses else None,
        numbers=_ids(q.get("InvoiceNumbers")) if kind == "Invoices" else None,
        search=((q.get("searchTerm") or "").strip().lower() or None) if kind in SEARCHED else None,
        summary=q.get("summaryOnly", "false").lower() == "true" and kind in SUMMARY_LEAVES_OUT,
        include_archived=q.get("includeArchived", "false").lower() == "true",
    )


def _cheap_test(book: Book, kind: str, query: ListQuery) -> Callable[[Any], bool] | None:
    """A test on the stored record for the filters that need no rendering."""
    tests: list[Callable[[Any], bool]] = []
    if query.ids is not None:
        ids = query.ids
        tests.append(lambda r: r.id in ids)
    if query.contact_ids is not None:
        contacts = query.contact_ids
        tests.append(lambda r: r.customer_id in contacts)
    if query.numbers is not None:
        numbers = query.numbers
        tests.append(lambda r: r.number.lower() in numbers)
    if kind == "Contacts" and not query.include_archived:
        tests.append(lambda r: not r.archived)
    if query.statuses is not None:
        statuses = query.statuses
        tests.append(lambda r: book.invoice_status(r) in statuses)
    if not tests:
        return None
    return lambda r: all(t(r) for t in tests)


def _rendered_test(query: ListQuery, kind: str) -> Callable[[Mapping[str, Any]], bool]:
    tests: list[Callable[[Mapping[str, Any]], bool]] = []
    if query.search is not None:
        needle, searched = query.search, SEARCHED[kind]
        tests.append(lambda d: any(needle in str(d.get(f) or "").lower() for f in searched))
    if query.where is not None:
        tests.append(query.where)
    return lambda d: all(t(d) for t in tests)


def page(book: Book, kind: str, query: ListQuery) -> Response:
    """The page's answer (call with `book.lock` held); a filter that cannot be evaluated is a QueryError."""
    coll = book.collection(kind)
    since_ms = None if query.since is None else int(query.since.timestamp() * 1_000_000) // 1000
    start = coll.start_after(since_ms)
    cheap = _cheap_test(book, kind, query)
    rendered: dict[str, dict[str, Any]] = {}
    lo, hi = (query.page - 1) * query.size, query.page * query.size
    if cheap is None and not query.rendered:
        total = len(coll.keys) - start
        keys = coll.keys[start:]
        if query.descending:
            keys = keys[::-1]
        chosen = [rid for _, rid in keys[lo:hi]]
    else:
        matched = [rid for _, rid in coll.keys[start:] if cheap is None or cheap(coll.by_id[rid])]
        if query.rendered:
            keep = _rendered_test(query, kind)
            for rid in matched:
                rendered[rid] = book.view(kind, coll.by_id[rid])
            matched = [rid for rid in matched if keep(rendered[rid])]
        if query.order is not None:
            for getter, descending in reversed(query.order):  # stable sorts, least significant key first
                matched.sort(key=lambda rid, g=getter: sort_key(g(rendered[rid])), reverse=descending)  # type: ignore[misc]
        elif query.descending:
            matched.reverse()
        total, chosen = len(matched), matched[lo:hi]
    records = ",".join(
        _record_json(book, kind, coll.by_id[rid], query.summary, _full(kind, rendered.get(rid)))
        for rid in chosen
    )
    head = {
        "Id": str(uuid.uuid4()),
        "Status": "OK",
        "ProviderName": "ccm Xero sandbox",
        "DateTimeUTC": f"/Date({int(book.clock.now().timestamp() * 1000)})/",
        "pagination": {
            "page": query.page,
            "pageSize": query.size,
            "pageCount": math.ceil(total / query.size),
            "itemCount": total,
        },
    }
    body = json.dumps(head, separators=(",", ":"))[:-1] + f',"{kind}":[{records}]}}'
    return Response(body, media_type="application/json; charset=utf-8")


def _full(kind: str, view: dict[str, Any] | None) -> dict[str, Any] | None:
    """A filter view that is the whole record (an invoice's view lacks its line items)."""
    return None if kind == "Invoices" else view


def _record_json(book: Book, kind: str, rec: Any, summary: bool, done: dict[str, Any] | None) -> str:
    if not summary:
        return json.dumps(done, separators=(",", ":")) if done is not None else book.render_json(kind, rec)
    out = dict(done if done is not None else book.render(kind, rec))
    for name in SUMMARY_LEAVES_OUT[kind]:
        out.pop(name, None)
    return json.dumps(out, separators=(",", ":"))
