"""Phone fields of a mapping: a number a bookkeeper can dial, read from text or picked from typed parts.

Two forms, both in the field's spec:

    phone: [PrimaryPhone.FreeFormNumber, Mobile.FreeFormNumber]     # text: the first usable one

    phone:                                                          # a list of typed parts
      path: Phones[]
      prefer: {PhoneType: [DEFAULT, DDI, MOBILE]}                   # in this order; other types never
      parts: {country: PhoneCountryCode, area: PhoneAreaCode, number: PhoneNumber}

Guarantees: a value without a digit (an empty entry, a number of spaces or dashes) is skipped and the next
candidate tried, never an error; no candidate usable gives None. Parts join as "+44 20 7946 0958": the
country code with a "+", the area code without brackets (and without its trunk 0 when a country code is
given: "+44 020" is not dialable), then the number as the ledger holds it. A number already written with
"+" stands alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from connector.mapping import paths

KeyPath = tuple[str, ...]
FieldFn = Callable[[Any, Any], Any]
PARTS = ("country", "area", "number")
KEYS = ("path", "prefer", "parts")
_SPACES = re.compile(r"\s+")
_DIGIT = re.compile(r"\d")
# Where the trunk 0 is part of the number dialled from abroad (Italy's landlines, San Marino, the Vatican).
_KEEP_TRUNK = frozenset({"39", "378", "379"})


class Checker(Protocol):
    """compile._Paths: checks source paths against the ledger's raw schema."""

    def check(self, path: Any, at: KeyPath) -> str: ...

    def child(self, each: str) -> Checker: ...


Fail = Callable[[KeyPath, str], Exception]


def clean(raw: Any) -> str | None:
    """Free text as a number to dial: spaces collapsed; None when it holds no digit."""
    if not isinstance(raw, str | int) or isinstance(raw, bool):
        return None
    text = _SPACES.sub(" ", str(raw)).strip()
    return text if _DIGIT.search(text) else None


def dialable(country: Any, area: Any, number: Any) -> str | None:
    """Join a country code, an area code and a number; None when the number has no digit."""
    main = clean(number)
    if main is None:
        return None
    if main.startswith("+"):
        return main
    code = "".join(ch for ch in (clean(country) or "") if ch.isdigit())
    code = code[2:] if code.startswith("00") else code
    region = (clean(area) or "").replace("(", "").replace(")", "").strip()
    if code and region.startswith("0") and code not in _KEEP_TRUNK:
        region = region[1:]
    return " ".join(part for part in (f"+{code}" if code else "", region, main) if part)


def compile_phone(name: str, spec: Any, checker: Checker, fail: Fail, at: KeyPath) -> FieldFn:
    """A field reader for a phone `spec` (see the module docstring); `fail` builds the caller's Problem."""
    spec = {"path": spec} if isinstance(spec, str | list) else spec
    if not isinstance(spec, Mapping):
        raise fail(at, "expected a source path, a list of them, or a mapping with 'path'")
    for key in spec:
        if key not in KEYS:
            raise fail((*at, str(key)), f"unknown key for a phone field (allowed: {', '.join(KEYS)})")
    candidates = spec.get("path")
    candidates = candidates if isinstance(candidates, list) else [candidates]
    if not candidates or candidates == [None]:
        raise fail(at, f"{name} needs a 'path'")
    if "parts" not in spec:
        if "prefer" in spec:
            raise fail((*at, "prefer"), "'prefer' picks among typed parts: give 'parts' too")
        return _text_reader([_single(p, checker, fail, (*at, "path")) for p in candidates])
    return _parts_reader(candidates, spec, checker, fail, at)


def _single(path: Any, checker: Checker, fail: Fail, at: KeyPath) -> Callable[[Any], Any]:
    checker.check(path, at)
    if paths.is_multi(path):
        raise fail(at, f"{path!r} yields a list: pick its parts with 'parts' (and 'prefer')")
    return paths.compile_path(path)


def _text_reader(getters: list[Callable[[Any], Any]]) -> FieldFn:
    def read(element: Any, record: Any) -> str | None:
        for get in getters:
            if (found := clean(get(element))) is not None:
                return found
        return None

    return read


def _parts_reader(candidates: list[Any], spec: Mapping[str, Any], checker: Checker, fail: Fail,
                  at: KeyPath) -> FieldFn:  # fmt: skip
    lists = []
    for path in candidates:
        checker.check(path, (*at, "path"))
        if not isinstance(path, str) or not paths.normalise(path).endswith("[]"):
            raise fail((*at, "path"), f"{path!r} is not a list path (end it with [])")
        lists.append((paths.compile_path(path), checker.child(path)))
    raw_parts = spec["parts"]
    if not isinstance(raw_parts, Mapping) or "number" not in raw_parts:
        raise fail((*at, "parts"), "give the parts as {country: ..., area: ..., number: ...} (number needed)")
    for key in raw_parts:
        if key not in PARTS:
            raise fail((*at, "parts", str(key)), f"unknown part (known: {', '.join(PARTS)})")
    for _, inner in lists:
        for key, part in raw_parts.items():
            inner.check(part, (*at, "parts", key))
    get_part = {key: paths.compile_path(str(part)) for key, part in raw_parts.items()}
    rank = _ranking(spec.get("prefer"), lists, fail, (*at, "prefer"))

    def read(element: Any, record: Any) -> str | None:
        for get_list, _ in lists:
            for entry in rank(get_list(element) or []):
                country, area, number = (get_part[k](entry) if k in get_part else None for k in PARTS)
                if (found := dialable(country, area, number)) is not None:
                    return found
        return None

    return read


def _ranking(
    spec: Any, lists: list[tuple[Callable[[Any], Any], Checker]], fail: Fail, at: KeyPath
) -> Callable[[list[Any]], list[Any]]:
    """The entries to try, best first: by the listed values of one key; entries of other values never."""
    if spec is None:
        return lambda entries: [e for e in entries if isinstance(e, dict)]
    if not isinstance(spec, Mapping) or len(spec) != 1:
        raise fail(at, "give one key and its values in order, e.g. {PhoneType: [DEFAULT, MOBILE]}")
    ((key, values),) = spec.items()
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise fail((*at, str(key)), "expected a non-empty list of values, best first")
    for _, inner in lists:
        inner.check(key, (*at, str(key)))
    order = {value: i for i, value in enumerate(values)}
    get = paths.compile_path(str(key))

    def rank(entries: list[Any]) -> list[Any]:
        known = [e for e in entries if isinstance(e, dict) and get(e) in order]
        return sorted(known, key=lambda e: order[get(e)])

    return rank
