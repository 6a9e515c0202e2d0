"""Shared fixtures. Tests never see a developer's real Slack or Redis settings."""

from __future__ import annotations

import pytest

from engine.catalog.loader import Catalog
from tests.support import CATALOG

_ISOLATED_ENV = ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "REDIS_URL", "SLACK_API_URL", "PORT")


@pytest.fixture(scope="session")
def _cache_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("headroom-cache"))


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, _cache_dir: str) -> None:
    for name in _ISOLATED_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HEADROOM_CACHE_DIR", _cache_dir)  # never the developer's ~/.cache


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return CATALOG
