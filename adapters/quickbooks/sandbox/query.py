"""The QBO query language subset: a parser into a typed `Query`, and literal matching.

Grammar (keywords case-insensitive, as QBO): ``SELECT * | COUNT(*) FROM Entity [WHERE cond {AND cond}]
[ORDERBY|ORDER BY field [ASC|DESC]] [STARTPOSITION n] [MAXRESULTS n]`` where ``cond`` is ``field op literal``
(``= < > <= >=``), ``field IN (literal, ...)`` or ``field LIKE 'pattern%'``. No OR, as in QBO.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

FieldType = Literal["id", "datetime", "date", "decimal", "bool", "str"]
MAX_RESULTS = 1000
DEFAULT_MAX_RESULTS = 100

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')|(?P<num>-?\d+(?:\.\d+)?)(?![\w.])|(?P<op><=|>=|!=|=|<|>|\(|\)|,|\*)"
    r"|(?P<word>[A-Za-z_][A-Za-z0-9_.]*))"
)
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "<": operator.lt,
    ">": operator.gt,
    "<=": operator.le,
    ">=": operator.ge,
}


class QueryError(ValueError):
    """A query QBO would refuse; the message is what its ValidationFault says."""


@dataclass(frozen=True, slots=True)
class Condition:
    """One WHERE term; `values` are typed by the field (one value except for IN)."""

    field: str
    op: str
    values: tuple[Any, ...]

    def test(self, value: Any) -> bool:
        """Whether a record's value (a list means any element) satisfies the condition."""
        if isinstance(value, list):
            return any(self.test(v) for v in value)
        if value is None:
            return False
        if self.op == "IN":
            return value in self.values
        if self.op == "LIKE":
            return self.values[0].fullmatch(value) is not None
        return bool(_COMPARE[self.op](value, self.values[0]))


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed query; `start` is 1-based as in QBO."""

    entity: str
    count: bool
    where: tuple[Condition, ...]
    order_by: str | None
    descending: bool
    start: int
    max_results: int

    def condition_on(self, field: str) -> bool:
        """Whether any WHERE term names `field`."""
        return any(c.field == field for c in self.where)


class _Tokens:
    def __init__(self, text: str) -> None:
        self.items: list[tuple[str, str]] = []
        pos = 0
        text = text.strip().rstrip(";")
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                rest = text[pos:].strip()
                if not rest:
                    break
                raise QueryError(f'QueryParserError: Encountered "{rest[:20]}" at position {pos + 1}')
            kind = m.lastgroup or ""
            self.items.append((kind, m.group(kind)))
            pos = m.end()
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.items[self.i] if self.i < len(self.items) else None

    def next(self, what: str) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise QueryError(f"QueryParserError: Encountered end of query, expected {what}")
        self.i += 1
        return tok

    def keyword(self, *words: str) -> str | None:
        tok = self.peek()
        if tok and tok[0] == "word" and tok[1].upper() in words:
            self.i += 1
            return tok[1].upper()
        return None

    def expect(self, word: str) -> None:
        value = self.next(word)[1]
        if value.upper() != word:
            raise QueryError(f'QueryParserError: Encountered "{value}", expected {word}')


def parse(text: str, entities: Mapping[str, Mapping[str, FieldType]]) -> Query:
    """Parse `text` against the queryable fields of each entity.

    Args:
        text: the query as sent (GET `query=` parameter or POST body).
        entities: entity name -> {field name -> type}; names match case-insensitively.

    Returns:
        The typed query.

    Raises:
        QueryError: the query is malformed or names an unknown entity or field.
    """
    toks = _Tokens(text)
    toks.expect("SELECT")
    count = False
    if toks.keyword("COUNT"):
        for sym in ("(", "*", ")"):
            if toks.next(sym)[1] != sym:
                raise QueryError("QueryParserError: COUNT takes (*)")
        count = True
    elif toks.next("*")[1] != "*":
        raise QueryError("QueryParserError: only SELECT * and SELECT COUNT(*) are supported")
    toks.expect("FROM")
    kind, name = toks.next("an entity name")
    entity = next((e for e in entities if e.lower() == name.lower()), None)
    if kind != "word" or entity is None:
        raise QueryError(f"QueryValidationError: Invalid entity name: {name}")
    fields = {f.lower(): (f, t) for f, t in entities[entity].items()}
    where: list[Condition] = []
    if toks.keyword("WHERE"):
        where.append(_condition(toks, fields, entity))
        while toks.keyword("AND"):
            where.append(_condition(toks, fields, entity))
        if toks.keyword("OR"):
            raise QueryError("QueryParserError: OR is not supported, use AND or IN")
    order_by, descending, start, max_results = _tail(toks, fields, entity)
    return Query(entity, count, tuple(where), order_by, descending, start, max_results)


def _tail(
    toks: _Tokens, fields: Mapping[str, tuple[str, FieldType]], entity: str
) -> tuple[str | None, bool, int, int]:
    order_by, descending = None, False
    ordered = toks.keyword("ORDERBY", "ORDER")
    if ordered:
        if ordered == "ORDER":
            toks.expect("BY")
        order_by = _field(toks, fields, entity)[0]
        descending = toks.keyword("ASC", "DESC") == "DESC"
    start, max_results = 1, DEFAULT_MAX_RESULTS
    if toks.keyword("STARTPOSITION"):
        start = _int(toks, "STARTPOSITION")
    if toks.keyword("MAXRESULTS"):
        max_results = _int(toks, "MAXRESULTS")
    if toks.peek() is not None:
        raise QueryError(f'QueryParserError: Encountered "{toks.next("")[1]}" after the end of the query')
    if max_results > MAX_RESULTS:
        raise QueryError(f"QueryValidationError: MAXRESULTS must be at most {MAX_RESULTS}, got {max_results}")
    return order_by, descending, start, max_results


def _int(toks: _Tokens, word: str) -> int:
    kind, value = toks.next(f"a number after {word}")
    if kind != "num" or "." in value or int(value) < 1:
        raise QueryError(f"QueryValidationError: {word} must be a positive integer, got {value}")
    return int(value)


def _field(toks: _Tokens, fields: Mapping[str, tuple[str, FieldType]], entity: str) -> tuple[str, FieldType]:
    kind, name = toks.next("a property name")
    found = fields.get(name.lower()) if kind == "word" else None
    if found is None:
        raise QueryError(f"QueryValidationError: property '{name}' is not queryable for {entity}")
    return found


def _condition(toks: _Tokens, fields: Mapping[str, tuple[str, FieldType]], entity: str) -> Condition:
    field, ftype = _field(toks, fields, entity)
    op = toks.next("an operator")[1].upper()
    if op == "IN":
        if toks.next("(")[1] != "(":
            raise QueryError(f"QueryParserError: IN on {field} needs a parenthesised list")
        values = [_literal(toks, field, ftype)]
        while (sep := toks.next(")")[1]) == ",":
            values.append(_literal(toks, field, ftype))
        if sep != ")":
            raise QueryError(f'QueryParserError: Encountered "{sep}" in the IN list of {field}')
        return Condition(field, "IN", tuple(values))
    if op == "LIKE":
        if ftype != "str":
            raise QueryError(f"QueryValidationError: LIKE is not supported on {field}")
        pattern = _literal(toks, field, ftype)
        regex = re.compile(".*".join(re.escape(p) for p in pattern.split("%")), re.IGNORECASE | re.DOTALL)
        return Condition(field, "LIKE", (regex,))
    if op not in _COMPARE:
        raise QueryError(f"QueryParserError: operator '{op}' is not supported (on {field})")
    return Condition(field, op, (_literal(toks, field, ftype),))


def _literal(toks: _Tokens, field: str, ftype: FieldType) -> Any:
    kind, raw = toks.next(f"a value for {field}")
    text = raw[1:-1].replace("\\'", "'") if kind == "str" else raw
    try:
        return convert(text, ftype, quoted=kind == "str")
    except ValueError as exc:
        raise QueryError(f"QueryValidationError: invalid value {raw} for {field}: {exc}") from None


def convert(text: str, ftype: FieldType, *, quoted: bool = True) -> Any:
    """A literal as the value type of its field (naive datetimes are taken as UTC).

    Raises:
        ValueError: the text is not a value of that type.
    """
    if ftype == "id":
        if not text.isdigit():
            raise ValueError("not a numeric id")
        return int(text)
    if ftype == "datetime":
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)
    if ftype == "date":
        return date.fromisoformat(text)
    if ftype == "decimal":
        try:
            return Decimal(text)
        except InvalidOperation:
            raise ValueError("not a number") from None
    if ftype == "bool":
        if text.lower() not in {"true", "false"}:
            raise ValueError("not true or false")
        return text.lower() == "true"
    if not quoted:
        raise ValueError("strings must be quoted")
    return text
