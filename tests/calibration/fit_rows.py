"""Training / validation membership of the calibration rows, and the non-torch check on public logs.

Shared by benchmarks/fit.py, benchmarks/accuracy.py and the tests. Membership is read from
memory_split.yaml, declared before fitting; nothing here chooses rows by their error.
"""

from __future__ import annotations

import csv
import re
import statistics
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from engine.catalog.loader import Catalog
from engine.vllm_overheads import Topology, non_torch_gib
from tests.calibration.replay import memory_rows

HERE = Path(__file__).parent


@cache
def split() -> dict:
    with open(HERE / "memory_split.yaml", encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def row_keys(rows: list[dict[str, str]]) -> list[str]:
    """Stable keys for vllm_memory.csv rows (the csv has no id column)."""
    keys, seen = [], {}  # type: ignore[var-annotated]
    for row in rows:
        key = (
            f"{row['model']} | {row['weights_dtype']} | kv {row['kv_dtype']} | "
            f"tp{row['tp']} pp{row['pp']} | len {row['max_model_len']}"
        )
        seen[key] = seen.get(key, 0) + 1
        keys.append(key if seen[key] == 1 else f"{key} | #{seen[key]}")
    return keys


def memory_split_rows() -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(training, validation) vLLM >= 0.17 rows of vllm_memory.csv."""
    rows = memory_rows("0.17.0")
    validation = set(split()["vllm_memory"]["validation"])
    keys = row_keys(rows)
    missing = validation - set(keys)
    assert not missing, f"memory_split.yaml names rows that are not in vllm_memory.csv: {missing}"
    return [r for r, k in zip(rows, keys, strict=True) if k not in validation], [r for r, k in zip(rows, keys, strict=True) if k in validation]


# --- non-torch memory of multi-GPU public start-ups -----------------------------------------


def public_rows() -> dict[str, dict[str, str]]:
    with open(HERE / "public_startup_logs.csv", newline="", encoding="utf-8") as handle:
        return {row["id"]: row for row in csv.DictReader(handle)}


def _printed_non_torch(row: dict[str, str]) -> tuple[float | None, bool]:
    """(non-torch GiB, whether it is by subtraction: 0.27's 'consumed memory (weights + non-torch)')."""
    if row["non_torch_gib"]:
        return float(row["non_torch_gib"]), False
    consumed = re.search(r"([\d.]+) GiB for consumed memory", row["notes"] + row["source_note"])
    if consumed and row["weights_gib"]:
        return float(consumed[1]) - float(row["weights_gib"]), True
    return None, False


@dataclass(frozen=True)
class NonTorchReplay:
    id: str
    gpu: str
    interconnect: str
    tp: int
    pp: int
    version: str
    measured: float
    by_subtraction: bool
    predicted: float
    kv_pool: float

    @property
    def kv_error(self) -> float:
        """The KV-pool error this term alone causes: vLLM subtracts it straight from the pool."""
        return (self.measured - self.predicted) / self.kv_pool


def replay_non_torch(catalog: Catalog, row: dict[str, str]) -> NonTorchReplay:
    tp, pp = int(row["tp"]), int(row["pp"])
    # "unknown" wiring: the H200 row (custom all-reduce on at TP2, an SXM part) is read as NVLink
    link = "pcie" if row["interconnect"] == "pcie" else "nvlink"
    measured, by_subtraction = _printed_non_torch(row)
    assert measured is not None, row["id"]
    topology = Topology(link, tp_spans_nodes=False)  # the multi-node row runs TP inside a node, PP across
    predicted = non_torch_gib(catalog, tp, pp, topology)
    kv_pool = float(row["kv_cache_gib"])
    return NonTorchReplay(
        row["id"], row["gpu"][:28], link, tp, pp, row["vllm_version"][:8], measured, by_subtraction, predicted, kv_pool
    )


def non_torch_split(catalog: Catalog) -> dict[str, list[NonTorchReplay]]:
    rows = public_rows()
    declared = split()["public_startup_logs"]
    out: dict[str, list[NonTorchReplay]] = {}
    for part in ("training", "validation", "reference"):
        names = list(declared[part])
        missing = [n for n in names if n not in rows]
        assert not missing, f"memory_split.yaml names public rows that are not in the csv: {missing}"
        out[part] = [replay_non_torch(catalog, rows[n]) for n in names]
    return out


def non_torch_table(replays: list[NonTorchReplay]) -> str:
    lines = [f"{'row':46} {'link':6} tp pp {'version':8} {'non-torch meas/pred':>20} {'KV pool':>8} {'KV err':>7}"]
    for r in replays:
        mark = "*" if r.by_subtraction else " "
        lines.append(
            f"{r.id[:46]:46} {r.interconnect:6} {r.tp:2} {r.pp:2} {r.version:8} "
            f"{r.measured:8.2f}{mark}/{r.predicted:<8.2f} {r.kv_pool:8.2f} {r.kv_error:+7.1%}"
        )
    if replays:
        errors = [abs(r.kv_error) for r in replays]
        lines.append(f"rows {len(replays)}: KV |error| median {statistics.median(errors):.2%}, worst {max(errors):.2%}")
    lines.append("* = 0.27's 'consumed memory (weights + non-torch)' minus weights: requested - KV - activation, so it")
    lines.append("    also holds the CUDA-graph estimate (0.3-1.9 GiB), which the other rows print apart")
    return "\n".join(lines)
