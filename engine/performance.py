"""Speed estimates: decode tokens/s, time to first token, aggregate throughput.

Decode is memory-bound until the batch is large: a step streams the weights and
every sequence's KV once, then turns compute-bound. Efficiencies (fraction of
datasheet bandwidth / FLOPS actually reached) come from H100 measurements.
"""

import math
from typing import NamedTuple

from engine.catalog.loader import Catalog
from engine.catalog.schema import GpuSpec
from engine.memo import Memo
from engine.served import GIB, ServedModel

_EIGHT_BIT = {"fp8", "int8"}


class Link(NamedTuple):
    """How a replica's GPUs talk: per-direction GB/s and per-collective latency."""

    kind: str  # nvlink | pcie | network | none
    gbps: float
    latency_s: float


class Speed(NamedTuple):
    batch: int  # sequences decoded together in one replica
    step_ms: float
    decode_tokens_per_s_per_user: float
    throughput_tokens_per_s: float  # output tokens/s, all replicas
    ttft_s: float
    bound: str  # memory | compute
    weights_gib_per_step: float  # weights one decode step reads per GPU (MoE: shared layers + touched experts)
    kv_gib_per_step: float  # KV one decode step reads per GPU, for the whole batch


def link_for(catalog: Catalog, gpu: GpuSpec, interconnect: str) -> Link:
    perf = catalog.vllm.performance
    if interconnect == "nvlink" and gpu.nvlink_gbps:
        return Link("nvlink", gpu.nvlink_gbps / 2, perf.allreduce_latency_us["nvlink"] * 1e-6)
    gen = gpu.pcie_gen or 4
    return Link("pcie", perf.pcie_gbps_by_gen.get(gen, 25.0), perf.allreduce_latency_us["pcie"] * 1e-6)


def compute_tflops(gpu: GpuSpec, served: ServedModel) -> tuple[float, str]:
    """Peak dense TFLOPS for the GEMMs this model will run, and which efficiency class applies."""
    dtype = served.fmt.dtype
    bf16 = gpu.tflops_bf16 or gpu.tflops_fp16 or 1.0
    if dtype in _EIGHT_BIT and gpu.tflops_fp8 and "fp8" in gpu.dtypes:
        return gpu.tflops_fp8, "8bit"
    if dtype == "fp32":
        return bf16 / 2, "16bit"  # TF32 runs at half the BF16 tensor rate
    return bf16, "16bit"


def _stream_class(served: ServedModel) -> str:
    return "16bit" if served.fmt.dtype in {"bf16", "fp16", "fp32"} else "8bit"


def step_reads(served: ServedModel, tp: int, pp: int, batch: int, context: int) -> tuple[float, float]:
    """Bytes of weights and of KV one decode step reads per GPU (busiest stage)."""
    return _weight_bytes_read(served, tp, pp, batch), batch * served.kv_bytes_read_per_step(context, tp) / pp


def _weight_bytes_read(served: ServedModel, tp: int, pp: int, batch: int) -> float:
    """Bytes of weights one decode step streams per GPU (busiest stage); MoE reads only touched experts."""
    stage_bytes = served.busiest_stage_bytes(tp, pp)
    skipped = served.params.embed * served.base_bytes / tp  # embedding lookup reads a few rows only
    moe = served.arch.moe
    if moe:
        touched = 1 - (1 - moe.active / moe.experts) ** max(batch, 1)
        expert_bytes = served.expert_bytes / (tp * pp)
        skipped += expert_bytes * (1 - touched)
    return max(stage_bytes - skipped, stage_bytes * 0.05)


