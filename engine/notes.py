"""Notes: what the engine has to say, as a code and numbers -- never as a sentence.

Verdict reasons, caveats, warnings, assumptions, advice and "what changed" are all
Notes. The adapters turn them into words with the templates (``templates/notes.j2``),
so the terminal, Slack and JSON say the same thing and the wording lives in one place.
"""

from typing import Any, NamedTuple


class Note(NamedTuple):
    """A code and its numbers. A NamedTuple, not a dataclass: importing dataclasses (and inspect with it)
    costs a `headroom plan` start more than the plan does (issue 14)."""

    code: str
    data: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        """Templates read ``note.needed_gib`` as well as ``note.data.needed_gib``."""
        try:
            return self.data[name]
        except KeyError:
            raise AttributeError(name) from None


def note(code: str, **data: Any) -> Note:
    return Note(code, data)


def as_json(n: Note) -> dict[str, Any]:
    return {"code": n.code, **n.data}
