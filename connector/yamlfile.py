"""Reading YAML settings files (mappings, policies) strictly, with one-line errors naming file and line.

The rules files (policies, credit rules, reference rates) are then checked by pydantic models built on
`FileModel`: `validated` turns the first problem into one line `file: key.path: problem`, worded as the
settings' errors are (connector/config.py `problem`). A model refuses keys it does not declare, naming the
ones it takes; `worded` says a field's type or range failure in the file's own words; `at` raises a domain
rule's problem at a key below the validator (the second of two levels, a duplicate name). Only the
first problem is told, as for the settings.
"""

from __future__ import annotations

import copy
import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)
from pydantic_core import CoreSchema, InitErrorDetails, core_schema

from connector.config import problem
from connector.errors import NeedsPerson


class FileProblem(NeedsPerson, ValueError):
    """A settings file is unreadable or invalid; the message is one line naming the file."""


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses duplicate keys instead of silently keeping the last one."""


def _construct_mapping(
    loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False
) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


def _construct_timestamp(loader: _UniqueKeyLoader, node: yaml.ScalarNode) -> Any:
    """A date that does not exist (2026-13-01, 2026-02-30) is the file's error, with its line."""
    try:
        return loader.construct_yaml_timestamp(node)
    except ValueError as exc:
        raise yaml.constructor.ConstructorError(
            None, None, f"not a real date: {node.value} ({exc})", node.start_mark
        ) from None


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:timestamp", _construct_timestamp)


_parsed: dict[tuple[str, str], Any] = {}
_parsed_lock = threading.Lock()
_CACHE_FILES = 512


def read_yaml(path: Path, name: str, error: type[FileProblem] = FileProblem) -> Any:
    """Parse the YAML file at `path` (shown as `name`), raising `error` with one line on any failure.

    Parses are kept per file content: a server reads the same mapping and policy files for every tenant
    every night, and PyYAML takes milliseconds a file where reading and hashing it takes microseconds.
    Callers get a copy of their own.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"{name}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise error(f"{name}: not UTF-8 text (byte {exc.start})") from None
    key = (name, hashlib.sha256(text.encode()).hexdigest())
    with _parsed_lock:
        if key in _parsed:
            return copy.deepcopy(_parsed[key])
    parsed = _parse(text, name, error)
    with _parsed_lock:
        if len(_parsed) >= _CACHE_FILES:
            _parsed.clear()
        _parsed[key] = parsed
    return copy.deepcopy(parsed)


def _parse(text: str, name: str, error: type[FileProblem]) -> Any:
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}" if mark else "?"
        raise error(f"{name}: {where}: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise error(f"{name}: {exc}") from None


# ---- checking a parsed file against a model

M = TypeVar("M", bound=BaseModel)


class FileModel(BaseModel):
    """A mapping of a rules file: frozen, refusing keys it does not declare (`extra="forbid"`) by name."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    NOT_A_MAPPING: ClassVar[str] = "expected a mapping"
    FILE_KEYS: ClassVar[tuple[str, ...]] = ()  # the keys the file may use here (aliases for no Python name)
    _KEY_SET: ClassVar[frozenset[Any]] = frozenset()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls.FILE_KEYS = tuple(field.alias or name for name, field in cls.model_fields.items())
        cls._KEY_SET = frozenset(cls.FILE_KEYS)

    @classmethod
    def unknown(cls, key: str) -> str:
        return f"unknown key (allowed: {', '.join(cls.FILE_KEYS)})"

    @model_validator(mode="before")
    @classmethod
    def _mapping(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            raise ValueError(cls.NOT_A_MAPPING)
        if cls.model_config.get("extra") == "forbid" and not cls._KEY_SET.issuperset(data):
            key = next(k for k in data if k not in cls._KEY_SET)
            raise at(_key(key), cls.unknown(key))
        return data


def at(loc: str | int | tuple[str | int, ...], message: str) -> ValidationError:
    """A problem at `loc` below the validator that raises it (pydantic prefixes the validator's own place)."""
    where = loc if isinstance(loc, tuple) else (loc,)
    details = InitErrorDetails(type="value_error", loc=where, input=None, ctx={"error": ValueError(message)})
    return ValidationError.from_exception_data("file", [details])


def worded(message: str | None, *, shallow: bool = False, **by_type: str) -> Any:
    """Say a field's failure as `by_type[pydantic error type]`, else `message`; `{got}` is the value refused.

    `message` None: other failures keep their words. `shallow`: only failures of the field itself (not a
    list, too short); its items' keep their own words. Used in `Annotated[...]` after the type and its
    constraints. A plain `worded(message)` costs nothing on a good value (pydantic-core's custom error);
    the others run a Python wrap around the field.
    """
    if message is not None and not shallow and not by_type:
        return _Worded(message)

    def wrap(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError as exc:
            first = exc.errors()[0]
            text = by_type.get(first["type"], message)
            if text is None or (shallow and first["loc"]):
                raise
            raise ValueError(text) from None

    return WrapValidator(wrap)


@dataclass(frozen=True, slots=True)
class _Worded:
    message: str

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        schema = handler(source)
        context = {"error": self.message}
        return core_schema.custom_error_schema(schema, "value_error", custom_error_context=context)


def required() -> Any:
    """A key the file must have: left out, it is checked as null, so the message is the field's own."""
    return Field(default=None, validate_default=True)


def brief(value: Any, most: int = 60) -> str:
    """`value`'s repr for an error line, cut short."""
    text = repr(value)
    return text if len(text) <= most else text[:most] + "…"


def validated(model: type[M], doc: Any, name: str, error: type[FileProblem]) -> M:
    """`doc` (a parsed file shown as `name`) as `model`, or `error` with one line naming file and key."""
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = key_path(first["loc"])
        text = problem(first).replace("{got}", brief(first.get("input")))  # `worded`: the value refused
        raise error(f"{name}: {where + ': ' if where else ''}{text}") from None


def key_path(loc: Sequence[str | int]) -> str:
    """pydantic's location as the file's key path: `policies[0].levels[1].offset`, `checked.boe_base_rate`."""
    path = ""
    for part in loc:
        if part == "[key]":  # pydantic marks a mapping's key (not its value) so; the key itself is named
            continue
        path += f"[{part}]" if isinstance(part, int) else f".{part}" if path else str(part)
    return path


def _key(key: Any) -> str | int:
    return key if isinstance(key, str | int) and not isinstance(key, bool) else str(key)
