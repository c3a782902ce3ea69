"""Validate a merged mapping document and compile it into fast per-stream callables.

Every problem is raised as `Problem(key_path, message)`; the loader turns it into one line naming the file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from connector.mapping import paths, phones
from connector.mapping.fields import ALLOCATING, ALLOCATION_FIELDS, CATALOGUE, DEFAULT_RECORD, FieldDef, Kind
from connector.mapping.values import ValueProblem, check_format, date_parser, instant_parser, to_decimal
from connector.model import RECORD_TYPES, Allocation, ModelError, Money, Record, RecordError, SourceKind

SUPPORTED_VERSIONS = (1,)
RESERVED = ("version", "ledger", "options")
KeyPath = tuple[str, ...]
# A compiled field reads (element, record): `element` is the record itself or one allocation element.
FieldFn = Callable[[Any, Any], Any]


class Problem(Exception):
    """A mapping document is invalid at `key_path` (keys from the top, list indexes as text).

    `load_mapping` turns it into a MappingFileError naming the file; callers of `compile_document` do
    the same.
    """

    def __init__(self, key_path: KeyPath, message: str) -> None:
        super().__init__(message)
        self.key_path = key_path
        self.message = message


class _RecordProblem(Exception):
    pass


@dataclass(frozen=True)
class CompiledStream:
    """One raw stream's compiled mapping.

    Attributes:
        name: The raw stream ("invoices").
        record: The canonical record it yields (invoice, payment, credit_note, customer).
        id_of: The raw record's id as the ledger has it (None when missing).
        accepts: Whether a raw record belongs to this stream's `where` (True when it has none).
        build: The canonical record for a raw one; raises on a record it cannot map (use `map_page`).
    """

    name: str
    record: str
    id_of: Callable[[Any], Any]
    accepts: Callable[[Any], bool]
    build: Callable[[Any], Record]

    def map_page(self, raws: Iterable[Any]) -> tuple[list[Record], list[RecordError]]:
        """Map a page; records outside the stream's `where` are left out, failures become RecordErrors."""
        records: list[Record] = []
        errors: list[RecordError] = []
        for raw in raws:
            if not self.accepts(raw):
                continue
            try:
                records.append(self.build(raw))
            except (_RecordProblem, ValueProblem, ModelError, TypeError) as exc:
                rid = self.id_of(raw) if isinstance(raw, dict) else None
                errors.append(RecordError(self.name, None if rid is None else str(rid), str(exc)))
        return records, errors


@dataclass(frozen=True)
class CompiledMapping:
    """A validated mapping, ready to map pages.

    Attributes:
        source: The file(s) it was read from, as shown in messages.
        ledger: The ledger the file says it maps.
        options: The file's `options` (e.g. Xero's `hold_group`): a mapping, its values not checked here.
        streams: Per raw stream name, its compiled mapping, in the file's order.
    """

    source: str
    version: int
    ledger: str
    options: Mapping[str, Any]
    streams: Mapping[str, CompiledStream]


# ---- validation helpers


def _mapping(value: Any, at: KeyPath) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise Problem(at, f"expected a mapping, got {_kind(value)}")
    for key in value:
        if not isinstance(key, str):
            raise Problem(at, f"keys must be text, got {key!r}")
    return value


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "text", bool: "true/false"}.get(type(value), repr(value))


def _only(spec: Mapping[str, Any], allowed: Sequence[str], at: KeyPath) -> None:
    for key in spec:
        if key not in allowed:
            raise Problem((*at, key), f"unknown key (allowed: {', '.join(allowed)})")


class _Paths:
    """Checks source paths against the adapter's raw schema for one stream, if it has one."""

    def __init__(self, known: frozenset[str] | None, prefix: str = "") -> None:
        self.known = known
        self.prefix = prefix

    def check(self, path: Any, at: KeyPath) -> str:
        """`path` as given if it parses and the schema (when there is one) knows it; else Problem at `at`."""
        if not isinstance(path, str):
            raise Problem(at, f"source path must be text, got {_kind(path)}")
        try:
            paths.parse(path.removeprefix("$."))
        except paths.PathProblem as exc:
            raise Problem(at, str(exc)) from None
        if self.known is None:
            return path
        full = paths.normalise(path) if path.startswith("$.") else self.prefix + paths.normalise(path)
        if full not in self.known and not any(k.startswith(full + ".") for k in self.known):
            raise Problem(at, f"unknown source path {path!r}")
        return path

    def child(self, each: str) -> _Paths:
        """The checker for paths inside the list elements at `each` ("." for the record itself)."""
        prefix = "" if each == "." else paths.normalise(each) + "."
        return _Paths(self.known, prefix)


