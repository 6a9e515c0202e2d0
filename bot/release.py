"""A digest of what decides an answer -- the engine's code, the templates and the data files.

Computed once at start-up and put in every answer-cache key, so a release that changes the
memory model, a template or a price never serves an answer cached by the release before it.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from importlib.resources.abc import Traversable


def _files(package: str, suffixes: tuple[str, ...]) -> list[tuple[str, Traversable]]:
    found: list[tuple[str, Traversable]] = []
    pending: list[tuple[str, Traversable]] = [(package, resources.files(package))]
    while pending:
        prefix, folder = pending.pop()
        for entry in folder.iterdir():
            name = f"{prefix}/{entry.name}"
            if entry.is_dir() and entry.name != "__pycache__":
                pending.append((name, entry))
            elif entry.is_file() and entry.name.endswith(suffixes):
                found.append((name, entry))
    return sorted(found, key=lambda item: item[0])


def release_digest() -> str:
    """sha256 over engine/**/*.py and *.yaml, and templates/*.j2 (names and bytes), 16 hex digits."""
    digest = hashlib.sha256()
    for package, suffixes in (("engine", (".py", ".yaml")), ("templates", (".j2",))):
        for name, entry in _files(package, suffixes):
            digest.update(name.encode() + b"\0" + entry.read_bytes() + b"\0")
    return digest.hexdigest()[:16]