def decode_step_s(
    served: ServedModel, catalog: Catalog, gpu: GpuSpec, link: Link, tp: int, pp: int, batch: int, context: int,
    read: tuple[float, float] | None = None,
) -> tuple[float, str]:
    """Seconds for one decode step of `batch` sequences at `context` tokens (one token each).

    `read`: (weight bytes, KV bytes) one step reads per GPU, when the caller has them already.
    """  # fmt: skip
    eff = catalog.efficiencies
    bandwidth = (gpu.bandwidth_gbps or 100.0) * 1e9
    weight_bytes, kv_bytes = read or step_reads(served, tp, pp, batch, context)
    weights = weight_bytes / (bandwidth * eff.weight_stream[_stream_class(served)])
    kv = kv_bytes / (bandwidth * eff.kv_read)
    tflops, klass = compute_tflops(gpu, served)
    flops = 2 * served.active_params * batch / (tp * pp)
    compute = flops / (tflops * 1e12 * eff.gemm[klass])
    stage = max(weights + kv, compute)
    bound = "memory" if weights + kv >= compute else "compute"
    allreduce = 0.0
    if tp > 1:
        message = batch * served.arch.hidden * 2
        per_layer = link.latency_s + 2 * (tp - 1) / tp * message / (link.gbps * 1e9)
        allreduce = 2 * served.arch.layers / pp * per_layer
    overhead = catalog.vllm.performance.step_overhead_ms / 1000
    return pp * (stage + allreduce) + overhead, bound


def prefill_s(served: ServedModel, catalog: Catalog, gpu: GpuSpec, link: Link, tp: int, pp: int, tokens: int) -> float:
    """Seconds to prefill one prompt: compute-bound GEMMs + causal attention + TP all-reduces."""
    arch = served.arch
    tflops, klass = compute_tflops(gpu, served)
    head_dim = arch.mla.qk_nope_head_dim + arch.mla.qk_rope_head_dim if arch.mla else arch.head_dim
    attention = 2 * arch.layers * arch.heads * head_dim * tokens * tokens  # QK^T and PV, causal half
    flops = (2 * served.active_params * tokens + attention) / tp
    compute = flops / (tflops * 1e12 * catalog.efficiencies.gemm[klass])
    bandwidth = (gpu.bandwidth_gbps or 100.0) * 1e9
    floor = (
        served.total_weight_bytes / (tp * pp) / (bandwidth * catalog.efficiencies.weight_stream[_stream_class(served)])
    )
    allreduce = 0.0
    if tp > 1:
        message = tokens * arch.hidden * 2
        allreduce = 2 * arch.layers * (link.latency_s + 2 * (tp - 1) / tp * message / (link.gbps * 1e9))
    return max(compute, floor * pp) + allreduce


def _step(
    served: ServedModel, catalog: Catalog, gpu: GpuSpec, link: Link, tp: int, pp: int, batch: int, context: int,
    prompt: int,
) -> tuple[tuple[float, float], float, str, float]:
    """Bytes read, seconds and bound of one decode step, and the prefill seconds: a pure function of its inputs."""
    read = step_reads(served, tp, pp, batch, context)
    step, bound = decode_step_s(served, catalog, gpu, link, tp, pp, batch, context, read)
    return read, step, bound, prefill_s(served, catalog, gpu, link, tp, pp, prompt)


def estimate_speed(
    served: ServedModel,
    catalog: Catalog,
    gpu: GpuSpec,
    link: Link,
    tp: int,
    pp: int,
    replicas: int,
    split: tuple[int, int],
    concurrency: int | str,
    kv_tokens: int,
    max_num_seqs: int,
    steps: Memo | None = None,
) -> Speed:
    """Steady state of continuous batching: B sequences decode together; prefills interleave."""
    prompt, output = split
    average_context = prompt + output // 2
    fits = max(1, kv_tokens // max(average_context, 1))
    if concurrency == "max":
        batch = min(max_num_seqs, fits)
        busy = replicas
    else:
        per_replica = math.ceil(int(concurrency) / replicas)
        batch = max(1, min(per_replica, max_num_seqs, fits))
        busy = min(replicas, math.ceil(int(concurrency) / batch))  # replicas with users: idle ones add nothing
    key = ("step", gpu.id, link.kind, tp, pp, batch, average_context, prompt)
    args = (served, catalog, gpu, link, tp, pp, batch, average_context, prompt)
    read, step, bound, first = steps.get(key, _step, *args) if steps is not None else _step(*args)
    per_replica_tps = batch * output / (output * step + batch * first)
    return Speed(
        batch=batch,
        step_ms=step * 1000,
        decode_tokens_per_s_per_user=1 / step,
        throughput_tokens_per_s=per_replica_tps * busy,
        ttft_s=first + step,
        bound=bound,
        weights_gib_per_step=read[0] / GIB,
        kv_gib_per_step=read[1] / GIB,
    )


__all__ = ["GIB", "Link", "Speed", "decode_step_s", "estimate_speed", "link_for", "prefill_s"]
