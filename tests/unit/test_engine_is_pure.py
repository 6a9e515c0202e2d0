"""engine/ is a functional core: it imports only what an allow-list names and keeps no module-level state."""

from __future__ import annotations

import ast
from pathlib import Path

ENGINE = Path(__file__).parents[2] / "engine"

#: the standard-library modules the engine may import (no os, time, datetime, socket, threading's timers...)
STDLIB = {
    "__future__", "collections", "dataclasses", "enum", "functools", "hashlib", "importlib", "itertools",
    "json", "logging", "math", "re", "shlex", "statistics", "threading", "_thread", "types", "typing", "unicodedata", "html",
}  # fmt: skip
#: and these libraries: validation at the boundaries, YAML data files, fuzzy name matching
LIBRARIES = {"pydantic", "pydantic_core", "yaml", "rapidfuzz"}
ALLOWED = STDLIB | LIBRARIES | {"engine"}

#: decorators that would keep a cache in a module (caches belong to objects: engine/memo.py)
MODULE_CACHES = {"cache", "lru_cache", "functools.cache", "functools.lru_cache"}


def _modules() -> list[tuple[Path, ast.Module]]:
    return [(path, ast.parse(path.read_text())) for path in sorted(ENGINE.rglob("*.py"))]


def test_engine_imports_only_the_allow_list() -> None:
    offenders = []
    for path, tree in _modules():
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] not in ALLOWED]
    assert not offenders


def test_the_allow_list_check_would_catch_an_adapter_import(tmp_path: Path) -> None:
    tree = ast.parse("import os\nfrom slack_sdk import WebClient\nfrom engine.plan import Plan\n")
    found = [n.names[0].name if isinstance(n, ast.Import) else n.module for n in tree.body]
    assert [m for m in found if m and m.split(".")[0] not in ALLOWED] == ["os", "slack_sdk"]


def test_no_module_level_caches_or_globals() -> None:
    offenders = []
    for path, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Global):
                offenders.append(f"{path.name}: global {', '.join(node.names)}")
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for decorator in node.decorator_list:
                    target = decorator.func if isinstance(decorator, ast.Call) else decorator
                    if ast.unparse(target) in MODULE_CACHES:
                        offenders.append(f"{path.name}: @{ast.unparse(target)} on {node.name}")
        for statement in tree.body:  # module-level mutable containers filled at run time
            if isinstance(statement, ast.AnnAssign | ast.Assign):
                value = statement.value
                if isinstance(value, ast.Dict | ast.List | ast.Set) and not (value.keys if isinstance(value, ast.Dict) else value.elts):
                    offenders.append(f"{path.name}:{statement.lineno} empty module-level container")
    assert not offenders


def test_modules_stay_small() -> None:
    """No module over ~350 lines: a module that grows past it holds two concerns."""
    root = ENGINE.parent
    sizes = {
        str(path.relative_to(root)): len(path.read_text().splitlines())
        for folder in ("engine", "bot")
        for path in (root / folder).rglob("*.py")
    }
    assert {name: lines for name, lines in sizes.items() if lines > 360} == {}
