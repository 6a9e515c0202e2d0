"""engine/ imports nothing of Slack, Redis, Jinja, HTTP or the environment."""

from __future__ import annotations

import ast
from pathlib import Path

FORBIDDEN = {
    "slack_bolt",
    "slack_sdk",
    "redis",
    "jinja2",
    "httpx",
    "requests",
    "aiohttp",
    "bot",
    "os",
    "time",
    "datetime",
}


def test_engine_modules_import_no_adapters() -> None:
    root = Path(__file__).parents[2] / "engine"
    offenders = []
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert not offenders
