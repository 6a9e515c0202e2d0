"""Latency of planning in-process: a mixed set of requests, timed one by one.

    python -m benchmarks.latency [--rounds 20]

Prints p50 / p90 / p99 / max per plan() call. The first pass over the set is
reported separately ("cold": each model's byte counts computed for the first
time); the figures that follow are the steady state of a running bot.
"""

from __future__ import annotations

import argparse
import statistics
import time

from bot.catalog_files import load_catalog
from engine.catalog.resolve import model_index
from engine.ranking import plan
from engine.request import Request

MODELS = [
    "llama-3.3-70b", "llama-3.1-8b", "llama-3.1-405b", "qwen2.5-72b", "qwen3-32b", "qwen3-30b-a3b",
    "qwen3-235b-a22b", "deepseek-v3", "deepseek-r1-distill-llama-70b", "mixtral-8x7b", "gemma-3-27b",
    "gemma-2-9b", "gpt-oss-20b", "gpt-oss-120b", "phi-4", "mistral-small-3.1", "kimi-k2", "granite-3.3-8b",
]  # fmt: skip


def requests() -> list[Request]:
    """60 requests mixing models, precisions, contexts, loads and pins."""
    shapes = [
        {"weights": "fp8", "context_tokens": 8192},
        {"context_tokens": 32768, "concurrency": 16},
        {"weights": "int4", "context_tokens": 4096, "concurrency": "max"},
        {"kv_dtype": "fp8", "context_tokens": 131072},
        {"weights": "bf16", "concurrency": 64, "sort": "speed"},
    ]
    out = [Request(model=m, **shapes[i % len(shapes)]) for i, m in enumerate(MODELS * 3)]
    out += [
        Request(model="llama-3.1-8b", instance="g6e.xlarge"),
        Request(model="llama-3.3-70b", weights="fp8", gpu="h100", gpus=2, tp=2),
        Request(model="qwen2.5-7b", families=("g6", "g6e"), concurrency=32),
        Request(model="llama-3.3-70b", weights="fp8", max_usd_per_hour=12, min_tokens_per_s=20),
        Request(model="deepseek-r1", weights="fp8", vllm_version="0.19"),
        Request(model="gemma-2-27b", context_tokens=8192, gpu_memory_utilization=0.95),
    ]
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    started = time.perf_counter()
    catalog = load_catalog()
    model_index(catalog)
    load_ms = (time.perf_counter() - started) * 1000
    batch = requests()
    cold = []
    for request in batch:
        t = time.perf_counter()
        plan(request, catalog)
        cold.append((time.perf_counter() - t) * 1000)
    warm = []
    for _ in range(args.rounds):
        for request in batch:
            t = time.perf_counter()
            plan(request, catalog)
            warm.append((time.perf_counter() - t) * 1000)
    print(f"catalog load and name index: {load_ms:.0f} ms (once per process)")
    print(f"requests: {len(batch)} distinct, {args.rounds} rounds, {len(warm)} timed plans")
    for label, values in (("cold (first pass)", cold), ("steady state", warm)):
        print(
            f"{label:18} p50 {statistics.median(values):6.2f} ms   p90 {percentile(values, 0.9):6.2f} ms   "
            f"p99 {percentile(values, 0.99):6.2f} ms   max {max(values):6.2f} ms"
        )


if __name__ == "__main__":
    main()