def _getter(path: str) -> Callable[[Any, Any], Any]:
    """A getter taking (element, record); `$.` paths read the record, others the element."""
    if path.startswith("$."):
        get = paths.compile_path(path[2:])
        return lambda element, record: get(record)
    steps = paths.parse(path) if path != "." else []
    if len(steps) == 1 and not steps[0][1]:
        key = steps[0][0]
        return lambda element, record: element.get(key) if type(element) is dict else None
    if len(steps) == 2 and not steps[0][1] and not steps[1][1]:
        outer, inner = steps[0][0], steps[1][0]

        def two(element: Any, record: Any) -> Any:
            node = element.get(outer) if type(element) is dict else None
            return node.get(inner) if type(node) is dict else None

        return two
    get = paths.compile_path(path)
    return lambda element, record: get(element)


def _literal(fdef: FieldDef, value: Any, at: KeyPath) -> Any:
    """Check and convert a constant from the file (a const, default, map or case value)."""
    if value is None:
        return None
    try:
        return _converter(fdef, "auto")(value)
    except (ValueProblem, ValueError) as exc:
        raise Problem(at, str(exc)) from None


def _converter(fdef: FieldDef, fmt: str) -> Callable[[Any], Any]:
    kind = fdef.kind
    if kind is Kind.TEXT:
        return lambda v: v if isinstance(v, str) else str(v)
    if kind is Kind.DATE:
        return date_parser(fmt)
    if kind is Kind.INSTANT:
        return instant_parser(fmt)
    if kind in (Kind.MONEY, Kind.DECIMAL):
        return to_decimal
    if kind is Kind.TEXTLIST:
        return lambda v: tuple(str(x) for x in v if x is not None) if isinstance(v, list) else (str(v),)
    enum = fdef.enum
    assert enum is not None

    def to_enum(v: Any) -> StrEnum:
        try:
            return enum(v)
        except ValueError:
            allowed = ", ".join(e.value for e in enum)
            raise ValueProblem(f"{v!r} is not one of {allowed}") from None

    return to_enum


def _compile_when(spec: Any, checker: _Paths, at: KeyPath) -> Callable[[Any, Any], bool]:
    """`{path: value}` or `{path: [values]}`: all must hold. Numbers compare as decimals."""
    conditions = _mapping(spec, at)
    tests: list[tuple[Callable[[Any, Any], Any], list[Any]]] = []
    for path, expected in conditions.items():
        checker.check(path, (*at, path))
        options = expected if isinstance(expected, list) else [expected]
        tests.append((_getter(path), [_comparable(o) for o in options]))

    if len(tests) == 1 and all(isinstance(o, str) for o in tests[0][1]):
        # One condition on text values (e.g. Type: ACCREC): a set lookup per record.
        get, wanted = tests[0][0], frozenset(tests[0][1])

        def holds_text(element: Any, record: Any) -> bool:
            value = get(element, record)
            return value in wanted if type(value) is str else False

        return holds_text

    def holds(element: Any, record: Any) -> bool:
        return all(_comparable(get(element, record)) in options for get, options in tests)

    return holds


def _comparable(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float | Decimal):
        return to_decimal(value)
    return value


_FIELD_KEYS = ("path", "const", "map", "default", "format", "cases")
_EMPTY: tuple[Any, ...] = (None, "", [])  # a raw value that counts as absent


def _field_converter(name: str, fdef: FieldDef, spec: Mapping[str, Any], at: KeyPath) -> Callable[[Any], Any]:
    fmt = spec.get("format", "auto")
    if not isinstance(fmt, str):
        raise Problem((*at, "format"), "format must be text")
    if problem := check_format(fmt):
        raise Problem((*at, "format"), problem)
    if "format" in spec and fdef.kind not in (Kind.DATE, Kind.INSTANT):
        raise Problem((*at, "format"), f"a format applies to dates only, and {name} is {fdef.kind}")
    return _converter(fdef, fmt)


def _field_map(fdef: FieldDef, spec: Mapping[str, Any], at: KeyPath) -> tuple[dict[str, Any] | None, Any]:
    """The value map (raw text -> canonical value) and its `*` wildcard, if the spec has one."""
    if "map" not in spec:
        return None, None
    raw_map = _mapping(spec["map"], (*at, "map"))
    value_map = {str(k): _literal(fdef, v, (*at, "map", str(k))) for k, v in raw_map.items()}
    return value_map, value_map.pop("*", None)


def _field_cases(
    fdef: FieldDef, spec: Mapping[str, Any], checker: _Paths, at: KeyPath
) -> list[tuple[Callable[[Any, Any], bool], Any]]:
    if "cases" not in spec:
        return []
    if not isinstance(spec["cases"], list) or not spec["cases"]:
        raise Problem((*at, "cases"), "expected a non-empty list of {when: ..., value: ...}")
    cases = []
    for i, item in enumerate(spec["cases"]):
        case_at = (*at, "cases", str(i))
        case = _mapping(item, case_at)
        _only(case, ("when", "value"), case_at)
        if "when" not in case or "value" not in case:
            raise Problem(case_at, "a case needs both 'when' and 'value'")
        test = _compile_when(case["when"], checker, (*case_at, "when"))
        cases.append((test, _literal(fdef, case["value"], (*case_at, "value"))))
    return cases


