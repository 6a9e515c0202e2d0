"""bot/hub.HubReader's cache rules, in process: fresh reads skip the Hub; an unreachable Hub falls back to any
cached read; a repo the Hub no longer has is never answered from an old read; odd repos are refused in words."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from huggingface_hub import errors

from bot.hub import MAX_SHARDS, HubError, HubReader, _hub_errors
from bot.render import Views
from engine.errors import HeadroomError
from tests.hub.configs import CONFIGS, tensors
from tests.hub.standin import HubStandIn, Repo

REPO = "acme-ml/llama-3.1-8b-cache-test"
LLAMA = CONFIGS["meta-llama/Llama-3.1-8B-Instruct"]
ODD = ("acme-ml/broken-config-8b", "acme-ml/huge-config-8b", "acme-ml/many-shards-8b")


@pytest.fixture()
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # noqa: ANN201
    server = HubStandIn([Repo(REPO, LLAMA, tensors(LLAMA)), *(Repo(r, LLAMA, tensors(LLAMA)) for r in ODD)]).start()
    server.repos[ODD[0]].files["config.json"] = b'{"model_type": "llama", '  # cut short
    server.repos[ODD[1]].files["config.json"] = json.dumps({**LLAMA, "notes": "x" * (1 << 20)}).encode()
    index = {"weight_map": {f"layer.{n}.weight": f"model-{n:05d}.safetensors" for n in range(MAX_SHARDS + 1)}}
    server.repos[ODD[2]].files["model.safetensors.index.json"] = json.dumps(index).encode()
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


@pytest.mark.parametrize(
    ("repo", "code", "words"),
    [
        (ODD[0], "hub_no_config", "has no usable config.json"),
        (ODD[1], "hub_file_too_large", "config.json is larger than 1 MiB"),
        (ODD[2], "hub_too_many_shards", f"into {MAX_SHARDS + 1:,} safetensors files, more than the {MAX_SHARDS:,}"),
    ],
)
def test_an_odd_repo_is_refused_in_words_before_its_headers_are_read(
    hub: HubStandIn, tmp_path: Path, repo: str, code: str, words: str
) -> None:
    with pytest.raises(HubError) as caught:
        HubReader(tmp_path / "cache", timeout_s=2).read(repo)
    assert caught.value.code == code and words in Views().error(caught.value)
    assert not [path for path in hub.hits if path.endswith(".safetensors")]  # no shard header was read


def test_a_cache_folder_that_cannot_be_written_does_not_fail_the_read(hub: HubStandIn, tmp_path: Path) -> None:
    reader = HubReader(tmp_path / "cache", timeout_s=2)
    reader._path(REPO).mkdir(parents=True)  # the cached read cannot replace a folder: os.replace fails (OSError)
    assert reader.read(REPO).weights.params == 8_030_261_248
    assert not list(reader.folder.glob("*.tmp"))  # the temp file is cleaned up
    blocked = HubReader(tmp_path / "a-file", timeout_s=2)
    (tmp_path / "a-file").write_text("not a folder")  # mkdir fails
    assert blocked.read(REPO).revision == hub.repos[REPO].sha


def test_a_hub_that_times_out_on_a_file_is_unreachable_so_an_old_read_answers() -> None:
    with pytest.raises(HubError) as caught, _hub_errors("a/b"):
        raise errors.LocalEntryNotFoundError("the HEAD request timed out and the file is not cached")
    assert caught.value.code == "hub_unreachable"
