"""Reading YAML settings files (mappings, policies) strictly, with one-line errors naming file and line."""

from __future__ import annotations

import copy
import hashlib
import threading
from pathlib import Path
from typing import Any

import yaml

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
