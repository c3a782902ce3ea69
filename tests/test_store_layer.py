"""The store sits below the mapping: `connector/store/` imports the model, never `connector.mapping` (what a
sync logs of a record it could not map, `RecordError`, is the model's)."""

from __future__ import annotations

import ast
from pathlib import Path

import connector.store

STORE = Path(connector.store.__file__).resolve().parent


def mapping_imports(path: Path) -> list[str]:
    """Each import of connector.mapping (or a module under it) in the module at `path`, as "file:line"."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        if any(n == "connector.mapping" or n.startswith("connector.mapping.") for n in names):
            found.append(f"{path.name}:{node.lineno}")
    return found


def test_the_store_imports_nothing_from_the_mapping():
    modules = sorted(STORE.rglob("*.py"))
    assert len(modules) > 5  # the walk found the store's modules
    assert [hit for path in modules for hit in mapping_imports(path)] == []


def test_the_check_finds_an_import_of_the_mapping(tmp_path: Path):
    module = tmp_path / "leaky.py"
    module.write_text(
        "import os\nfrom connector.mapping import CompiledMapping\nfrom connector import mapping\n"
    )
    assert mapping_imports(module) == ["leaky.py:2", "leaky.py:3"]