def _field_getters(
    name: str, fdef: FieldDef, spec: Mapping[str, Any], checker: _Paths, at: KeyPath
) -> list[Callable[[Any, Any], Any]]:
    if "path" not in spec:
        return []
    candidates = spec["path"] if isinstance(spec["path"], list) else [spec["path"]]
    if not candidates:
        raise Problem(at, "empty list of source paths")
    getters = []
    for path in candidates:
        checker.check(path, at)
        if paths.is_multi(path) and fdef.kind is not Kind.TEXTLIST:
            raise Problem(at, f"{path!r} yields a list, but {name} holds one value")
        getters.append(_getter(path))
    return getters


def _compile_field(name: str, fdef: FieldDef, spec: Any, checker: _Paths, at: KeyPath) -> FieldFn:
    if fdef.kind is Kind.PHONE:
        return phones.compile_phone(name, spec, checker, Problem, at)
    shorthand = isinstance(spec, str | list)
    spec = _mapping({"path": spec} if shorthand else spec, at)
    _only(spec, _FIELD_KEYS, at)
    convert = _field_converter(name, fdef, spec, at)
    value_map, wildcard = _field_map(fdef, spec, at)
    default = _literal(fdef, spec["default"], (*at, "default")) if "default" in spec else fdef.default
    cases = _field_cases(fdef, spec, checker, at)
    if "const" in spec:
        if "path" in spec:
            raise Problem(at, "give either 'path' or 'const', not both")
        const = _literal(fdef, spec["const"], (*at, "const"))
        return lambda element, record: const
    if "path" not in spec and not cases and "default" not in spec:
        raise Problem(at, "needs a 'path', a 'const', 'cases' or a 'default'")
    getters = _field_getters(name, fdef, spec, checker, at if shorthand else (*at, "path"))
    required = fdef.required

    def missing() -> Any:
        if default is None and required:
            raise _RecordProblem(f"{name}: missing value")
        return default

    def finish(raw: Any) -> Any:
        if value_map is not None:
            key = raw if isinstance(raw, str) else str(raw)
            if key in value_map:
                return value_map[key]
            if wildcard is not None:
                return wildcard
            raise _RecordProblem(f"{name}: unmapped value {raw!r}")
        try:
            return convert(raw)
        except ValueProblem as exc:
            raise _RecordProblem(f"{name}: {exc}") from None

    if not cases and len(getters) == 1:
        # The common case, kept lean: it runs once per field per record.
        get = getters[0]

        def read_one(element: Any, record: Any) -> Any:
            raw = get(element, record)
            if raw is None or raw in _EMPTY:
                return missing()
            if value_map is not None:
                return finish(raw)
            try:
                return convert(raw)
            except ValueProblem as exc:
                raise _RecordProblem(f"{name}: {exc}") from None

        return read_one

    def read(element: Any, record: Any) -> Any:
        for test, value in cases:
            if test(element, record):
                return value
        for get in getters:
            raw = get(element, record)
            if raw is not None and raw not in _EMPTY:
                return finish(raw)
        return missing()

    return read


def _compile_fields(
    catalogue: Mapping[str, FieldDef], spec: Any, checker: _Paths, at: KeyPath, what: str
) -> dict[str, FieldFn]:
    fields = _mapping(spec, at)
    compiled: dict[str, FieldFn] = {}
    for name, field_spec in fields.items():
        if name not in catalogue:
            raise Problem((*at, name), f"unknown canonical field for {what} (known: {', '.join(catalogue)})")
        compiled[name] = _compile_field(name, catalogue[name], field_spec, checker, (*at, name))
    for name, fdef in catalogue.items():
        if fdef.required and name not in compiled:
            raise Problem(at, f"missing required field {name!r}")
    return compiled


def _money(values: dict[str, Any], money_fields: Sequence[str]) -> None:
    if not money_fields:
        return
    currency = values.pop("currency", None)
    for name in money_fields:
        amount = values.get(name)
        if amount is None:
            continue
        if currency is None:
            raise _RecordProblem(f"{name}: no currency for the amount")
        values[name] = Money(amount, currency)


