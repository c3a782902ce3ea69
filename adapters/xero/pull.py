"""Incremental, resumable reads of one Xero list endpoint: If-Modified-Since, UpdatedDateUTC order, pages.

A pass asks for every record modified since an instant S, oldest first, 1,000 a page (the minimum number of
calls: ceil(records / 1000)). Each page's cursor says how to resume after it with no gap, even in another
process: its token holds S, the page number and the last record's UpdatedDateUTC, and a resumed pull reads
on from that instant (keyset), since pages may have shifted in between. Within one live pass, a record
modified after it was read moves to the end and shifts later pages by one, which could skip a record; the
pass sees the moved record twice and then re-reads from where the first copy stood, so nothing is missed.
Deleted and voided records arrive as status changes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from connector.ledger import Cursor, Fatal, Page, RawRecord
from connector.mapping.values import ValueProblem, instant_parser

PAGE_SIZE = 1000
ORDER = "UpdatedDateUTC ASC"
MAX_PASSES = 4  # repair passes after records moved under a live pass; more means the ledger is very busy
_parse_instant = instant_parser("auto")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One list endpoint: the SDK method, the envelope key, the id key and extra query parameters."""

    method: str
    key: str
    id_key: str
    params: Mapping[str, Any]
    whole: bool = False  # read in full every time: a field that matters changes without moving UpdatedDateUTC


ENDPOINTS: dict[str, Endpoint] = {
    # A contact's Balances change without moving its UpdatedDateUTC: ccm checks them nightly, so contacts are
    # read whole (one call per 1,000 contacts) rather than since the cursor.
    "contacts": Endpoint("get_contacts", "Contacts", "ContactID", {"include_archived": True}, whole=True),
    "invoices": Endpoint("get_invoices", "Invoices", "InvoiceID", {}),
    "credit_notes": Endpoint("get_credit_notes", "CreditNotes", "CreditNoteID", {}),
    "payments": Endpoint("get_payments", "Payments", "PaymentID", {}),
    "overpayments": Endpoint("get_overpayments", "Overpayments", "OverpaymentID", {}),
    "prepayments": Endpoint("get_prepayments", "Prepayments", "PrepaymentID", {}),
}


@dataclass(frozen=True, slots=True)
class Fetched:
    """One page as it came back: its records, the ledger's item count if it gave one, calls spent."""

    records: list[RawRecord]
    item_count: int | None
    api_calls: int


# (stream endpoint, If-Modified-Since or None, page number) -> one page
Fetch = Callable[[Endpoint, datetime | None, int], Fetched]


def if_modified_since(since: datetime | None) -> str | None:
    """The header value for `since`: whole seconds, UTC, a second early, so it is inclusive whatever the
    ledger's comparison (> or >=) and precision."""
    if since is None:
        return None
    early = since.astimezone(UTC) - timedelta(seconds=1)
    return early.strftime("%Y-%m-%dT%H:%M:%S")


def decode(body: bytes, key: str) -> tuple[list[RawRecord], int | None]:
    """The records and item count of a list response (raw JSON; numbers as Decimal)."""
    try:
        data = json.loads(body, parse_float=Decimal)
        records = data[key]
    except (ValueError, KeyError, TypeError) as exc:
        raise Fatal(f"Xero's {key} answer is not the expected JSON ({type(exc).__name__})") from None
    pagination = data.get("pagination") or {}
    count = pagination.get("itemCount")
    return records, count if isinstance(count, int) else None


def updated_at(record: RawRecord) -> datetime | None:
    raw = record.get("UpdatedDateUTC")
    if raw is None:
        return None
    try:
        return _parse_instant(raw)
    except ValueProblem:
        return None


@dataclass(frozen=True, slots=True)
class Position:
    """Where a pass stands: modified since `since`, next page `page`; `after` is the keyset resume point."""

    since: datetime | None
    page: int
    passes: int = 0

    def token(self, last: datetime | None) -> str:
        return json.dumps({
            "since": self.since.isoformat() if self.since else None, "page": self.page,
            "last": last.isoformat() if last else None, "pass": self.passes,
        })  # fmt: skip


def start(cursor: Cursor | None) -> Position:
    """Where to begin: from the cursor's `since`, or resuming a pass the cursor's token describes.

    A token is honoured only if its `since` is the cursor's (the core may have lowered it: then re-read).
    A resumed pass reads on from the last record it committed (keyset): pages may have shifted since.
    """
    if cursor is None:
        return Position(None, 1)
    if cursor.token:
        try:
            data = json.loads(cursor.token)
            since = datetime.fromisoformat(data["since"]) if data.get("since") else None
            last = datetime.fromisoformat(data["last"]) if data.get("last") else None
        except (ValueError, KeyError, TypeError):
            return Position(cursor.since, 1)
        if since == cursor.since and last is not None:
            return Position(last, 1, int(data.get("pass", 0)) + 1)
    return Position(cursor.since, 1)


def pull(
    endpoint: Endpoint, cursor: Cursor | None, fetch: Fetch, page_size: int = PAGE_SIZE
) -> Iterator[Page]:
    """Every record of `endpoint` modified since the cursor, page by page, each with its resume cursor."""
    pos = Position(None, 1) if endpoint.whole else start(cursor)
    first_seen: dict[str, int] = {}  # record id -> page of this pass it was first read on
    page_start: list[datetime | None] = []  # per page of this pass: UpdatedDateUTC of its first record
    moved_from: int | None = None  # earliest page of this pass whose record came back later
    last: datetime | None = pos.since
    while True:
        fetched = fetch(endpoint, pos.since, pos.page)
        records = fetched.records
        for record in records:
            seen = first_seen.setdefault(str(record.get(endpoint.id_key)), pos.page)
            if seen != pos.page:
                moved_from = seen if moved_from is None else min(moved_from, seen)
        page_start.append(updated_at(records[0]) if records else None)
        if records:
            last = updated_at(records[-1]) or last
        count = fetched.item_count
        if len(records) >= page_size and (count is None or pos.page * page_size < count):
            nxt = Position(pos.since, pos.page + 1, pos.passes)
            yield Page(records, Cursor(pos.since, nxt.token(last)), fetched.api_calls, (), count)
            pos = nxt
            continue
        if moved_from is not None and pos.passes + 1 < MAX_PASSES:
            # A record read earlier in this pass came back: later pages shifted and one may have been
            # skipped. Re-read from where the moved record first stood (a new pass, keyset).
            again = page_start[moved_from - 1] or pos.since
            repair = Position(again, 1, pos.passes + 1)
            yield Page(records, Cursor(pos.since, repair.token(again)), fetched.api_calls, (), count)
            first_seen.clear()
            page_start.clear()
            moved_from = None
            pos = repair
            continue
        yield Page(records, Cursor(last, None), fetched.api_calls, (), count)
        return
