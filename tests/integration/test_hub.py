"""`headroom plan` for models the catalog lacks, against a Hub stand-in on localhost (HF_ENDPOINT).

Each run is a fresh process, so huggingface_hub reads HF_ENDPOINT, HF_TOKEN and HF_HUB_OFFLINE from its
environment as it does for users; the weights expected are computed here from the headers the stand-in serves.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hub.configs import CONFIGS, tensors
from tests.hub.standin import HubStandIn, Repo

LLAMA = CONFIGS["meta-llama/Llama-3.1-8B-Instruct"]
QWEN = CONFIGS["Qwen/Qwen2.5-7B-Instruct"]
FINE_TUNE = "acme-ml/llama-3.1-8b-sft"
GATED = "acme-ml/qwen2.5-7b-private-sft"
TOKEN = "hf_standin_secret_token"


@pytest.fixture(scope="module")
def hub() -> Iterator[HubStandIn]:
    server = HubStandIn(
        [
            Repo(FINE_TUNE, LLAMA, tensors(LLAMA)),
            Repo(GATED, QWEN, tensors(QWEN), shards=1, gated_token=TOKEN),
            Repo("acme-ml/busy-model-7b", QWEN, tensors(QWEN)),
            Repo("acme-ml/gguf-only-7b", {}, tensors(QWEN)),
            Repo("acme-ml/no-weights-7b", QWEN, {}, shards=0),
        ]
    ).start()
    server.rate_limited.add("acme-ml/busy-model-7b")
    yield server
    server.stop()


def headroom(tmp: Path, endpoint: str, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    environment |= {"HF_ENDPOINT": endpoint, "HF_HOME": str(tmp / "hf"), "HEADROOM_CACHE_DIR": str(tmp / "cache")}
    code = "import sys; from bot.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run(
        [sys.executable, "-c", code, *argv], capture_output=True, text=True, env=environment | env, timeout=120
    )


def expected_weight_gib(entries: dict, linear_bytes: float, other_bytes: int) -> float:
    """What the headers imply in a precision: decoder linear layers at `linear_bytes`, the rest 16-bit."""
    total = 0.0
    for name, (_, shape) in entries.items():
        count = 1
        for n in shape:
            count *= n
        linear = ".layers." in name and len(shape) == 2
        total += count * (linear_bytes if linear else other_bytes)
    return total / 2**30


def test_a_fine_tune_is_planned_from_its_headers_then_from_the_cache(hub: HubStandIn, tmp_path: Path) -> None:
    first = headroom(tmp_path, hub.url, "plan", "--json", f"{FINE_TUNE} fp8 8k")
    assert first.returncode == 0, first.stderr
    plan = json.loads(first.stdout)
    weights = plan["budget"]["weights_gib"]
    assert weights == pytest.approx(expected_weight_gib(tensors(LLAMA), 1, 2), rel=0.01)
    head_dim = LLAMA["hidden_size"] // LLAMA["num_attention_heads"]
    kv = 2 * LLAMA["num_hidden_layers"] * LLAMA["num_key_value_heads"] * head_dim * 2  # K and V, BF16
    assert plan["budget"]["kv_bytes_per_token"] == kv
    top = plan["candidates"][0]
    assert top["vllm_command"].startswith(f"vllm serve {FINE_TUNE} --quantization fp8")
    said = [a["text"] for a in plan["assumptions"] if a["code"] == "hub_model"]
    assert said and "config.json + safetensors headers of " + FINE_TUNE in said[0]
    assert hub.hits[f"/api/models/{FINE_TUNE}"] >= 1

    hub.stop()  # the Hub goes away: the second question needs no network
    try:
        again = headroom(tmp_path, "http://127.0.0.1:9", "plan", "--json", f"{FINE_TUNE} fp8 8k")
        offline = headroom(tmp_path, hub.url, "plan", "--json", f"{FINE_TUNE} fp8 8k", HF_HUB_OFFLINE="1")
    finally:
        hub.start(int(hub.url.rsplit(":", 1)[1]))
    assert again.returncode == 0 and offline.returncode == 0, again.stderr + offline.stderr
    assert json.loads(again.stdout)["budget"] == plan["budget"] == json.loads(offline.stdout)["budget"]


def test_a_gated_repo_needs_a_token_and_the_token_is_never_echoed(hub: HubStandIn, tmp_path: Path) -> None:
    refused = headroom(tmp_path, hub.url, "plan", f"{GATED} 8k")
    assert refused.returncode == 2
    assert "gated or private" in refused.stderr and "HF_TOKEN" in refused.stderr
    allowed = headroom(tmp_path, hub.url, "plan", f"{GATED} 8k", HF_TOKEN=TOKEN)
    assert allowed.returncode == 0, allowed.stderr
    assert f"vllm serve {GATED} " in allowed.stdout
    assert TOKEN not in allowed.stdout + allowed.stderr + refused.stderr
    errors = tmp_path / "cache" / "errors.log"
    assert not errors.exists() or TOKEN not in errors.read_text()


@pytest.mark.parametrize(
    ("repo", "env", "code", "words"),
    [
        ("acme-ml/no-such-model-13b", {}, "hub_not_found", "has no model 'acme-ml/no-such-model-13b'"),
        ("acme-ml/busy-model-7b", {}, "hub_rate_limited", "rate-limiting"),
        (FINE_TUNE, {"HF_HUB_OFFLINE": "1"}, "hub_offline", "HF_HUB_OFFLINE"),
        ("acme-ml/gguf-only-7b", {}, "hub_no_config", "has no usable config.json"),
        ("acme-ml/no-weights-7b", {}, "hub_no_safetensors", "no safetensors weights"),
    ],
)
def test_hub_failures_are_clear_and_never_a_guessed_shape(
    hub: HubStandIn, tmp_path: Path, repo: str, env: dict, code: str, words: str
) -> None:
    found = headroom(tmp_path, hub.url, "plan", "--json", f"{repo} fp8 8k", **env)
    assert found.returncode == 2
    error = json.loads(found.stdout)["error"]
    assert error["code"] == code and words in error["message"]
    if code != "hub_not_found":  # an unreadable fine-tune is never offered a catalog model in its place
        assert error["suggestions"] == []


def test_a_hub_that_does_not_answer_times_out_in_seconds(tmp_path: Path) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        accepted: list[socket.socket] = []
        threading.Thread(target=lambda: accepted.append(silent.accept()[0]), daemon=True).start()
        started = time.monotonic()
        found = headroom(
            tmp_path, f"http://127.0.0.1:{silent.getsockname()[1]}", "plan", "--json", f"{FINE_TUNE} 8k",
            HEADROOM_HUB_TIMEOUT_S="1",
        )  # fmt: skip
        elapsed = time.monotonic() - started
    assert found.returncode == 2
    assert json.loads(found.stdout)["error"]["code"] == "hub_unreachable"
    assert "timed out" in json.loads(found.stdout)["error"]["message"]
    assert elapsed < 15
