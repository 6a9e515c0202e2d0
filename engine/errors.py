"""Domain errors. Each carries a message fit to show a user as it is."""

from __future__ import annotations


class HeadroomError(Exception):
    """Base class: a problem with what was asked, explained in plain words."""


class CatalogError(HeadroomError):
    """A bundled data file is invalid (a bug in headroom's data, not in the request)."""


class InvalidRequest(HeadroomError):
    """The request cannot be planned as asked; the message says what would work."""

    def __init__(self, message: str, suggestions: list[str] | None = None) -> None:
        super().__init__(message)
        self.suggestions = suggestions or []


class UnknownModel(InvalidRequest):
    pass


class UnknownHardware(InvalidRequest):
    pass
