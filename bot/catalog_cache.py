"""Start fast: keep the validated catalog as JSON on disk, keyed by what it was built from.

Full validation of the bundled YAML (parse + pydantic) costs tens of milliseconds and the
pydantic schema build on every process start; a rebuild from the compiled JSON costs a few.
The file name carries the digest of the data files and a fingerprint of the code that
validates and compiles them, so an edited data file or schema never meets a stale cache:
it is validated in full (raising the same CatalogError as ``load_catalog``) and written anew.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
from typing import TYPE_CHECKING

from bot.cache_files import debug, prune, write_json
from bot.catalog_files import read_sources
from engine import constraints
from engine.catalog import compiled, loader, resolve, schema
from engine.catalog.compiled import COMPILED_FORMAT, catalog_from_compiled, compile_catalog
from engine.catalog.loader import Catalog, build_catalog, sources_digest
from engine.errors import CatalogError

if TYPE_CHECKING:
    from pathlib import Path

KEEP_FILES = 4
"""Compiled catalogs kept per cache folder: several checkouts or versions sharing it don't evict each other."""

_LOGGER = "headroom.catalog_cache"


def _debug(message: str, *args: object) -> None:
    debug(_LOGGER, message, *args)


def cache_folder() -> str:
    """$HEADROOM_CACHE_DIR, else $XDG_CACHE_HOME/headroom, else ~/.cache/headroom; RuntimeError with no home.

    A string (``os.path``): a start-up that only reads the cache does not load pathlib (issue 14).
    """
    if explicit := os.environ.get("HEADROOM_CACHE_DIR"):
        return explicit
    if xdg := os.environ.get("XDG_CACHE_HOME"):
        return os.path.join(xdg, "headroom")
    home = os.path.expanduser("~")
    if home.startswith("~"):
        raise RuntimeError("Could not determine home directory.")  # as Path.home() says it
    return os.path.join(home, ".cache", "headroom")


def default_cache_dir() -> Path:
    """``cache_folder()`` as a Path."""
    from pathlib import Path

    return Path(cache_folder())


def _code_fingerprint() -> str:
    """What else decides the compiled form: its format, pydantic's version, and the source of the schema and loader.

    Without this a developer who tightens a validator would keep getting the catalog the old code accepted.
    pydantic's version is read from its version.py, found without importing pydantic (issue 14).
    """
    digest = hashlib.sha256(f"{COMPILED_FORMAT}".encode())
    files = [m.__file__ for m in (schema, loader, compiled, resolve, constraints)]  # resolve: the compiled name index
    with contextlib.suppress(ImportError, ValueError):
        spec = importlib.util.find_spec("pydantic")
        files.append(os.path.join(os.path.dirname(spec.origin), "version.py") if spec and spec.origin else None)
    for file in files:
        if file:
            with contextlib.suppress(OSError), open(file, "rb") as handle:
                digest.update(handle.read())
    return digest.hexdigest()[:8]


def cache_file(cache_dir: str | os.PathLike[str], digest: str) -> str:
    """Where the compiled catalog for data files with ``sources_digest`` ``digest`` lives."""
    return os.path.join(cache_dir, f"catalog-{digest[:12]}-{_code_fingerprint()}.json")


def _read(path: str, digest: str) -> Catalog | None:
    """The cached catalog, or None when there is none or it is unusable (truncated, corrupt, other format)."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:  # unreadable, or not UTF-8
        _debug("catalog cache %s unreadable: %s", path, exc)
        return None
    try:
        catalog = catalog_from_compiled(json.loads(text))
    except (ValueError, CatalogError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        _debug("catalog cache %s unusable, validating the data files again: %s", path, exc)
        return None
    if catalog.digest != digest[:12]:
        _debug("catalog cache %s holds digest %s, not %s", path, catalog.digest, digest[:12])
        return None
    return catalog


def load_catalog_cached(cache_dir: str | os.PathLike[str] | None = None) -> Catalog:
    """The catalog ``load_catalog()`` gives, from the compiled cache when the data files are unchanged.

    A miss (first run, edited data file, new code, corrupt cache) validates in full and writes the cache;
    bad data raises the same CatalogError as ``load_catalog()``.
    """
    sources = read_sources()
    try:
        folder = os.fspath(cache_dir) if cache_dir is not None else cache_folder()
    except RuntimeError as exc:  # no home directory
        _debug("no catalog cache folder: %s", exc)
        return build_catalog(sources)
    shipped, sources = sources, with_refreshed_regions(sources, folder)
    digest = sources_digest(sources)
    path = cache_file(folder, digest)
    cached = _read(path, digest)
    if cached is not None:
        return cached
    catalog = _build_preferring_refreshed(sources, shipped, folder)
    if write_json(path, compile_catalog(catalog), _LOGGER):
        prune(path, "catalog-*.json", KEEP_FILES)
    # an ignored refreshed file never matches this key: reported each start
    return catalog


def with_refreshed_regions(sources: dict[str, str], folder: str | os.PathLike[str]) -> dict[str, str]:
    """The data files with `headroom catalog refresh`'s regions.yaml in place of the shipped one (issue 12)."""
    from bot.region_data import refreshed_file

    try:
        with open(refreshed_file(folder), encoding="utf-8") as handle:
            return {**sources, "regions.yaml": handle.read()}
    except OSError:
        return sources
    except ValueError as exc:  # not UTF-8: left aside like a file that does not validate
        _ignored(folder, exc)
        return sources


def _ignored(folder: str | os.PathLike[str], exc: Exception) -> None:
    """Say on stderr that the refreshed regions.yaml is left aside, and why (the shipped snapshot is used)."""
    import sys

    from bot.region_data import refreshed_path
    from bot.render import Views

    print(Views().macros("refresh.j2").ignored(refreshed_path(folder), str(exc).splitlines()[0]), file=sys.stderr)


def _build_preferring_refreshed(
    sources: dict[str, str], shipped: dict[str, str], folder: str | os.PathLike[str]
) -> Catalog:
    """Full validation; a refreshed regions.yaml that fails it is reported on stderr and the shipped one used."""
    try:
        return build_catalog(sources)
    except CatalogError as exc:
        if sources is shipped:
            raise
        _ignored(folder, exc)
        return build_catalog(shipped)
