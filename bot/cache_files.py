"""Files in headroom's cache folder: written whole or not at all, and a bounded number kept.

Shared by the compiled catalog (``bot.catalog_cache``), the words of notes (``bot.note_words``) and a
refreshed regions.yaml (``bot.region_data``): a reader must never see half a file. Paths are plain
strings on the way in (``os.path``): a start-up that only reads a cache does not load pathlib, which
brings urllib.parse and ipaddress with it (issue 14).
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

STALE_TEMP_S = 3600
"""A temp file this old was left by a process that died mid-write."""

StrPath = str | os.PathLike[str]


def debug(logger: str, message: str, *args: object) -> None:
    """Log at debug level; logging is imported only when there is something to say (not on a cache hit)."""
    import logging

    logging.getLogger(logger).debug(message, *args)


def write_atomically(path: StrPath, text: str) -> None:
    """A temp file (a unique name in the same folder: two writers never share one), then os.replace; raises OSError."""
    import tempfile  # only when writing

    folder, name = os.path.split(os.fspath(path))
    os.makedirs(folder or ".", exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=f"{name}.", suffix=".tmp", dir=folder or ".")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def write_json(path: StrPath, data: Any, logger: str) -> bool:
    """Write a cache file atomically; False when it could not be written (a cache is only ever a saving)."""
    try:
        write_atomically(path, json.dumps(data, separators=(",", ":")))
    except OSError as exc:  # read-only home, full disk, no permission: run without a cache
        debug(logger, "cache file %s not written: %s", path, exc)
        return False
    return True


def prune(keep: StrPath, pattern: str, keep_files: int) -> None:
    """Remove all but the newest ``keep_files`` files named like ``pattern`` ("words-*.json") beside ``keep``, and
    temp files that writers left behind. One directory listing; files are dated only when there are too many."""
    import time

    folder, kept = os.path.split(os.fspath(keep))
    prefix, _, suffix = pattern.partition("*")
    try:
        entries = [e for e in os.scandir(folder or ".") if e.name.startswith(prefix) and e.name != kept]
    except OSError:
        return

    def mtime(entry: os.DirEntry[str]) -> float:
        try:
            return entry.stat().st_mtime
        except OSError:
            return 0.0

    files = [e for e in entries if e.name.endswith(suffix)]
    old = sorted(files, key=mtime, reverse=True)[keep_files - 1 :] if len(files) >= keep_files else []
    old += [e for e in entries if e.name.endswith(".tmp") and mtime(e) < time.time() - STALE_TEMP_S]
    for entry in old:
        with contextlib.suppress(OSError):
            os.unlink(entry.path)
