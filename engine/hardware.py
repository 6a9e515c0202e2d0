"""What a GPU can run: dtype support and the caveats a senior engineer would mention."""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.catalog.schema import GpuSpec
from engine.served import ServedModel


@dataclass(frozen=True)
class Support:
    runs: bool
    reason: str = ""  # why it cannot run, when runs is False
    caveats: tuple[str, ...] = field(default_factory=tuple)


def support(gpu: GpuSpec, served: ServedModel) -> Support:
    """Can vLLM run this model's weight format on this GPU, and at what cost?"""
    if gpu.runtime != "cuda":
        return Support(False, f"{gpu.name} is not a CUDA GPU; vLLM's CUDA build does not run on it")
    cc = gpu.capability or (0, 0)
    dtype = served.fmt.dtype
    caveats: list[str] = []
    if cc < (8, 0) and "bf16" in (dtype, served.fmt.base, served.fmt.compute):
        caveats.append(f"{gpu.name} (sm_{cc[0]}{cc[1]}) has no BF16: run with --dtype half (FP16), same memory")
    if dtype == "fp8" or served.kv_dtype == "fp8":
        if cc < (8, 0):
            return Support(False, f"FP8 needs sm_80 or newer; {gpu.name} is sm_{cc[0]}{cc[1]} (no FP8 kernels)")
        if cc < (8, 9) and dtype == "fp8":
            caveats.append(
                f"{gpu.name} (sm_{cc[0]}{cc[1]}) has no FP8 tensor cores: FP8 weights run weight-only "
                "(Marlin), same memory, slower prefill"
            )
    if dtype == "fp4" and cc < (10, 0):
        return Support(False, f"NVFP4 needs Blackwell (sm_100/sm_120); {gpu.name} is sm_{cc[0]}{cc[1]}")
    if dtype == "mxfp4" and cc < (8, 0):
        return Support(False, f"MXFP4 kernels need sm_80 or newer; {gpu.name} is sm_{cc[0]}{cc[1]}")
    if dtype == "int8" and cc < (7, 5):
        return Support(False, f"INT8 W8A8 kernels need sm_75 or newer; {gpu.name} is sm_{cc[0]}{cc[1]}")
    if cc >= (12, 0) and dtype == "fp8":
        caveats.append("Blackwell workstation-class GPUs (sm_120) got block-scaled FP8 kernels late: use a recent vLLM")
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
