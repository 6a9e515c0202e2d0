"""The `vllm serve` line that starts what a candidate describes."""

from __future__ import annotations

from engine.context import PlanContext


def quantizes_on_load(ctx: PlanContext) -> bool:
    """FP8 asked for a checkpoint that is not FP8 and no FP8 release named: vLLM quantizes while loading."""
    served = ctx.served
    return served.fmt.dtype == "fp8" and not ctx.release and served.spec.dtype != "fp8"


def vllm_command(ctx: PlanContext, tp: int, pp: int, utilization: float) -> str:
    parts = [f"vllm serve {ctx.release or ctx.served.spec.id}"]
    if quantizes_on_load(ctx):
        parts.append("--quantization fp8")
    if tp > 1:
        parts.append(f"--tensor-parallel-size {tp}")
    if pp > 1:
        parts.append(f"--pipeline-parallel-size {pp}")
    parts.append(f"--max-model-len {ctx.context}")
    parts.append(f"--gpu-memory-utilization {utilization:.2f}")
    if ctx.request.kv_dtype == "fp8":
        parts.append("--kv-cache-dtype fp8")
    return " ".join(parts)
