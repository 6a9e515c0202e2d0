"""The catalog's data files, read from the installed package: the only file I/O the catalog needs.

Kept out of engine/ (which only parses and validates what it is given) and off importlib.resources,
whose import costs a start-up more than reading the files does (issue 14).
"""

from __future__ import annotations

import os

import engine.catalog
from engine.catalog.loader import Catalog, build_catalog

DATA_DIR = os.path.join(os.path.dirname(engine.catalog.__file__), "data")


def read_sources(root: str | os.PathLike[str] = DATA_DIR) -> dict[str, str]:
    """Every ``.yaml`` under ``data/``: relative name (``models/x.yaml``) -> text, sorted by name."""
    found: dict[str, str] = {}
    pending = [("", os.fspath(root))]
    while pending:
        prefix, folder = pending.pop()
        for entry in os.scandir(folder):
            if entry.is_dir():
                pending.append((f"{prefix}{entry.name}/", entry.path))
            elif entry.name.endswith(".yaml"):
                with open(entry.path, encoding="utf-8") as handle:
                    found[prefix + entry.name] = handle.read()
    return dict(sorted(found.items()))


def load_catalog() -> Catalog:
    """Read and fully validate the bundled data files; the caller keeps the catalog it gets (no cache here)."""
    return build_catalog(read_sources())
