"""Files in headroom's cache folder: written whole or not at all, and a bounded number kept.

Shared by the compiled catalog (``bot.catalog_cache``) and the words of notes (``bot.note_words``):
both are derived data that a reader must never see half-written, and both may be lost at any time.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

STALE_TEMP_S = 3600
"""A temp file this old was left by a process that died mid-write."""


def debug(logger: str, message: str, *args: object) -> None:
    """Log at debug level; logging is imported only when there is something to say (not on a cache hit)."""
    import logging

    logging.getLogger(logger).debug(message, *args)


def write_json(path: Path, data: Any, logger: str) -> bool:
    """Write atomically (temp file + os.replace) so a reader never sees half a file; False when it failed."""
    import tempfile  # only on a cache miss

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(prefix=f"{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(data, out, separators=(",", ":"))
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
    except OSError as exc:  # read-only home, full disk, no permission: run without a cache
        debug(logger, "cache file %s not written: %s", path, exc)
        return False
    return True


def prune(keep: Path, pattern: str, keep_files: int) -> None:
    """Remove all but the newest ``keep_files`` files matching ``pattern`` beside ``keep``, and dead writers' temps."""
    import time

    def mtime(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except OSError:
            return 0.0

    with contextlib.suppress(OSError):
        others = sorted((p for p in keep.parent.glob(pattern) if p != keep), key=mtime, reverse=True)
        temps = [p for p in keep.parent.glob(f"{pattern}.*.tmp") if mtime(p) < time.time() - STALE_TEMP_S]
        for path in [*others[keep_files - 1 :], *temps]:
            with contextlib.suppress(OSError):
                path.unlink()
