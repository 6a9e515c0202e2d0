"""What to change when a plan is tight or nothing fits: the levers, in the order they usually help."""

from __future__ import annotations

from engine.plan import Candidate, Plan


def hints(plan: Plan, limit: int = 3) -> list[str]:
    """Up to `limit` concrete changes, each with the number it buys."""
    request, top = plan.request, plan.top
    found: list[str] = []
    capacity = f" (about {2 * top.max_concurrency:.0f} requests per replica)" if top else ""
    if request.kv_dtype != "fp8":
        found.append(f"FP8 KV cache (--kv-cache-dtype fp8) halves KV per token{capacity}.")
    weights = plan.budget.weights_gib
    if request.weights_dtype in {"bf16", "fp16", "fp32"}:
        found.append(f"FP8 weights would take about {weights / 2:.0f} GiB instead of {weights:.0f}.")
    elif request.weights_dtype in {"fp8", "int8"}:
        found.append(f"INT4 weights (AWQ/GPTQ) would take about {weights * 0.55:.0f} GiB instead of {weights:.0f}.")
    if request.context_tokens > 8192:
        found.append(f"A shorter --max-model-len ({request.context_tokens // 2:,}) fits about twice the requests.")
    reference = top or _closest_rejection(plan)
    if request.gpu_memory_utilization < 0.95 and (top is None or top.verdict == "tight") and reference:
        visible = reference.gpu_memory_gib
        if visible:
            extra = (0.95 - request.gpu_memory_utilization) * visible
            found.append(f"--gpu-memory-utilization 0.95 gives vLLM {extra:.1f} GiB more per GPU.")
    return found[:limit]


def _closest_rejection(plan: Plan) -> Candidate | None:
    rejected = [c for c in plan.candidates if not c.feasible and c.verdict == "no_kv_room"]
    return max(rejected, key=lambda c: c.kv_cache_gib_per_gpu, default=None)
