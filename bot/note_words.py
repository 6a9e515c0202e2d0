"""The words of notes already said, kept on disk: a repeated `headroom plan --json` loads no Jinja (issue 14).

Every number of an answer is planned again on every run; only the sentences the templates make
of its notes are kept. They are stored under a digest of every note's exact data (types included:
1 and 1.0 differ, so do a list and a tuple) and a fingerprint of everything that turns a note into
words (the templates, ``bot/render.py``'s filters, ``engine/notes.py``, Jinja's own version). A new
number, an edited template or another Jinja never meets old words; a note holding anything but
plain data is never kept. A missing, corrupt or unwritable cache only costs the rendering.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from bot.cache_files import StrPath, debug, prune, write_json
from engine.notes import Note, as_json

if TYPE_CHECKING:
    from engine.service import Turn

KEEP_FILES = 512
"""Answers whose words are kept per cache folder (each file a few kB); the oldest go first."""

FORMAT = 1
"""Version of the files' layout and of the note digest; bump it when either changes."""

_LOGGER = "headroom.note_words"
_SCALARS = (str, int, float, bool, type(None))


class Unkeyable(TypeError):
    """A note holds a value whose words could depend on more than its data: render it, keep nothing."""


def keyed(value: Any) -> Any:
    """``value`` as JSON that tells apart everything a template could: exact types, order, nesting."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is list or kind is tuple:
        return [kind.__name__, *(keyed(v) for v in value)]
    if kind is dict:
        if not all(type(k) is str for k in value):
            raise Unkeyable("a mapping with keys that are not strings")
        return ["dict", *([k, keyed(v)] for k, v in value.items())]
    if kind is Note:
        return ["note", value.code, keyed(value.data)]
    raise Unkeyable(f"a {kind.__qualname__} in a note")


def _source(module: str, suffix: str | None = None) -> list[str]:
    """The file of an installed module, or its package's files ending in ``suffix``; found without importing it
    (Jinja must stay unloaded) and without pathlib (see bot/cache_files.py)."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(module)
    if suffix is None:
        return [spec.origin]
    folder = os.path.dirname(spec.origin)
    return sorted(entry.path for entry in os.scandir(folder) if entry.name.endswith(suffix))


def fingerprint(files: Sequence[StrPath] | None = None) -> str:
    """Digest of what turns notes into words; raises OSError when a file is missing or unreadable."""
    if files is None:
        files = [*_source("templates", ".j2"), *_source("bot.render"), *_source("engine.notes"), *_source("jinja2")]
    digest = hashlib.sha256(f"note-words {FORMAT}".encode())
    for file in files:
        digest.update(f"\0{os.path.basename(file)}\0".encode())
        with open(file, "rb") as handle:
            digest.update(handle.read())
    return digest.hexdigest()


class Slot:
    """Where a note's words go in an answer's JSON; filled before it is written (``NoteWords.fill``)."""

    __slots__ = ("note", "text")

    def __init__(self, note: Note) -> None:
        self.note = note
        self.text: str | None = None


def slot_text(value: object) -> str:
    """``json.dumps(..., default=slot_text)``: a filled slot is its words."""
    if isinstance(value, Slot) and value.text is not None:
        return value.text
    raise TypeError(f"{type(value).__qualname__} is not JSON serializable")


class NoteWords:
    """The notes of one answer, in the order its JSON holds them, and where their words are kept."""

    def __init__(self, folder: StrPath | None, files: Sequence[StrPath] | None = None) -> None:
        self.folder = None if folder is None else os.fspath(folder)
        self.files = files  # what the fingerprint reads (tests pass copies); None: the installed ones
        self.slots: list[Slot] = []

    def slot(self, note: Note) -> Slot:
        found = Slot(note)
        self.slots.append(found)
        return found

    def _path(self) -> str | None:
        """The file for exactly these notes and this renderer; None when they cannot be kept."""
        if self.folder is None or not self.slots:
            return None
        try:
            notes = json.dumps([keyed(s.note) for s in self.slots], separators=(",", ":"))
            key = hashlib.sha256(f"{fingerprint(self.files)}\n{notes}".encode()).hexdigest()
        except (Unkeyable, OSError, ImportError, ValueError) as exc:
            debug(_LOGGER, "note words not kept: %s", exc)
            return None
        return os.path.join(self.folder, f"words-{key[:40]}.json")

    def _read(self, path: str) -> list[str] | None:
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:  # unreadable, truncated, not JSON: render again
            debug(_LOGGER, "note words %s unusable: %s", path, exc)
            return None
        texts = data.get("texts") if type(data) is dict and data.get("format") == FORMAT else None
        if type(texts) is not list or len(texts) != len(self.slots) or not all(type(t) is str for t in texts):
            debug(_LOGGER, "note words %s do not fit these notes", path)
            return None
        return texts

    def fill(self, renderer: Callable[[], Callable[[Note], str]]) -> None:
        """Give every slot its words: kept ones when these notes were said before, else rendered and kept.

        ``renderer`` builds the templates' ``say`` only on a miss (it imports Jinja).
        """
        path = self._path()
        texts = self._read(path) if path is not None else None
        if path is not None and texts is not None:
            with contextlib.suppress(OSError):  # a read-only cache still serves
                os.utime(path)  # a hit is recent use: pruning removes the least recently used
        else:
            say = renderer()
            texts = [say(s.note) for s in self.slots]
            if path is not None and write_json(path, {"format": FORMAT, "texts": texts}, _LOGGER):
                prune(path, "words-*.json", KEEP_FILES)
        for s, text in zip(self.slots, texts, strict=True):
            s.text = text


def plan_json_text(
    turn: Turn, folder: StrPath | None, renderer: Callable[[], Callable[[Note], str]], indent: int | None
) -> str:
    """`headroom plan --json`'s text (docs/plan-json.md): the plan, what was not understood, remarks, all worded."""
    from engine.plan import plan_json

    assert turn.plan is not None
    words = NoteWords(folder)
    data = {
        **plan_json(turn.plan, words.slot),
        "not_understood": list(turn.unread),
        "remarks": [{**as_json(r), "text": words.slot(r)} for r in turn.remarks],
    }
    words.fill(renderer)
    return json.dumps(data, indent=indent, default=slot_text)

