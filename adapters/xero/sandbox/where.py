"""Xero's `where` and `order` query parameters: a tokenizer and a recursive-descent parser.

A filter compiles to a predicate over a record as the sandbox renders it (Xero's JSON shape); an order
compiles to sort keys. Anything the grammar below does not cover, a field the record type does not have,
or operands that cannot be compared raises `QueryError`, which the sandbox answers as Xero's 400 validation
error: never a filter that silently matches nothing.

    expr       := conj (("OR" | "||") conj)*
    conj       := unary (("AND" | "&&") unary)*
    unary      := ("NOT" | "!") unary | "(" expr ")" | test
    test       := operand [op operand]            a lone operand must be boolean (IsCustomer)
    operand    := path ["." method "(" literal ")"] | literal
    path       := NAME ("." NAME)*                 Contact.ContactID
    method     := Contains | StartsWith | EndsWith
    op         := "==" | "=" | "!=" | "<>" | ">" | ">=" | "<" | "<="
    literal    := STRING | NUMBER | true | false | null | DateTime(y, m, d[, h, m, s]) | guid(STRING)
    order      := path [ASC | DESC] ("," path [ASC | DESC])*

Text comparisons ignore case (Xero runs the filter in its database, whose collation does; UNCONFIRMED);
MS-JSON dates compare as instants, numbers as decimals.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

Record = Mapping[str, Any]
Predicate = Callable[[Record], bool]


class QueryError(ValueError):
    """A `where` or `order` the sandbox (like Xero) refuses; the message is the validation error's text."""


