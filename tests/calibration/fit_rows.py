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
from engine.catalog.resolve import resolve_model
from engine.errors import HeadroomError
from engine.placement import find_gpu
from engine.served import GIB, serve
from engine.vllm_cudagraphs import capture_set, decode_query_len
from engine.vllm_memory import activation_terms, memory_budget
from engine.vllm_overheads import EngineArgs, Topology, non_torch_gib
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
    """(non-torch GiB, whether it is by subtraction).

    0.26+ logs may print only 'X GiB for consumed memory (weights + non-torch)'. Per vLLM 0.27.1's
    code (Worker.determine_available_memory, utils/mem_utils.py memory_profiling) that figure is
    total_consumed: weights, non-torch memory and torch memory the profile left allocated, such as
    the fused-MoE workspace; the CUDA-graph estimate is inside the printed 'peak activation', not
    here. This check, written before that was read, subtracts the printed graph pool as a stand-in
    for the kept torch memory it cannot size for models outside the catalog (on the RTX PRO 6000
    TP4 row the kept workspace is 1.00 GiB against the 0.32 subtracted), so the figure is an upper
    bound on non-torch.
    """
    if row["non_torch_gib"]:
        return float(row["non_torch_gib"]), False
    consumed = re.search(r"([\d.]+) GiB for consumed memory", row["notes"] + row["source_note"])
    if consumed and row["weights_gib"]:
        graphs = float(row["cudagraph_gib"] or 0)
        return float(consumed[1]) - float(row["weights_gib"]) - graphs, True
    return None, False


def _checked(row: dict[str, str]) -> bool:
    """Multi-GPU, a non-torch figure and a KV pool printed."""
    multi = int(row["tp"] or 1) * int(row["pp"] or 1) > 1
    return multi and bool(row["kv_cache_gib"]) and _printed_non_torch(row)[0] is not None


def _start_up(row: dict[str, str]) -> str:
    """Rows of one start-up share an id up to the rank suffix (-node0 / -node1, -tp0 / -tp1)."""
    return re.sub(r"-(node|tp)\d+$", "", row["id"])


def _link(catalog: Catalog, row: dict[str, str]) -> str:
    """The row's interconnect; 'unknown' is NVLink only for a catalog GPU that has it (H200), else PCIe."""
    if row["interconnect"] in ("pcie", "nvlink"):
        return row["interconnect"]
    try:
        return "nvlink" if find_gpu(catalog, row["gpu"].split("(")[0].strip()).nvlink_gbps else "pcie"
    except HeadroomError:
        return "pcie"


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
    link = _link(catalog, row)
    measured, by_subtraction = _printed_non_torch(row)
    assert measured is not None, row["id"]
    topology = Topology(link, tp_spans_nodes=False)  # the multi-node row runs TP inside a node, PP across
    predicted = non_torch_gib(catalog, tp, pp, topology)
    kv_pool = float(row["kv_cache_gib"])
    return NonTorchReplay(
        row["id"], row["gpu"][:28], link, tp, pp, row["vllm_version"][:8], measured, by_subtraction, predicted, kv_pool
    )


def non_torch_split(catalog: Catalog) -> dict[str, list[NonTorchReplay]]:
    """The checked rows by the csv's split; per-rank rows other than the binding rank go to reference."""
    rows = [r for r in public_rows().values() if _checked(r)]
    binding: dict[str, dict[str, str]] = {}
    for row in rows:
        key = _start_up(row)
        if key not in binding or float(row["kv_cache_gib"]) < float(binding[key]["kv_cache_gib"]):
            binding[key] = row
    out: dict[str, list[NonTorchReplay]] = {"training": [], "validation": [], "reference": []}
    names = {"train": "training", "validation": "validation", "reference": "reference"}
    for row in rows:
        part = names[row["split"]] if binding[_start_up(row)] is row else "reference"
        out[part].append(replay_non_torch(catalog, row))
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
    lines.append("* = 'consumed memory (weights + non-torch)' minus weights minus the printed graph pool (0.26+ logs)")
    return "\n".join(lines)


