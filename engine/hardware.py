"""What a GPU can run: dtype support and the caveats a senior engineer would mention."""

from typing import NamedTuple

from engine.catalog.loader import Kernels
from engine.catalog.schema import GpuSpec
from engine.notes import Note, note
from engine.served import ServedModel


class Support(NamedTuple):
    runs: bool
    reason: Note | None = None  # why it cannot run, when runs is False
    caveats: tuple[Note, ...] = ()


def _capability(text: str) -> tuple[int, int]:
    major, minor = text.split(".")
    return int(major), int(minor)


def no_bf16(gpu: GpuSpec) -> bool:
    """Pre-Ampere GPUs have no BF16: vLLM runs a BF16 model there in FP16 (`--dtype half`)."""
    return (gpu.capability or (0, 0)) < (8, 0)


def support(gpu: GpuSpec, served: ServedModel, kernels: Kernels) -> Support:
    """Can vLLM run this model's weight format on this GPU, and at what cost? (vLLM's own kernel rules)"""
    if gpu.runtime != "cuda":
        return Support(False, note("not_cuda", gpu=gpu.name))
    cc = gpu.capability or (0, 0)
    sm = f"sm_{cc[0]}{cc[1]}"
    marlin = _capability(kernels.marlin_min_capability)
    marlin_sm = f"sm_{marlin[0]}{marlin[1]}"
    dtype = served.fmt.dtype
    caveats: list[Note] = []
    if no_bf16(gpu) and "bf16" in (dtype, served.fmt.base, served.fmt.compute):
        if served.spec.family in kernels.fp16_refused_families:
            return Support(False, note("fp16_refused", gpu=gpu.name, sm=sm, model=served.spec.name))
        caveats.append(note("no_bf16", gpu=gpu.name, sm=sm))
    if served.kv_dtype == "fp8" and cc < (8, 0):
        return Support(False, note("fp8_kv_needs_sm80", gpu=gpu.name, sm=sm))
    if dtype in {"fp8", "fp4", "int4"} and cc < marlin:
        return Support(False, note("weights_need_marlin", gpu=gpu.name, sm=sm, dtype=dtype, needs=marlin_sm))
    if dtype == "fp8" and cc < (8, 9):
        caveats.append(note("fp8_weight_only", gpu=gpu.name, sm=sm))
    if dtype == "fp4" and cc < (10, 0):
        caveats.append(note("nvfp4_weight_only", gpu=gpu.name, sm=sm))
    if dtype == "mxfp4" and cc < (8, 0):
        return Support(False, note("mxfp4_needs_sm80", gpu=gpu.name, sm=sm))
    if dtype == "int8" and cc < (7, 5):
        return Support(False, note("int8_needs_sm75", gpu=gpu.name, sm=sm))
    if cc >= (12, 0) and dtype == "fp8":
        caveats.append(note("sm120_fp8_late"))
    return Support(True, caveats=tuple(caveats))


def expert_alignment(gpu: GpuSpec, served: ServedModel) -> tuple[int, int]:
    """(hidden, intermediate-per-rank) padding of MXFP4 MoE expert weights in vLLM's kernels.

    Blackwell (FlashInfer TRT-LLM): 256 / 256. Hopper and Ampere: the Marlin layout,
    256 / 128 -- vLLM's default on Hopper is the Triton backend (no hidden padding),
    but the v0.19 H100 start-up logs of gpt-oss match the Marlin sizes (13.64 GiB
    logged vs 13.69 predicted; unpadded would be 12.82), so we follow the logs.
    """
    if served.fmt.dtype != "mxfp4" or served.arch.moe is None:
        return (1, 1)
    cc = gpu.capability or (0, 0)
    return (256, 256) if cc >= (10, 0) else (256, 128)
