"""Source paths into raw records: `A.B`, `Lines[].Amount` (every element), `Lines[0].Amount`, `$.X` (parent).

A path compiles once into a getter; getters never raise on missing keys, they return None (or [] for lists).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Getter = Callable[[Any], Any]
_SEGMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_@-]*)((?:\[\d*\])*)$")
_INDEX = re.compile(r"\[(\d*)\]")


class PathProblem(ValueError):
    pass


def parse(path: str) -> list[tuple[str, list[int | None]]]:
    """Split a path into (key, [index or None for "every"]) steps, or raise PathProblem."""
    if not path or path.strip() != path:
        raise PathProblem(f"bad source path {path!r}")
    steps: list[tuple[str, list[int | None]]] = []
    for part in path.split("."):
        m = _SEGMENT.match(part)
        if not m:
            raise PathProblem(f"bad source path {path!r}")
        indexes: list[int | None] = [int(i) if i else None for i in _INDEX.findall(m.group(2))]
        steps.append((m.group(1), indexes))
    return steps


def normalise(path: str) -> str:
    """The schema form of a path: indexes become `[]`, a leading `$.` is dropped."""
    return _INDEX.sub("[]", path.removeprefix("$."))


def is_multi(path: str) -> bool:
    """True when the path can yield several values (it walks `[]`)."""
    return "[]" in path


def compile_path(path: str) -> Getter:
    """A fast getter for `path` ("." alone is the record itself)."""
    if path == ".":
        return lambda rec: rec
    steps = parse(path)
    multi = is_multi(path)
    if not multi and len(steps) == 1 and not steps[0][1]:
        key = steps[0][0]
        return lambda rec: rec.get(key) if isinstance(rec, dict) else None
    if not multi and all(not idx for _, idx in steps):
        keys = [k for k, _ in steps]

        def walk_keys(rec: Any) -> Any:
            for k in keys:
                if not isinstance(rec, dict):
                    return None
                rec = rec.get(k)
            return rec

        return walk_keys

    def walk(rec: Any) -> Any:
        values: list[Any] = [rec]
        for key, indexes in steps:
            nxt: list[Any] = []
            for v in values:
                if isinstance(v, dict) and v.get(key) is not None:
                    nxt.append(v[key])
            for index in indexes:
                expanded: list[Any] = []
                for v in nxt:
                    if not isinstance(v, list):
                        continue
                    if index is None:
                        expanded.extend(v)
                    elif index < len(v):
                        expanded.append(v[index])
                nxt = expanded
            values = nxt
        if multi:
            return values
        return values[0] if values else None

    return walk