@dataclass(frozen=True)
class FullReplay:
    id: str
    split: str
    tp: int
    pp: int
    measured_gib: float
    predicted_gib: float
    measured_tokens: int | None
    predicted_tokens: int
    #: 0.27+ summary line 'X GiB for consumed memory (weights + non-torch)': vLLM's total_consumed, i.e. weights,
    #: non-torch memory and torch memory kept after the profile (the fused-MoE workspace); None where not printed
    printed_consumed: float | None = None
    predicted_consumed: float = 0.0  # weights + non-torch + the persistent MoE workspace, as headroom has them
    #: 'CUDAGraph memory' / 'Graph capturing ... took': the pool the real capture took (not vLLM's estimate)
    printed_graphs: float | None = None
    predicted_graphs: float = 0.0  # headroom's estimate of vLLM's reservation
    graphs: int = 0  # graphs vLLM's profiler counts for the row's flags (engine/vllm_cudagraphs.py)

    @property
    def kv_error(self) -> float:
        """KV pool in GiB (every rank prints it; tokens depend on hybrid / DCP layouts)."""
        return self.predicted_gib / self.measured_gib - 1

    @property
    def kv_error_given_consumed(self) -> float | None:
        """The KV error of every other term: the log's consumed memory in place of headroom's."""
        if self.printed_consumed is None:
            return None
        return (self.predicted_gib + self.predicted_consumed - self.printed_consumed) / self.measured_gib - 1


def full_replays(catalog: Catalog) -> list[FullReplay]:
    """The declared public rows through the whole budget, with the flags each start-up set."""
    found = []
    rows = public_rows()
    for row_id, setup in split()["public_full_replay"].items():
        row = rows[row_id]
        served = serve(resolve_model(catalog, setup["model"]).spec, setup.get("weights"), "auto")
        tp, pp = int(row["tp"]), int(row["pp"])
        args = EngineArgs(
            max_num_seqs=int(row["max_num_seqs"]) if row["max_num_seqs"] else None,
            max_num_batched_tokens=int(row["max_num_batched_tokens"]) if row["max_num_batched_tokens"] else None,
            enforce_eager=row["enforce_eager"] == "True",
        )
        topology = Topology(_link(catalog, row) if tp * pp > 1 else "none")
        gpu, behaviour = catalog.gpu(setup["gpu"]), catalog.vllm_version(row["vllm_version"].split()[0])
        budget = memory_budget(
            served, catalog, gpu, tp, pp, behaviour,
            int(row["max_model_len"] or row["max_concurrency_tokens"] or served.arch.max_context),
            float(row["gpu_memory_utilization"]), None, topology, args,
        )  # fmt: skip
        tokens = int(row["kv_cache_tokens"]) if row["kv_cache_tokens"] else None
        binding = budget.binding
        workspace = activation_terms(served, budget.batching, tp, gpu).workspace / GIB
        consumed = re.search(r"([\d.]+) GiB for consumed memory", row["notes"])
        found.append(
            FullReplay(row_id, row["split"], tp, pp, float(row["kv_cache_gib"]), binding.kv_pool, tokens,
                       budget.kv_tokens, float(consumed[1]) if consumed else None,
                       binding.weights + binding.non_torch + workspace,
                       float(row["cudagraph_gib"]) if row["cudagraph_gib"] else None, binding.cudagraph,
                       capture_set(budget.batching, behaviour, gpu, decode_query_len(served)).profiled_graphs)  # fmt: skip
        )
    return found


def full_table(replays: list[FullReplay]) -> str:
    lines = [
        f"{'row':46} {'split':10} tp pp {'KV GiB meas/pred':>17} {'err':>6} {'KV tokens meas/pred':>23} "
        f"{'consumed meas/pred':>19} {'err*':>6}"
    ]
    for r in replays:
        tokens = f"{r.measured_tokens or 0:,}/{r.predicted_tokens:,}"
        consumed, given = "", ""
        if r.printed_consumed is not None and r.kv_error_given_consumed is not None:
            consumed = f"{r.printed_consumed:.2f}/{r.predicted_consumed:.2f}"
            given = f"{r.kv_error_given_consumed:+6.1%}"
        lines.append(
            f"{r.id[:46]:46} {r.split:10} {r.tp:2} {r.pp:2} {r.measured_gib:8.2f}/{r.predicted_gib:<8.2f} "
            f"{r.kv_error:+6.1%} {tokens:>23} {consumed:>19} {given:>6}"
        )
    lines.append("* = KV error with the log's consumed memory (weights + non-torch + kept MoE workspace) in place of ours")
    return "\n".join(lines)


def graphs_table(replays: list[FullReplay]) -> str:
    """The graph pool each log printed next to headroom's estimate of vLLM's reservation (estimates run above the pool)."""
    lines = [f"{'row':46} {'split':10} graphs {'pool printed / estimate predicted':>34}"]
    for r in replays:
        if r.printed_graphs is not None:
            lines.append(f"{r.id[:46]:46} {r.split:10} {r.graphs:6} {r.printed_graphs:16.2f} / {r.predicted_graphs:<16.2f}")
    return "\n".join(lines)
