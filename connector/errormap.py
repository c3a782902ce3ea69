"""Declarative error mapping: what a ledger's answer means, as a table an adapter writes once.

Each adapter describes its ledger's failures as rows (`ErrorRule`): when the answer matches (an HTTP status,
a range of them, or a predicate over the answer), the error class to raise and its message as a template
over the answer's attributes. `resolve` applies the table; the adapter keeps only how it reads an answer.

Invariants:
- Rows are tried in order and the first that matches decides; `resolve` returns None when none does (an
  answer that is no error), and never raises.
- A row's message is `str.format` over the answer's attributes (`{what}`, `{status}`, ...); its error class
  gets the message as `message=` along with the keyword arguments `args(answer)` names (a status, a
  Retry-After), or the message alone when it takes nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from connector.ledger import LedgerError


class HasStatus(Protocol):
    """An answer with an HTTP status (0: none came)."""

    @property
    def status(self) -> int: ...


A = TypeVar("A", bound=HasStatus)


@dataclass(frozen=True, slots=True)
class ErrorRule(Generic[A]):
    """One row of an adapter's table: answers matching `when` raise `error` with `message`."""

    when: int | range | Callable[[A], bool]  # a status, a range of statuses, or a predicate over the answer
    error: type[LedgerError]
    message: str  # a str.format template over the answer's attributes
    args: Callable[[A], Mapping[str, Any]] | None = None  # the error's other keyword arguments

    def matches(self, answer: A) -> bool:
        when = self.when
        if isinstance(when, int):
            return answer.status == when
        if isinstance(when, range):
            return answer.status in when
        return when(answer)

    def build(self, answer: A) -> LedgerError:
        text = self.message.format_map(_Attributes(answer))
        if self.args is None:
            return self.error(text)
        make: Callable[..., LedgerError] = self.error  # its own keywords (`status`, `retry_after`, ...)
        return make(message=text, **self.args(answer))


def resolve(rules: Sequence[ErrorRule[A]], answer: A) -> LedgerError | None:
    """The error the first matching row makes of `answer`, or None if no row matches."""
    for rule in rules:
        if rule.matches(answer):
            return rule.build(answer)
    return None


class _Attributes:
    """The answer's attributes as the mapping `str.format_map` reads a template's fields from."""

    __slots__ = ("_answer",)

    def __init__(self, answer: object) -> None:
        self._answer = answer

    def __getitem__(self, name: str) -> Any:
        return getattr(self._answer, name)
