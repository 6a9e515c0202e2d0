"""What many tests share: one validated catalog per session, and the templates' words for a note."""

from __future__ import annotations

from bot.render import Views
from engine.catalog.loader import load_catalog
from engine.notes import Note

CATALOG = load_catalog()
VIEWS = Views()


def words(note: Note | str) -> str:
    """A note as a user reads it (templates/notes.j2)."""
    return note if isinstance(note, str) else VIEWS.say(note)
