"""One entity's rows, kept in the two orders queries walk: by Id and by (LastUpdatedTime, Id).

A row holds what queries filter on (`values`, extracted once per version) and a way to render its QBO JSON;
the JSON text is made on demand and cached until the row changes, so a large firm costs little memory
until it is read.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any

from adapters.quickbooks.sandbox.query import Condition, FieldType, Query

Doc = dict[str, Any]
META_FIELDS = ("Id", "MetaData.LastUpdatedTime", "MetaData.CreateTime")  # kept on the row itself
Renderer = Callable[["Row"], Doc]


class Row:
    """One record version: `doc` is set once the record has been changed through the API."""

    __slots__ = (
        "created",
        "deleted",
        "doc",
        "id",
        "names",
        "source",
        "sync_token",
        "text",
        "updated",
        "values",
    )

    def __init__(
        self, id: int, created: datetime, updated: datetime, source: Any, values: tuple[Any, ...],
        names: tuple[str, ...],
    ) -> None:  # fmt: skip
        self.id = id
        self.created = created
        self.updated = updated
        self.source = source
        self.values = values  # the queryable fields' values, in the order of `names`
        self.names = names
        self.sync_token = 0
        self.deleted = False
        self.doc: Doc | None = None
        self.text: str | None = None

    @property
    def keys(self) -> dict[str, Any]:
        """The queryable fields' values by name (a copy: change a row through its Company)."""
        return dict(zip(self.names, self.values, strict=True))

    def order_key(self) -> tuple[datetime, int]:
        """The position in the LastUpdatedTime order."""
        return (self.updated, self.id)