def _compile_stream(name: str, spec: Any, schema: Mapping[str, frozenset[str]] | None) -> CompiledStream:
    at: KeyPath = (name,)
    spec = _mapping(spec, at)
    _only(spec, ("record", "id", "where", "fields", "allocations"), at)
    record = spec.get("record", DEFAULT_RECORD.get(name))
    if record is None:
        raise Problem(at, f"missing 'record' (one of {', '.join(CATALOGUE)})")
    if record not in CATALOGUE:
        raise Problem((*at, "record"), f"unknown record type {record!r} (one of {', '.join(CATALOGUE)})")
    if schema is not None and name not in schema:
        raise Problem(at, f"the ledger has no stream {name!r} (it has: {', '.join(schema)})")
    checker = _Paths(schema.get(name) if schema is not None else None)
    if "id" not in spec:
        raise Problem(at, "missing 'id' (the source path of the record id)")
    get_id = _getter(checker.check(spec["id"], (*at, "id")))
    where = _compile_when(spec["where"], checker, (*at, "where")) if "where" in spec else None
    if "fields" not in spec:
        raise Problem(at, "missing 'fields'")
    catalogue = CATALOGUE[record]
    fields = _compile_fields(catalogue, spec["fields"], checker, (*at, "fields"), record)
    money = [n for n, f in catalogue.items() if f.kind is Kind.MONEY]
    allocations = _compile_allocations(record, spec.get("allocations"), checker, (*at, "allocations"))
    cls = RECORD_TYPES[record]
    items = list(fields.items())
    # Catalogue defaults for fields the file leaves out (e.g. a payment's unapplied amount: zero).
    defaults = {
        n: _literal(f, f.default, (*at, "fields", n))
        for n, f in catalogue.items()
        if n not in fields and f.default is not None
    }

    def build(raw: Any) -> Record:
        rid = get_id(raw, raw)
        if rid is None or rid == "":
            raise _RecordProblem("missing record id")
        values = {n: fn(raw, raw) for n, fn in items}
        if defaults:
            values = {**defaults, **values}
        values["id"] = rid if type(rid) is str else str(rid)
        currency = values.get("currency")
        _money(values, money)
        if allocations is not None:
            values["allocations"] = allocations(raw, values["id"], currency)
        return cls(**values)

    def accepts(raw: Any) -> bool:
        return where is None or where(raw, raw)

    return CompiledStream(name, record, lambda raw: get_id(raw, raw), accepts, build)


def _compile_allocations(
    record: str, spec: Any, checker: _Paths, at: KeyPath
) -> Callable[[Any, str, str | None], tuple[Allocation, ...]] | None:
    if spec is None:
        return None
    if record not in ALLOCATING:
        raise Problem(at, f"a {record} cannot carry allocations")
    spec = _mapping(spec, at)
    _only(spec, ("each", "where", "fields"), at)
    each = spec.get("each")
    if not isinstance(each, str):
        raise Problem((*at, "each"), "give the list path of the allocations, e.g. 'Allocations[]', or '.'")
    if each != ".":
        checker.check(each, (*at, "each"))
        if not paths.normalise(each).endswith("[]"):
            raise Problem((*at, "each"), f"{each!r} is not a list path (end it with [])")
    inner = checker.child(each)
    get_elements = paths.compile_path(each)
    where = _compile_when(spec["where"], inner, (*at, "where")) if "where" in spec else None
    fields = _compile_fields(ALLOCATION_FIELDS, spec.get("fields"), inner, (*at, "fields"), "an allocation")
    items = list(fields.items())
    kind = SourceKind(ALLOCATING[record])

    def allocate(raw: Any, source_id: str, currency: str | None) -> tuple[Allocation, ...]:
        found = get_elements(raw)
        elements = [found] if each == "." else (found or [])
        out = []
        for element in elements:
            if where is not None and not where(element, raw):
                continue
            values = {n: fn(element, raw) for n, fn in items}
            values["currency"] = currency
            _money(values, ("amount",))
            out.append(Allocation(source_kind=kind, source_id=source_id, **values))
        return tuple(out)

    return allocate


def compile_document(doc: Any, source: str, schema: Mapping[str, frozenset[str]] | None) -> CompiledMapping:
    """Validate and compile a merged mapping document.

    Args:
        doc: The parsed YAML document (after merging any override).
        source: The file(s) it came from, kept as `CompiledMapping.source`.
        schema: Per raw stream, the source paths its records may carry; None checks no paths.

    Raises:
        Problem: The first problem found, with its key path.
    """
    doc = _mapping(doc, ())
    version = doc.get("version")
    if version not in SUPPORTED_VERSIONS:
        raise Problem(("version",), f"unsupported mapping version {version!r} (supported: 1)")
    ledger = doc.get("ledger")
    if not isinstance(ledger, str) or not ledger:
        raise Problem(("ledger",), "missing ledger name")
    options = _mapping(doc.get("options", {}), ("options",))
    streams = {
        name: _compile_stream(name, spec, schema) for name, spec in doc.items() if name not in RESERVED
    }
    if not streams:
        raise Problem((), "no streams mapped")
    return CompiledMapping(source, version, ledger, dict(options), streams)
