"""Domain errors: a code and the facts behind it; the templates (templates/errors.j2) word them.

``str(error)`` is for logs and tests (the code and its parameters), never for users.
"""

from __future__ import annotations

from typing import Any


class HeadroomError(Exception):
    """Base class: a problem with what was asked."""

    def __init__(self, code: str, suggestions: list[str] | None = None, **params: Any) -> None:
        self.code = code
        self.params = params
        self.suggestions = list(suggestions or [])
        super().__init__(code)

    def __str__(self) -> str:
        details = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{self.code}({details})" if details else self.code


class CatalogError(Exception):
    """A bundled data file is invalid: a bug in headroom's data, not in the request (message for developers)."""


class InvalidRequest(HeadroomError):
    """The request cannot be planned as asked; the template says what would work."""


class UnknownModel(InvalidRequest):
    pass


class UnknownHardware(InvalidRequest):
    pass


class ParseError(HeadroomError):
    """Free text that could not be read; carries what was understood and which words were not."""

    def __init__(
        self,
        code: str,
        understood: dict[str, object] | None = None,
        unknown: list[str] | None = None,
        suggestions: list[str] | None = None,
        **params: Any,
    ) -> None:
        super().__init__(code, suggestions, **params)
        self.understood = understood or {}
        self.unknown = unknown or []