@dataclass
class Table:
    """The rows of one entity, with the field types its queries may name."""

    entity: str
    fields: Mapping[str, FieldType]
    key_names: tuple[str, ...] = ()
    by_id: dict[int, Row] = field(default_factory=dict)
    _ids: list[int] = field(default_factory=list)
    _updated: list[tuple[datetime, int]] = field(default_factory=list)
    _pos: dict[str, int] = field(default_factory=dict)
    _version: int = 0  # bumped by every change to the indexes: paging resumes only over an unchanged table
    _resume: dict[Any, tuple[int, int, int]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.key_names = tuple(n for n in self.fields if n not in META_FIELDS)
        self._pos = {n: i for i, n in enumerate(self.key_names)}

    def add_all(self, rows: list[Row]) -> None:
        """Load many rows at once (start-up): one sort instead of many inserts."""
        for row in rows:
            self.by_id[row.id] = row
        self._ids = sorted(self.by_id)
        self._updated = sorted(r.order_key() for r in self.by_id.values())
        self._version += 1

    def insert(self, row: Row) -> None:
        """Add a new row."""
        self.by_id[row.id] = row
        bisect.insort(self._ids, row.id)
        bisect.insort(self._updated, row.order_key())
        self._version += 1

    def touch(self, row: Row, when: datetime) -> None:
        """Record a change to `row` at `when`: new LastUpdatedTime and SyncToken, cached JSON dropped."""
        old = row.order_key()
        i = bisect.bisect_left(self._updated, old)
        if i < len(self._updated) and self._updated[i] == old:
            del self._updated[i]
        row.updated = max(when, row.updated)
        row.sync_token += 1
        row.text = None
        bisect.insort(self._updated, row.order_key())
        self._version += 1

    def get(self, id: int) -> Row | None:
        """A live row by Id (tombstones are not found)."""
        row = self.by_id.get(id)
        return None if row is None or row.deleted else row

    def changed_since(self, since: datetime) -> Iterator[Row]:
        """Rows (tombstones too) whose LastUpdatedTime is at or after `since`, oldest first."""
        start = bisect.bisect_left(self._updated, (since, -1))
        for _, rid in islice(self._updated, start, None):
            yield self.by_id[rid]

    def value(self, row: Row, name: str) -> Any:
        """A row's value for a queryable field."""
        if name == "Id":
            return row.id
        if name == "MetaData.LastUpdatedTime":
            return row.updated
        if name == "MetaData.CreateTime":
            return row.created
        return row.values[self._pos[name]]

    def select(self, query: Query) -> tuple[list[Row], int | None]:
        """The rows of one page of `query` (and the total for COUNT(*)).

        Walks an index in the asked order and stops at the page's end; a range on the ordering field
        (Id or LastUpdatedTime) starts the walk by bisection, and the page that follows the last one
        served resumes where it ended, so paging through a large table costs what it returns.
        """
        where = query.where
        ids = [c for c in where if c.field == "Id" and c.op in {"=", "IN"}]
        rest = [c for c in where if c not in ids]
        if ids:
            wanted = sorted({v for c in ids for v in c.values}, reverse=query.descending)
            rows: Iterator[Row] = (r for r in map(self.by_id.get, wanted) if r is not None)
            return self._finish(query, self._matching(rows, rest), query.order_by in {None, "Id"})
        by_updated = query.order_by == "MetaData.LastUpdatedTime"
        if not by_updated and query.order_by not in {None, "Id"}:
            return self._finish(
                query, self._matching((r for _, r in self._walk(where, False, False, None)), rest), False
            )
        key = (where, by_updated, query.descending)
        resume = self._resume.get(key)
        skip = query.start - 1
        at = None
        if not query.count and resume is not None and resume[0] == query.start and resume[2] == self._version:
            at, skip = resume[1], 0
        positions = self._walk(where, by_updated, query.descending, at)
        if query.count:
            return [], sum(1 for _ in self._matching((r for _, r in positions), rest))
        page: list[Row] = []
        last = None
        for pos, row in positions:
            if row.deleted or not all(c.test(self.value(row, c.field)) for c in rest):
                continue
            if skip:
                skip -= 1
                continue
            page.append(row)
            last = pos
            if len(page) == query.max_results:
                break
        if last is not None and len(page) == query.max_results:
            if len(self._resume) > 64:
                self._resume.clear()
            self._resume[key] = (query.start + len(page), last, self._version)
        return page, None

    def _matching(self, rows: Iterable[Row], rest: list[Condition]) -> Iterator[Row]:
        return (r for r in rows if not r.deleted and all(c.test(self.value(r, c.field)) for c in rest))

    def _finish(self, query: Query, matched: Iterator[Row], natural: bool) -> tuple[list[Row], int | None]:
        if query.count:
            return [], sum(1 for _ in matched)
        if not natural:
            order = query.order_by or "Id"
            ranked = sorted(matched, key=lambda r: (self.value(r, order) is None, self.value(r, order), r.id))
            if query.descending:
                ranked.reverse()
            matched = iter(ranked)
        return list(islice(matched, query.start - 1, query.start - 1 + query.max_results)), None

    def _walk(self, where: tuple[Condition, ...], by_updated: bool, descending: bool,
              after: int | None) -> Iterator[tuple[int, Row]]:  # fmt: skip
        """(position, row) along the Id or LastUpdatedTime index within the WHERE's range on it.

        `after` is the position of the last row already served: the walk starts past it.
        """
        if by_updated:
            keys = self._updated
            lo, hi = _bounds(where, "MetaData.LastUpdatedTime", 0, len(keys),
                             lambda v: bisect.bisect_left(keys, (v, -1)),
                             lambda v: bisect.bisect_right(keys, (v, 1 << 62)))  # fmt: skip
        else:
            ids = self._ids
            lo, hi = _bounds(where, "Id", 0, len(ids), lambda v: bisect.bisect_left(ids, v),
                             lambda v: bisect.bisect_right(ids, v))  # fmt: skip
        if after is not None:
            lo, hi = (lo, min(hi, after)) if descending else (max(lo, after + 1), hi)
        span = range(hi - 1, lo - 1, -1) if descending else range(lo, hi)
        by_id = self.by_id
        if by_updated:
            return ((p, by_id[self._updated[p][1]]) for p in span)
        return ((p, by_id[self._ids[p]]) for p in span)


def _bounds(
    where: tuple[Condition, ...],
    name: str,
    lo: int,
    hi: int,
    left: Callable[[Any], int],
    right: Callable[[Any], int],
) -> tuple[int, int]:
    """Narrow [lo, hi) of a sorted index by the range conditions on its field (others filter later)."""
    for c in where:
        if c.field != name:
            continue
        v = c.values[0]
        if c.op == ">":
            lo = max(lo, right(v))
        elif c.op == ">=":
            lo = max(lo, left(v))
        elif c.op == "<":
            hi = min(hi, left(v))
        elif c.op == "<=":
            hi = min(hi, right(v))
    return lo, max(lo, hi)
