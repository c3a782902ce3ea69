"""The reference stays complete: every public function and class of the core's API modules has a docstring.

The modules are the ledger protocol (connector/ledger.py), the outbox, the sync engine, the store and the mapping
loader (issue 17, item 7). Public means: a module-level function or class whose name does not start with `_`,
and, inside a public class, its methods, properties and nested classes likewise; functions nested in
functions are implementation. ruff's pydocstyle rules (Google convention) check the same files for form.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTED = (
    "connector/ledger.py",
    "connector/outbox.py",
    "connector/sync.py",
    "connector/store/*.py",
    "connector/mapping/loader.py",
    "connector/mapping/compile.py",
)
# Being written by someone else as this check landed: remove from here once documented.
PENDING = frozenset({"connector/store/copy.py"})


def modules() -> list[Path]:
    """The files DOCUMENTED names, sorted, without PENDING ones."""
    found: set[Path] = set()
    for pattern in DOCUMENTED:
        matched = sorted(ROOT.glob(pattern))
        assert matched, f"{pattern}: no such file (moved? update DOCUMENTED here and in pyproject.toml)"
        found.update(matched)
    return sorted(p for p in found if p.relative_to(ROOT).as_posix() not in PENDING)


def undocumented(source: str, name: str) -> list[str]:
    """`name:line: what` for the module and each public function or class in `source` without a docstring."""
    tree = ast.parse(source)
    missing = [] if ast.get_docstring(tree) else [f"{name}:1: module"]

    def visit(body: list[ast.stmt], owner: str) -> None:
        for node in body:
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                continue
            if node.name.startswith("_"):
                continue
            qualified = f"{owner}{node.name}"
            if not ast.get_docstring(node):
                kind = "class" if isinstance(node, ast.ClassDef) else "function"
                missing.append(f"{name}:{node.lineno}: {kind} {qualified}")
            if isinstance(node, ast.ClassDef):
                visit(node.body, f"{qualified}.")

    visit(tree.body, "")
    return missing


def test_every_public_function_and_class_of_the_reference_modules_has_a_docstring() -> None:
    missing = [
        line
        for path in modules()
        for line in undocumented(path.read_text(encoding="utf-8"), path.relative_to(ROOT).as_posix())
    ]
    assert not missing, "no docstring:\n" + "\n".join(missing)


def test_the_check_finds_public_names_without_a_docstring_and_only_those() -> None:
    source = '''"""A module."""

def documented() -> None:
    """Yes."""

    def nested() -> None:
        pass

def bare() -> None:
    pass

def _private() -> None:
    pass

class Thing:
    def method(self) -> None:
        pass

    def __init__(self) -> None:
        pass

    @property
    def size(self) -> int:
        """Documented."""
        return 1

    class Inner:
        """Documented."""

class _Hidden:
    def method(self) -> None:
        pass
'''
    assert undocumented(source, "m.py") == [
        "m.py:9: function bare",
        "m.py:15: class Thing",
        "m.py:16: function Thing.method",
    ]
    assert undocumented("def f() -> None:\n    pass\n", "n.py") == ["n.py:1: module", "n.py:1: function f"]