@dataclass(frozen=True, slots=True)
class Guid:
    """A guid("...") literal: compares with a text field ignoring case."""

    value: str


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # NAME, STRING, NUMBER, OP, "(", ")", ",", "."
    text: str
    at: int


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<STRING>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
    | (?P<NUMBER>-?\d+(?:\.\d+)?)
    | (?P<NAME>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<OP>==|!=|<>|>=|<=|&&|\|\||[=<>!])
    | (?P<PUNCT>[(),.])
    )""",
    re.VERBOSE,
)
_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
_METHODS = {"contains", "startswith", "endswith"}
_COMPARE = {"==", "=", "!=", "<>", ">", ">=", "<", "<="}


def tokenize(text: str) -> list[Token]:
    """The tokens of a `where` or `order` text; an unexpected character is a QueryError naming where."""
    tokens: list[Token] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        found = _TOKEN.match(text, pos)
        if found is None or found.end() == pos:
            raise QueryError(f"unexpected character {text[pos:].lstrip()[:1]!r} at position {pos}")
        kind = found.lastgroup or ""
        raw = found.group(kind)
        tokens.append(Token("PUNCT" if kind == "PUNCT" else kind, raw, found.start(kind)))
        pos = found.end()
    return tokens


class _Parser:
    def __init__(self, text: str, fields: Mapping[str, str], type_name: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.fields = fields  # lower-cased dotted path -> the path as the record spells it
        self.type_name = type_name

    # ---- token helpers
    def peek(self, offset: int = 0) -> Token | None:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else None

    def take(self) -> Token:
        tok = self.peek()
        if tok is None:
            raise QueryError(f"the expression {self.text!r} ends too soon")
        self.i += 1
        return tok

    def is_word(self, *words: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == "NAME" and tok.text.lower() in words

    def is_text(self, *texts: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind in ("OP", "PUNCT") and tok.text in texts

    def expect(self, text: str) -> None:
        tok = self.take()
        if tok.text != text:
            raise QueryError(f"expected {text!r} at position {tok.at}, found {tok.text!r}")

    def done(self) -> None:
        tok = self.peek()
        if tok is not None:
            raise QueryError(f"unexpected {tok.text!r} at position {tok.at}")

    # ---- grammar
    def expr(self) -> Predicate:
        parts = [self.conj()]
        while self.is_word("or") or self.is_text("||"):
            self.take()
            parts.append(self.conj())
        return parts[0] if len(parts) == 1 else (lambda r: any(p(r) for p in parts))

    def conj(self) -> Predicate:
        parts = [self.unary()]
        while self.is_word("and") or self.is_text("&&"):
            self.take()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else (lambda r: all(p(r) for p in parts))

    def unary(self) -> Predicate:
        if self.is_word("not") or self.is_text("!"):
            self.take()
            inner = self.unary()
            return lambda r: not inner(r)
        if self.is_text("("):
            self.take()
            inner = self.expr()
            self.expect(")")
            return inner
        return self.test()

    def test(self) -> Predicate:
        left = self.operand()
        tok = self.peek()
        if tok is None or tok.kind != "OP" or tok.text not in _COMPARE:
            return lambda r: _truth(left(r))
        op = self.take().text
        right = self.operand()
        return lambda r: compare(op, left(r), right(r))

    def operand(self) -> Callable[[Record], Any]:
        tok = self.take()
        if tok.kind != "NAME" or self.is_text("(") or tok.text.lower() in ("true", "false", "null"):
            value = self.literal(tok)
            return lambda r: value
        names = [tok.text]
        while self.is_text("."):
            self.take()
            names.append(self.name())
            if self.is_text("(") and names[-1].lower() in _METHODS:
                method = names.pop().lower()
                return self.call(self.path(names), method)
            if self.is_text("("):
                raise QueryError(f"the method {names[-1]!r} is not supported")
        return self.path(names)

    def literal(self, tok: Token) -> Any:
        if tok.kind == "STRING":
            return _unquote(tok.text)
        if tok.kind == "NUMBER":
            return Decimal(tok.text)
        if tok.kind != "NAME":
            raise QueryError(f"expected a field or a value at position {tok.at}, found {tok.text!r}")
        if self.is_text("("):
            return self.function(tok)
        return {"true": True, "false": False, "null": None}[tok.text.lower()]

    def name(self) -> str:
        tok = self.take()
        if tok.kind != "NAME":
            raise QueryError(f"expected a field name at position {tok.at}, found {tok.text!r}")
        return tok.text

    def path(self, names: list[str]) -> Callable[[Record], Any]:
        dotted = ".".join(names)
        spelled = self.fields.get(dotted.lower())
        if spelled is None:
            raise QueryError(f"No property or field '{dotted}' exists in type '{self.type_name}'")
        keys = spelled.split(".")

        def value(record: Record) -> Any:
            current: Any = record
            for key in keys:
                if not isinstance(current, Mapping):
                    return None
                current = current.get(key)
            return current

        return value

    def call(self, target: Callable[[Record], Any], method: str) -> Callable[[Record], Any]:
        self.expect("(")
        arg = self.take()
        if arg.kind != "STRING":
            raise QueryError(f"{method}() takes a quoted text, found {arg.text!r}")
        needle = _unquote(arg.text).lower()
        self.expect(")")
        test = {
            "contains": lambda s: needle in s,
            "startswith": lambda s: s.startswith(needle),
            "endswith": lambda s: s.endswith(needle),
        }[method]

        def run(record: Record) -> bool:
            got = target(record)
            if got is None:
                return False
            if not isinstance(got, str):
                raise QueryError(f"{method}() needs a text field, not {_type(got)}")
            return test(got.lower())

        return run

    def function(self, tok: Token) -> Any:
        name = tok.text.lower()
        self.expect("(")
        args: list[Token] = []
        while not self.is_text(")"):
            if args:
                self.expect(",")
            args.append(self.take())
        self.expect(")")
        if name == "guid":
            if len(args) != 1 or args[0].kind != "STRING":
                raise QueryError('guid() takes one quoted id: guid("...")')
            return Guid(_unquote(args[0].text).lower())
        if name == "datetime":
            if len(args) not in (3, 6) or any(a.kind != "NUMBER" or "." in a.text for a in args):
                raise QueryError(
                    "DateTime() takes (year, month, day) or (year, month, day, hour, minute, second)"
                )
            y, mo, d, h, mi, sec = [int(a.text) for a in args] + [0] * (6 - len(args))
            try:
                return datetime(y, mo, d, h, mi, sec, tzinfo=UTC)
            except ValueError as exc:
                raise QueryError(f"DateTime() is not a date: {exc}") from None
        raise QueryError(f"the function {tok.text!r} is not supported (use DateTime(...) or guid(...))")


def _unquote(raw: str) -> str:
    return re.sub(r"\\(.)", r"\1", raw[1:-1])


def _type(value: Any) -> str:
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, Decimal):
        return "Decimal"
    if isinstance(value, datetime):
        return "DateTime"
    if isinstance(value, Guid):
        return "Guid"
    if isinstance(value, str):
        return "String"
    return type(value).__name__


def coerce(value: Any) -> Any:
    """A rendered JSON value as the filter compares it: MS-JSON dates as instants, numbers as decimals."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        try:
            return Decimal(str(value))
        except InvalidOperation:  # pragma: no cover - JSON numbers are always finite here
            return value
    if isinstance(value, str):
        found = _MS_DATE.match(value)
        if found:
            return datetime.fromtimestamp(int(found.group(1)) / 1000, UTC)
    return value


