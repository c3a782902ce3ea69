"""Pages of a long table: `?page=N` (1-based; a bad or too-large number is the nearest page that exists).

Lists are read whole or counted first, then cut here; the template macro in templates/_pager.html links the
neighbours, keeping the other query parameters.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlencode

T = TypeVar("T")
SIZE = 50


@dataclass(frozen=True, slots=True)
class Paging:
    number: int  # 1-based, within 1..pages
    size: int
    total: int
    query: tuple[tuple[str, str], ...] = ()  # the other query parameters, kept in the links
    param: str = "page"

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def offset(self) -> int:
        return (self.number - 1) * self.size

    @property
    def first_shown(self) -> int:
        return min(self.total, self.offset + 1)

    @property
    def last_shown(self) -> int:
        return min(self.total, self.offset + self.size)

    def cut(self, items: Sequence[T]) -> list[T]:
        return list(items[self.offset : self.offset + self.size])

    def link(self, number: int) -> str:
        return "?" + urlencode([*self.query, (self.param, str(number))])


def paging(params: Mapping[str, str], total: int, size: int = SIZE, param: str = "page") -> Paging:
    """The page asked for in `params` (the request's query parameters) of `total` rows."""
    text = params.get(param, "1")
    asked = int(text) if text.isdigit() and len(text) < 10 else 1
    pages = max(1, -(-total // size))
    kept = tuple((k, v) for k, v in params.items() if k not in (param, "done", "n"))
    return Paging(min(max(asked, 1), pages), size, total, kept, param)
