"""What many tests share: one validated catalog per session, and the templates' words for a note."""

from __future__ import annotations

from bot.catalog_files import load_catalog
from bot.render import Views
from engine.notes import Note

CATALOG = load_catalog()
VIEWS = Views()
#: questions whose Slack answers are held to Slack's limits (tests/unit/test_blocks.py, test_charts.py)
SAMPLE_ASKS = (
    "llama 3.3 70b fp8 8k context",
    "deepseek r1 fp8 128k 64 users",
    "405b bf16 only p5",
    "70b fp8 8k 16 users under $1/h",
    "qwen3 235b a22b fp8 32k max concurrency",
    "gemma 3 27b on 2x h100 tp 2",
)


def words(note: Note | str) -> str:
    """A note as a user reads it (templates/notes.j2)."""
    return note if isinstance(note, str) else VIEWS.say(note)
