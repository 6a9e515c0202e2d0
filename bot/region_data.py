"""regions.yaml in the one layout the loader validates: written by scripts/build_regions.py (the shipped
snapshot) and by `headroom catalog refresh` (a user's copy), so both are checked by the same schema."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REFRESHED_NAME = "regions.yaml"


def refreshed_path(cache_dir: Path) -> Path:
    """Where `headroom catalog refresh` keeps its regions.yaml (the loader prefers it when valid)."""
    return cache_dir / "data" / REFRESHED_NAME


def regions_yaml(
    as_of: Mapping[str, str],
    sources: Mapping[str, str],
    regions: list[dict[str, Any]],
    *,
    refreshed: bool,
    header: str,
) -> str:
    """The file's text; raises CatalogError when the data would not validate (nothing half-valid is written)."""
    import yaml

    from engine.catalog.loader import parse_regions

    body = {
        "as_of": dict(as_of),
        "sources": dict(sources),
        "refreshed": refreshed,
        "regions": [
            {
                "code": r["code"],
                "name": r["name"],
                "places": list(r.get("places", [])),
                "offered": {t: r["offered"][t] for t in sorted(r["offered"])},
                "spot": {t: r.get("spot", {})[t] for t in sorted(r.get("spot", {}))},
            }
            for r in sorted(regions, key=lambda r: r["code"])
        ],
    }
    comment = "".join(f"# {line}\n".replace("# \n", "#\n") for line in header.splitlines())
    text = comment + yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=120)
    parse_regions(text)  # the loader's own check
    return text


def write_atomically(path: Path, text: str) -> None:
    """Temp file (a unique name in the same folder: two writers never share one) + rename: a reader never sees
    half a file."""
    import contextlib
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f"{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
