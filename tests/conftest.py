"""Shared fixtures. Tests never see a developer's real Slack or Redis settings."""

from __future__ import annotations

import pytest

from engine.catalog.loader import Catalog, load_catalog

_ISOLATED_ENV = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "REDIS_URL", "SLACK_API_URL", "PORT")


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ISOLATED_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()
