"""Reading QBO: change data capture while it can answer, ordered queries otherwise, page by page.

Incremental pulls use CDC (one request for all four entities, shared by the engine's per-stream pulls)
while `since` is within QBO's 30-day look-back and the answer is under its 1,000-object cap. Full pulls,
older cursors and capped answers use queries ordered by Metadata.LastUpdatedTime, 1,000 records a page.

Query paging is keyset-like, so a crash between pages resumes with no gap: each page's cursor is the last
record's LastUpdatedTime T plus how many records stamped exactly T were already read (`token` "q|T|n"), and
the next page asks `>= T` from position n+1. Positions are 1-based in QBO. When a pull ends, `since` is the
server's time when it began: anything changed after that is read next time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from adapters.quickbooks.client import QboApi, QboRefused
from adapters.quickbooks.records import split
from adapters.quickbooks.schema import ENTITIES
from connector.ledger import Cursor, Fatal, Page

log = structlog.get_logger(__name__)
PAGE_SIZE = 1000
CDC_LOOKBACK = timedelta(days=30)
CDC_MARGIN = timedelta(hours=1)  # our clock and QBO's need not agree to the second
CDC_CAP = 1000
CDC_REUSE_S = 300.0  # a shared CDC answer serves the other streams of the same sync, not a later one
_QUERY_TOKEN = "q"  # noqa: S105 - marks a query position, not a secret


def qbo_time(at: datetime) -> str:
    """An instant as QBO query and CDC literals take it, whole seconds (rounded down: re-read, never skip)."""
    return at.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def updated_at(record: Mapping[str, Any]) -> datetime:
    meta = record.get("MetaData")
    stamp = meta.get("LastUpdatedTime") if isinstance(meta, dict) else None
    if not isinstance(stamp, str):
        raise Fatal(f"QuickBooks record {record.get('Id')!r} has no MetaData.LastUpdatedTime")
    return parse_time(stamp)


@dataclass
class _CdcAnswer:
    changed_since: datetime
    time: datetime
    records: dict[str, list[dict[str, Any]]]
    capped: bool
    taken_at: float
    served: set[str] = field(default_factory=set)


class Puller:
    """Pulls the four QBO streams for one company."""

    def __init__(
        self,
        api: QboApi,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self.api = api
        self.now = now
        self.monotonic = monotonic
        self.page_size = page_size
        self._cdc: _CdcAnswer | None = None
        self._counts: dict[str, tuple[int, datetime]] = {}
        self._counts_at = 0.0

    def pull(self, stream: str, cursor: Cursor | None) -> Iterator[Page]:
        entity = ENTITIES.get(stream)
        if entity is None:
            raise Fatal(f"QuickBooks has no stream {stream!r} (it has: {', '.join(ENTITIES)})")
        since = cursor.since if cursor else None
        resume = _query_position(cursor)
        if since is None or resume is not None:
            yield from self._query(entity, since, resume or 0)
            return
        calls = self.api.calls
        answer = self._changes(entity, since)
        if answer is None or answer.capped:
            # The CDC request that was refused or capped is reported with the first query page.
            yield from self._query(entity, since, 0, spent=self.api.calls - calls)
            return
        answer.served.add(entity)
        live, deleted = split(entity, answer.records.get(entity, []))
        # Resume from the server's time of the answer: later changes are stamped at or after it.
        yield Page(live, Cursor(since=answer.time), api_calls=self.api.calls - calls, deleted_ids=deleted,
                   total_hint=len(live))  # fmt: skip

    # -- change data capture
    def _changes(self, entity: str, since: datetime) -> _CdcAnswer | None:
        """The CDC answer covering `since`: the one this sync already has if it covers it, else a new one.

        One answer serves each entity once (the engine pulls each stream once per sync), and only for a
        few minutes, so a later sync never reads an old answer.
        """
        cached = self._cdc
        if (
            cached is not None
            and cached.changed_since <= since
            and entity not in cached.served
            and self.monotonic() - cached.taken_at < CDC_REUSE_S
        ):
            return cached
        if since < self.now() - CDC_LOOKBACK + CDC_MARGIN:
            log.info(
                "quickbooks.cdc_skipped", realm=self.api.realm, since=qbo_time(since), reason="past 30 days"
            )
            return None
        try:
            raw = self.api.cdc(list(ENTITIES.values()), qbo_time(since))
        except QboRefused as exc:  # e.g. QBO's own verdict that `since` is past its look-back
            log.info("quickbooks.cdc_refused", realm=self.api.realm, since=qbo_time(since), reason=str(exc))
            return None
        records: dict[str, list[dict[str, Any]]] = {}
        for block in raw.get("CDCResponse") or []:
            for part in block.get("QueryResponse") or []:
                for name, items in part.items():
                    if name in ENTITIES.values() and isinstance(items, list):
                        records.setdefault(name, []).extend(items)
        count = sum(len(items) for items in records.values())
        stamp = raw.get("time")
        answered = parse_time(stamp) if isinstance(stamp, str) else since
        self._cdc = _CdcAnswer(since, answered, records, count >= CDC_CAP, self.monotonic())
        if self._cdc.capped:
            log.info("quickbooks.cdc_capped", realm=self.api.realm, since=qbo_time(since), objects=count)
        return self._cdc

    # -- ordered queries
    def _select(self, entity: str, what: str, since: datetime | None) -> str:
        where = []
        if entity == "Customer":
            where.append("Active IN (true,false)")  # else QBO returns active customers only
        if since is not None:
            where.append(f"Metadata.LastUpdatedTime >= '{qbo_time(since)}'")
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        return f"SELECT {what} FROM {entity}{clause}"  # noqa: S608 - our own names and an instant

    def _answer_time(self, answer: Mapping[str, Any]) -> datetime:
        stamp = answer.get("time")
        return parse_time(stamp) if isinstance(stamp, str) else self.now()

    def _count(self, entity: str, since: datetime | None) -> tuple[int, datetime]:
        """How many records the pull will read, and the server's time when it began.

        A full sync counts all four entities in one batch request and serves each stream's count from it.
        """
        if since is None:
            if entity not in self._counts or self.monotonic() - self._counts_at > CDC_REUSE_S:
                self._counts = self._count_all()
                self._counts_at = self.monotonic()
            return self._counts.pop(entity)
        answer = self.api.query(self._select(entity, "COUNT(*)", since))
        return int((answer.get("QueryResponse") or {}).get("totalCount", 0)), self._answer_time(answer)

    def _count_all(self) -> dict[str, tuple[int, datetime]]:
        entities = list(ENTITIES.values())
        items = [{"bId": name, "Query": self._select(name, "COUNT(*)", None)} for name in entities]
        answer = self.api.batch(items)
        at = self._answer_time(answer)
        counts: dict[str, tuple[int, datetime]] = {}
        for item in answer.get("BatchItemResponse") or []:
            name = item.get("bId")
            if name not in entities:
                continue
            if "Fault" in item:
                error = ((item["Fault"] or {}).get("Error") or [{}])[0]
                raise Fatal(
                    f"QuickBooks refused to count {name}: fault {error.get('code')} {error.get('Message')}"
                )
            counts[name] = (int((item.get("QueryResponse") or {}).get("totalCount", 0)), at)
        missing = [name for name in entities if name not in counts]
        if missing:
            raise Fatal(f"QuickBooks' batch answer lacks the count of {', '.join(missing)}")
        return counts

    def _page_query(self, entity: str, since: datetime | None, skip: int) -> str:
        return (
            f"{self._select(entity, '*', since)} ORDERBY Metadata.LastUpdatedTime "
            f"STARTPOSITION {skip + 1} MAXRESULTS {self.page_size}"
        )

    def _fetch(self, text: str) -> tuple[dict[str, Any], int]:
        """One query and the requests it took, retries included (one runs at a time: the count is exact)."""
        before = self.api.calls
        answer = self.api.query(text)
        return answer, self.api.calls - before

    def _query(self, entity: str, since: datetime | None, skip: int, spent: int = 0) -> Iterator[Page]:
        calls = self.api.calls
        total, started = self._count(entity, since)
        calls = self.api.calls - calls + spent
        left = max(total - skip, 0)
        if left == 0:
            # Nothing to read: resume from when this pull began (capped further by the engine).
            yield Page([], Cursor(since=started), api_calls=calls, total_hint=total)
            return
        read = 0
        # The next page is fetched while the engine stores this one: QBO's latency and ccm's work overlap.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="qbo-prefetch") as pool:
            pending = pool.submit(self._fetch, self._page_query(entity, since, skip))
            while True:
                answer, used = pending.result()
                calls += used
                items: list[dict[str, Any]] = (answer.get("QueryResponse") or {}).get(entity) or []
                read += len(items)
                live, _ = split(entity, items)
                if len(items) < self.page_size or left <= read:
                    yield Page(live, Cursor(since=started), api_calls=calls, total_hint=total)
                    return
                last = updated_at(items[-1])
                at_last = sum(1 for _ in _tail_at(items, last))
                skip = skip + at_last if since is not None and last == since else at_last
                since = last
                pending = pool.submit(self._fetch, self._page_query(entity, since, skip))
                token = f"{_QUERY_TOKEN}|{qbo_time(since)}|{skip}"
                yield Page(live, Cursor(since=since, token=token), api_calls=calls, total_hint=total)
                calls = 0


def _tail_at(items: list[dict[str, Any]], stamp: datetime) -> Iterator[dict[str, Any]]:
    for item in reversed(items):
        if updated_at(item) != stamp:
            return
        yield item


def _query_position(cursor: Cursor | None) -> int | None:
    """Records already read at `cursor.since` in an unfinished query pull; None if it is not one."""
    if cursor is None or cursor.since is None or not cursor.token:
        return None
    parts = cursor.token.split("|")
    if len(parts) != 3 or parts[0] != _QUERY_TOKEN or not parts[2].isdigit():
        return None
    if parts[1] != qbo_time(cursor.since):
        return 0  # the core lowered `since`: re-read from there
    return int(parts[2])
