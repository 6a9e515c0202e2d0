"""Replay calibration rows through the engine: shared by tests and benchmarks/accuracy.py."""

from __future__ import annotations

import csv
import math
import re
import statistics
from dataclasses import dataclass
from pathlib import Path

from engine.catalog.loader import Catalog, VllmVersion, version_key
from engine.catalog.resolve import resolve_model
from engine.catalog.schema import GpuSpec
from engine.performance import estimate_speed, link_for
from engine.placement import find_gpu, valid_tp_degrees
from engine.served import ServedModel, serve
from engine.vllm_memory import memory_budget
from engine.vllm_overheads import Topology

HERE = Path(__file__).parent


def _rows(name: str) -> list[dict[str, str]]:
    with open(HERE / name, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _version(text: str) -> str | None:
    match = re.search(r"(\d+)\.(\d+)\.(\d+)", text)
    return f"{match[1]}.{match[2]}.{match[3]}" if match else None


def _weights(text: str) -> str | None:
    text = text.lower()
    for key, dtype in (
        ("float32", "fp32"),
        ("bfloat16", "bf16"),
        ("float16", "fp16"),
        ("bf16", "bf16"),
        ("mxfp4", "mxfp4"),
        ("w4a16", "int4"),
        ("w8a8", "int8"),
        ("fp8", "fp8"),
    ):
        if key in text:
            return dtype
    return None


def _gpu_name(row: dict[str, str]) -> str:
    name = row["gpu"]
    if name.strip() == "A100":
        return "A100 80GB"  # the log's KV pool (36.6 GiB at util 0.65) only fits the 80 GB part
    return name


@dataclass(frozen=True)
class MemoryReplay:
    model: str
    weights: str
    kv: str
    gpu: str
    tp: int
    pp: int
    util: float
    max_model_len: int
    measured_weights: float
    predicted_weights: float
    measured_kv_tokens: int | None
    predicted_kv_tokens: int
    measured_kv_gib: float | None
    predicted_kv_gib: float
    measured_concurrency: float | None
    predicted_concurrency: float
    measured_activation: float | None = None
    predicted_activation: float = 0.0

    @property
    def weights_error(self) -> float:
        return self.predicted_weights / self.measured_weights - 1

    @property
    def kv_error(self) -> float:
        """Relative error of KV capacity: tokens where logged, else the KV pool in GiB."""
        if self.measured_kv_tokens:
            return self.predicted_kv_tokens / self.measured_kv_tokens - 1
        assert self.measured_kv_gib
        return self.predicted_kv_gib / self.measured_kv_gib - 1


def memory_rows(min_version: str = "0.17.0") -> list[dict[str, str]]:
    """vLLM rows from min_version on that log weights and a KV capacity (tokens or GiB)."""
    chosen = []
    for row in _rows("vllm_memory.csv"):
        version = _version(row["engine_version"])
        if row["engine"] != "vLLM" or not version or version_key(version) < version_key(min_version):
            continue
        if not row["weights_gib"] or not (row["kv_tokens"] or row["kv_cache_gib"]):
            continue
        chosen.append(row)
    return chosen


@dataclass(frozen=True)
class RowSetup:
    """A vllm_memory.csv row as the engine sees it."""

    served: ServedModel
    gpu: GpuSpec
    tp: int
    pp: int
    util: float
    max_len: int
    behaviour: VllmVersion


def row_setup(catalog: Catalog, row: dict[str, str]) -> RowSetup:
    resolved = resolve_model(catalog, row["model"])
    weights = resolved.implied_weights or _weights(row["weights_dtype"])
    kv = "fp8" if row["kv_dtype"].startswith("fp8") else "auto"
    return RowSetup(
        serve(resolved.spec, weights, kv),
        find_gpu(catalog, _gpu_name(row)),
        int(row["tp"]),
        int(row["pp"]),
        float(row["gpu_mem_util"].split()[0]),
        int(row["max_model_len"].split()[0]),
        catalog.vllm_version(_version(row["engine_version"]) or catalog.vllm.default_version),
    )


def replay_memory(catalog: Catalog, row: dict[str, str]) -> MemoryReplay:
    setup = row_setup(catalog, row)
    served, gpu, tp, pp, util, max_len = setup.served, setup.gpu, setup.tp, setup.pp, setup.util, setup.max_len
    budget = memory_budget(served, catalog, gpu, tp, pp, setup.behaviour, max_len, util)
    concurrency = budget.max_concurrency
    first = budget.stages[0]
    return MemoryReplay(
        model=row["model"],
        weights=served.fmt.dtype,
        kv=served.kv_dtype,
        gpu=gpu.id,
        tp=tp,
        pp=pp,
        util=util,
        max_model_len=max_len,
        measured_weights=float(row["weights_gib"]),
        predicted_weights=first.weights,
        measured_kv_tokens=int(row["kv_tokens"]) if row["kv_tokens"] else None,
        predicted_kv_tokens=budget.kv_tokens,
        measured_kv_gib=float(row["kv_cache_gib"]) if row["kv_cache_gib"] else None,
        predicted_kv_gib=first.kv_pool,
        measured_concurrency=float(row["max_concurrency"]) if row["max_concurrency"] else None,
        predicted_concurrency=concurrency,
        measured_activation=float(row["activation_peak_gib"]) if row["activation_peak_gib"] else None,
        predicted_activation=first.activation,
    )


def memory_table(replays: list[MemoryReplay]) -> str:
    lines = [
        f"{'model':44} {'w':5} {'kv':4} {'gpu':9} tp pp  {'weights meas/pred':>18} {'err':>6}  "
        f"{'KV tokens meas/pred':>23} {'err':>6}  {'conc meas/pred':>15}  {'act GiB meas/pred':>17}"
    ]
    for r in replays:
        meas_tokens = f"{r.measured_kv_tokens:,}" if r.measured_kv_tokens else f"{r.measured_kv_gib:.2f}GiB"
        pred_tokens = f"{r.predicted_kv_tokens:,}" if r.measured_kv_tokens else f"{r.predicted_kv_gib:.2f}GiB"
        conc = f"{r.measured_concurrency or float('nan'):.1f}/{r.predicted_concurrency:.1f}"
        act = f"{r.measured_activation or float('nan'):.2f}/{r.predicted_activation:.2f}"
        lines.append(
            f"{r.model[-44:]:44} {r.weights:5} {r.kv:4} {r.gpu:9} {r.tp:2} {r.pp:2}  "
            f"{r.measured_weights:8.2f}/{r.predicted_weights:<8.2f} {r.weights_error:+6.1%}  "
            f"{meas_tokens:>11}/{pred_tokens:<11} {r.kv_error:+6.1%}  {conc:>15}  {act:>17}"
        )
    kv_errors = [abs(r.kv_error) for r in replays]
    w_errors = [abs(r.weights_error) for r in replays]
    lines.append(
        f"rows {len(replays)}: KV |error| median {statistics.median(kv_errors):.2%}, worst {max(kv_errors):.2%}; "
        f"weights |error| median {statistics.median(w_errors):.2%}, worst {max(w_errors):.2%}"
    )
    return "\n".join(lines)


# --- throughput ----------------------------------------------------------------------------

_TRT_MODELS = {
    "Llama 3.1 8B": "llama-3.1-8b",
    "Llama 3.1 70B": "llama-3.1-70b",
    "Llama 3.1 405B": "llama-3.1-405b",
    "Mistral 7B": "mistral-7b",
    "Mixtral 8x7B": "mixtral-8x7b",
}


@dataclass(frozen=True)
class ThroughputReplay:
    model: str
    precision: str
    gpu: str
    tp: int
    input_len: int
    output_len: int
    measured: float
    predicted: float

    @property
    def log_ratio(self) -> float:
        return math.log(self.predicted / self.measured) if self.predicted > 0 else math.inf


def replay_throughput(catalog: Catalog, row: dict[str, str]) -> ThroughputReplay:
    """Aggregate output tokens/s at --concurrency max, vLLM defaults, the row's GPU, TP and lengths."""
    resolved = resolve_model(catalog, _TRT_MODELS[row["model"]])
    served = serve(resolved.spec, row["precision"].lower(), "auto")
    gpu = find_gpu(catalog, row["gpu"])
    tp, count = int(row["tp"]), int(row["count"])
    assert tp in valid_tp_degrees(served, count)
    prompt, output = int(row["input_len"]), int(row["output_len"])
    behaviour = catalog.vllm_version(catalog.vllm.default_version)
    topology = Topology("nvlink" if gpu.nvlink_gbps else "pcie")
    budget = memory_budget(served, catalog, gpu, tp, 1, behaviour, prompt + output, topology=topology)
    predicted = 0.0
    if budget.loads and budget.max_concurrency >= 1:
        link = link_for(catalog, gpu, "nvlink" if gpu.nvlink_gbps else "pcie")
        speed = estimate_speed(
            served,
            catalog,
            gpu,
            link,
            tp,
            1,
            count // tp,
            (prompt, output),
            "max",
            budget.capacity_tokens,
            budget.batching.max_num_seqs,
        )
        predicted = speed.throughput_tokens_per_s
    return ThroughputReplay(
        row["model"], row["precision"], gpu.id, tp, prompt, output, float(row["output_tok_s"]), predicted
    )


def throughput_rows() -> list[dict[str, str]]:
    return _rows("throughput.csv")


def throughput_table(replays: list[ThroughputReplay]) -> str:
    lines = [
        f"{'model':15} {'prec':5} {'gpu':10} tp {'in':>6} {'out':>5} {'measured':>10} {'predicted':>10} {'ln(p/m)':>8}"
    ]
    for r in replays:
        lines.append(
            f"{r.model:15} {r.precision:5} {r.gpu:10} {r.tp:2} {r.input_len:6} {r.output_len:5} "
            f"{r.measured:10.0f} {r.predicted:10.0f} {r.log_ratio:+8.2f}"
        )
    logs = [abs(r.log_ratio) for r in replays]
    lines.append(
        f"rows {len(replays)}: median |ln(pred/meas)| {statistics.median(logs):.3f}; "
        f"within x1.5: {sum(v <= math.log(1.5) for v in logs)}/{len(logs)}"
    )
    return "\n".join(lines)
