"""Dependencies point one way: adapters import the core, the core (`connector/`) never imports an adapter.

Every module of `connector/` is parsed (AST): an `import adapters...`, a `from adapters... import`, a
relative import climbing out of `connector`, or a string naming an adapters module handed to
`importlib.import_module`/`__import__` (a literal, an f-string, or a concatenation starting with
"adapters") fails the test, naming the file and line. A ledger reaches the core only through the
`ccm.adapters` entry points (connector/ledger.py).
"""

from __future__ import annotations

import ast
from pathlib import Path

import connector

CORE = Path(connector.__file__).resolve().parent
DYNAMIC = {"import_module", "__import__"}


def _names_adapters(node: ast.expr) -> bool:
    """An argument that spells an adapters module: "adapters.x", f"adapters.{name}.flow", "adapters." + name."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value == "adapters" or node.value.startswith("adapters.")
    if isinstance(node, ast.JoinedStr) and node.values:
        return _names_adapters(node.values[0])
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _names_adapters(node.left)
    return False


def adapter_imports(path: Path, core: Path = CORE) -> list[str]:
    """Each import of an adapter in the module at `path` (inside the package folder `core`), as "file:line: what"."""
    tree = ast.parse(path.read_text(), filename=str(path))
    where = path.relative_to(core.parent)
    depth = len(path.relative_to(core).parts)  # a relative import with more dots than this leaves the package
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [
                f"{where}:{node.lineno}: import {a.name}"
                for a in node.names
                if a.name.split(".")[0] == "adapters"
            ]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level == 0 and module.split(".")[0] == "adapters":
                found.append(f"{where}:{node.lineno}: from {module} import ...")
            elif node.level > depth:
                found.append(
                    f"{where}:{node.lineno}: from {'.' * node.level}{module} import ... (leaves connector)"
                )
        elif isinstance(node, ast.Call):
            func = node.func
            name = (
                func.attr
                if isinstance(func, ast.Attribute)
                else func.id
                if isinstance(func, ast.Name)
                else ""
            )
            if name in DYNAMIC and node.args and _names_adapters(node.args[0]):
                found.append(f"{where}:{node.lineno}: {name}({ast.unparse(node.args[0])})")
    return found


def test_no_module_of_the_core_imports_an_adapter() -> None:
    modules = sorted(CORE.rglob("*.py"))
    assert len(modules) > 100  # the whole core was walked, not an empty folder
    found = [line for path in modules for line in adapter_imports(path)]
    assert found == [], "connector/ imports adapters:\n" + "\n".join(found)


def test_the_walk_sees_every_way_of_importing_an_adapter(tmp_path: Path) -> None:
    """The checker itself: each spelling the core once used (or could) is caught, and lookalikes are not."""
    core = tmp_path / "connector"
    (core / "sub").mkdir(parents=True)
    probe = core / "sub" / "probe.py"
    probe.write_text(
        "import adapters.xero\n"
        "from adapters.quickbooks import auth\n"
        "import importlib\n"
        "importlib.import_module(f'adapters.{ledger}.flow')\n"
        "__import__('adapters.xero.sandbox')\n"
        "importlib.import_module('adapters.' + name)\n"
        "from ... import adapters\n"
        "import adaptersx\n"
        "importlib.import_module('connector.flow')\n"
        "text = 'adapters.xero'\n"
        "from .. import ledger\n"
        "from . import sibling\n"
    )
    found = adapter_imports(probe, core)
    assert sorted(int(f.split(":")[1]) for f in found) == [1, 2, 4, 5, 6, 7], found
