"""regions.yaml in the one layout the loader validates: written by scripts/build_regions.py (the shipped
snapshot) and by `headroom catalog refresh` (a user's copy), so both are checked by the same schema."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

REFRESHED_NAME = "regions.yaml"


def refreshed_file(cache_dir: str | os.PathLike[str]) -> str:
    """Where `headroom catalog refresh` keeps its regions.yaml (the loader prefers it when valid)."""
    return os.path.join(cache_dir, "data", REFRESHED_NAME)


def refreshed_path(cache_dir: str | os.PathLike[str]) -> Path:
    """``refreshed_file`` as a Path (pathlib is not loaded for a start-up that only reads it)."""
    from pathlib import Path

    return Path(refreshed_file(cache_dir))


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