def _truth(value: Any) -> bool:
    value = coerce(value)
    if not isinstance(value, bool):
        raise QueryError(f"a condition must be true or false, not {_type(value)}")
    return value


def compare(op: str, left: Any, right: Any) -> bool:
    """`left op right` with Xero's types; incomparable operands raise QueryError."""
    a, b = coerce(left), coerce(right)
    if op in ("==", "="):
        return _equal(a, b)
    if op in ("!=", "<>"):
        return not _equal(a, b)
    if a is None or b is None:
        return False
    ordered = (isinstance(a, Decimal) and isinstance(b, Decimal)) or (
        isinstance(a, datetime) and isinstance(b, datetime)
    )
    if not ordered:
        raise QueryError(f"Operator '{op}' incompatible with operand types '{_type(a)}' and '{_type(b)}'")
    return {">": a > b, ">=": a >= b, "<": a < b, "<=": a <= b}[op]


def _equal(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, Guid) or isinstance(b, Guid):
        texts = [x.value if isinstance(x, Guid) else x for x in (a, b)]
        if not all(isinstance(t, str) for t in texts):
            raise QueryError(f"Operator '==' incompatible with operand types '{_type(a)}' and '{_type(b)}'")
        return bool(texts[0].lower() == texts[1].lower())
    if type(a) is not type(b):
        raise QueryError(f"Operator '==' incompatible with operand types '{_type(a)}' and '{_type(b)}'")
    if isinstance(a, str):
        return a.lower() == b.lower()
    return bool(a == b)


def field_names(paths: Iterable[str]) -> dict[str, str]:
    """The filterable dotted paths of a record type (arrays left out), keyed by their lower-case spelling."""
    return {p.lower(): p for p in paths if "[" not in p}


def compile_where(text: str, fields: Mapping[str, str], type_name: str) -> Predicate | None:
    """The predicate for a `where` text (None when it is blank)."""
    if not text.strip():
        return None
    parser = _Parser(text, fields, type_name)
    predicate = parser.expr()
    parser.done()
    return predicate


OrderKeys = list[tuple[Callable[[Record], Any], bool]]


def compile_order(text: str, fields: Mapping[str, str], type_name: str) -> OrderKeys:
    """(value of record, descending) per `order` item, most significant first."""
    parser = _Parser(text, fields, type_name)
    keys: OrderKeys = []
    while True:
        tok = parser.take()
        if tok.kind != "NAME":
            raise QueryError(f"expected a field to order by at position {tok.at}, found {tok.text!r}")
        names = [tok.text]
        while parser.is_text("."):
            parser.take()
            names.append(parser.name())
        getter = parser.path(names)
        descending = False
        if parser.is_word("asc", "desc"):
            descending = parser.take().text.lower() == "desc"
        keys.append((getter, descending))
        if parser.peek() is None:
            return keys
        parser.expect(",")


def sort_key(value: Any) -> tuple[int, Any]:
    """A key that orders one column: nulls first, text ignoring case."""
    value = coerce(value)
    if value is None:
        return (0, 0)
    if isinstance(value, str):
        return (1, value.lower())
    if isinstance(value, Mapping | list):
        raise QueryError("cannot order by a nested object or a list")
    return (1, value)
