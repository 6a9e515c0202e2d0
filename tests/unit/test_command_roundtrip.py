"""Every printed `vllm serve` line starts the plan it describes: read back with --command on its instance,
it gives the same weights per GPU, the same TP / PP / replicas, and the same KV-cache tokens.

500+ requests generated from models x precisions x contexts x loads x pins (a fixed seed, so a failure
names a request that can be replayed).
"""

from __future__ import annotations

import random

from engine.catalog.loader import Catalog
from engine.service import respond

MODELS = [
    "llama-3.1-8b", "llama-3.3-70b", "llama-3.1-405b", "qwen2.5-7b", "qwen2.5-72b", "qwen3-32b", "qwen3-30b-a3b",
    "qwen3-235b-a22b", "mixtral-8x7b", "mistral-7b", "mistral-small-3.1", "gemma-2-9b", "gemma-3-27b", "phi-4",
    "deepseek-r1-distill-llama-70b", "gpt-oss-20b", "gpt-oss-120b", "deepseek-v3", "granite-3.3-8b", "qwen3-8b",
]  # fmt: skip
PRECISIONS = [None, "bf16", "fp8", "int4", "fp4", "int8"]
CONTEXTS = [2048, 8192, 32768, 131072]
LOADS = [1, 8, 32, 100, "max"]
PINS: list[dict[str, object]] = [
    {}, {}, {}, {"families": ("g6e",)}, {"families": ("p5", "p5en")}, {"families": ("g7e", "g6")},
    {"instance": "p4d.24xlarge"}, {"instance": "g6e.48xlarge"}, {"gpu": "h100", "gpus": 8}, {"kv_dtype": "fp8"},
    {"gpu_memory_utilization": 0.95}, {"sort": "speed"},
]  # fmt: skip


def _requests(count: int) -> list[dict[str, object]]:
    rng = random.Random(20261201)
    found = []
    while len(found) < count:
        fields: dict[str, object] = {"model": rng.choice(MODELS), "context_tokens": rng.choice(CONTEXTS)}
        fields["concurrency"] = rng.choice(LOADS)
        weights = rng.choice(PRECISIONS)
        if weights:
            fields["weights"] = weights
        fields.update(rng.choice(PINS))
        found.append(fields)
    return found


def _read_back(catalog: Catalog, command: str, candidate) -> object:  # noqa: ANN001
    where: dict[str, object] = {}
    if candidate.instance_type:
        where = {"instance": candidate.instance_type, "nodes": candidate.nodes if candidate.nodes > 1 else None}
    else:
        where = {"gpu": candidate.gpu_id, "gpus": candidate.gpu_count}
    turn = respond(command, None, catalog, {k: v for k, v in where.items() if v is not None})
    assert turn.kind == "answer", (command, turn.error)
    assert not turn.remarks, (command, turn.remarks)  # headroom prints only flags it models
    (again,) = [c for c in turn.plan.candidates if c.instance == candidate.instance]
    return again


def test_every_printed_command_reads_back_as_the_same_plan(catalog: Catalog) -> None:
    checked, requests, planned = 0, _requests(520), 0
    rng = random.Random(7)
    for fields in requests:
        turn = respond("", None, catalog, fields)
        if turn.kind != "answer":
            continue
        planned += 1
        feasible = [c for c in turn.plan.candidates if c.feasible]
        for c in rng.sample(feasible, min(2, len(feasible))):
            if c.vllm_command is None:
                assert any(w.code == "no_known_checkpoint" for w in turn.plan.warnings)
                continue
            again = _read_back(catalog, c.vllm_command, c)
            seen = (round(again.weights_gib_per_gpu, 6), again.tp, again.pp, again.replicas, again.kv_cache_tokens)
            assert seen == (round(c.weights_gib_per_gpu, 6), c.tp, c.pp, c.replicas, c.kv_cache_tokens), (
                fields, c.instance, c.vllm_command,
            )  # fmt: skip
            checked += 1
    print(f"{len(requests)} requests, {planned} planned, {checked} commands read back")
    assert len(requests) >= 500 and planned >= 400 and checked >= 500
