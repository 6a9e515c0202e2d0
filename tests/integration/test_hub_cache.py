"""bot/hub.HubReader's cache rules, in process: fresh reads skip the Hub; an unreachable Hub falls back to any
cached read; a repo the Hub no longer has is never answered from an old read."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.hub import HubReader
from engine.errors import HeadroomError
from tests.hub.configs import CONFIGS, tensors
from tests.hub.standin import HubStandIn, Repo

REPO = "acme-ml/llama-3.1-8b-cache-test"
LLAMA = CONFIGS["meta-llama/Llama-3.1-8B-Instruct"]


@pytest.fixture()
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # noqa: ANN201
    server = HubStandIn([Repo(REPO, LLAMA, tensors(LLAMA))]).start()
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    yield server
    server.stop()


def test_an_old_read_answers_only_while_the_hub_is_unreachable(
    hub: HubStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = HubReader(tmp_path / "cache", timeout_s=2, ttl_s=0)  # every read is already old
    first = reader.read(REPO)
    assert first.weights.params == 8_030_261_248 and first.revision == hub.repos[REPO].sha
    assert reader.read(REPO) == first and hub.hits[f"/api/models/{REPO}"] == 2  # old: the Hub is asked again

    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    assert reader.read(REPO) == first

    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    del hub.repos[REPO.lower()]  # the repo is gone (or made private): an old read is not an answer
    with pytest.raises(HeadroomError) as caught:
        reader.read(REPO)
    assert caught.value.code == "hub_not_found"


def test_a_fresh_read_needs_no_hub(hub: HubStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reader = HubReader(tmp_path / "cache", timeout_s=2)
    first = reader.read(REPO)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    assert reader.read(REPO) == first and hub.hits[f"/api/models/{REPO}"] == 1
    assert list((tmp_path / "cache" / "hub").glob("*.json"))  # the small JSON summary, in the headroom cache folder
