"""Load a mapping file, merge a per-tenant override over it, validate and compile.

Errors are one line: `<file>: <key.path>: <problem>`, naming the file that supplied the offending key.
Merge rule: mappings merge key by key; a field's spec (`<stream>.fields.<name>`) is replaced whole.

A compiled mapping is kept (up to CACHED, per process) under its files' paths and contents (a digest of
their bytes) and the schema it was checked against: every night of every firm loads its mapping, and
parsing and compiling the same unchanged YAML again was about 6 % of an unchanged night's CPU. The files are
still read on every load (a few kilobytes), so an edit counts at the next load however soon it was made; a
file that fails is never kept, so its error is raised on every load.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from connector.mapping.compile import CompiledMapping, KeyPath, Problem, compile_document
from connector.yamlfile import FileProblem
from connector.yamlfile import read_yaml as read_file

SHIPPED = Path(__file__).resolve().parents[2] / "mappings"
CACHED = 256  # compiled mappings kept per process (a firm with its own override is one)

_Stamp = tuple[str, bytes]  # path, digest of its bytes
_Key = tuple[_Stamp, _Stamp | None, int]
_cache: dict[_Key, tuple[Mapping[str, frozenset[str]] | None, CompiledMapping]] = {}
_cache_lock = threading.Lock()


class MappingFileError(FileProblem):
    """A mapping file is unreadable or invalid; the message is one line naming file, key path and problem."""


def display_name(path: Path) -> str:
    """Shipped files show as `mappings/<name>`; a user's file as the path they gave."""
    try:
        return f"mappings/{path.resolve().relative_to(SHIPPED)}"
    except ValueError:
        return str(path)


def read_yaml(path: Path) -> Any:
    """Parse a mapping file, turning every failure into a one-line MappingFileError."""
    return read_file(path, display_name(path), MappingFileError)


def merge(base: Any, override: Any, at: KeyPath = ()) -> Any:
    """Deep-merge `override` over `base` (a new object; neither input is changed).

    Mappings merge key by key; anything else in `override` replaces what `base` has, and a field's spec
    (the value under `<stream>.fields.<name>`) is replaced whole.

    Args:
        at: The key path of `base` in the whole document (for the field-spec rule).
    """
    if not isinstance(base, dict) or not isinstance(override, dict):
        return override
    if len(at) >= 2 and at[-1] == "fields":
        return {**base, **override}  # field specs replace whole
    merged = dict(base)
    for key, value in override.items():
        merged[key] = merge(base[key], value, (*at, str(key))) if key in base else value
    return merged


def _from_override(override: Any, key_path: KeyPath) -> bool:
    """Did the value at `key_path` of the merged document come from the override?"""
    node = override
    for depth, key in enumerate(key_path):
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
        replaced_whole = depth >= 2 and key_path[depth - 1] == "fields"
        if replaced_whole or not isinstance(node, dict):
            return True
    return True


def load_mapping(
    default: Path,
    override: Path | None = None,
    schema: Mapping[str, frozenset[str]] | None = None,
) -> CompiledMapping:
    """Load `default`, merge `override` over it when given, validate against `schema`, compile.

    Args:
        default: The ledger's mapping file (the shipped one, or a firm's own).
        override: A tenant's partial mapping merged over it (see the merge rule above).
        schema: Per raw stream, every source path the ledger's records may carry (`AdapterSpec.schema`):
            a path outside it, or a stream the ledger does not have, is refused. None checks no paths.

    Returns:
        The compiled mapping; its `source` names both files.

    Raises:
        MappingFileError: With one line `<file>: <key.path>: <problem>`, naming the file that supplied
            the offending key (the override when it did).
    """
    try:
        key: _Key = (_stamp(default), _stamp(override) if override is not None else None, id(schema))
    except OSError:  # missing or unreadable: reading it says so, in the file's own words
        return _load(default, override, schema)
    with _cache_lock:
        kept = _cache.get(key)
    if kept is not None and kept[0] is schema:
        return kept[1]
    compiled = _load(default, override, schema)
    with _cache_lock:
        while len(_cache) >= CACHED:
            del _cache[next(iter(_cache))]  # the oldest
        _cache[key] = (schema, compiled)
    return compiled


def _stamp(path: Path) -> _Stamp:
    return (str(path), hashlib.blake2b(path.read_bytes(), digest_size=16).digest())


def _load(
    default: Path, override: Path | None, schema: Mapping[str, frozenset[str]] | None
) -> CompiledMapping:
    doc = read_yaml(default)
    over = read_yaml(override) if override is not None else None
    if over is not None and not isinstance(over, dict):
        raise MappingFileError(f"{display_name(override or default)}: expected a mapping at the top")
    merged = merge(doc, over) if over else doc
    source = display_name(default) + (f" + {display_name(override)}" if override else "")
    try:
        return compile_document(merged, source, schema)
    except Problem as problem:
        from_override = override is not None and over and _from_override(over, problem.key_path)
        culprit = override if from_override and override is not None else default
        where = ".".join(problem.key_path) or "(top)"
        raise MappingFileError(f"{display_name(culprit)}: {where}: {problem.message}") from None
