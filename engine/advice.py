"""What to change when a plan is tight or nothing fits: the levers, in the order they usually help."""

from __future__ import annotations

from engine.notes import Note, note
from engine.plan import Candidate, Plan


def hints(plan: Plan, limit: int = 3) -> list[Note]:
    """Up to `limit` concrete changes, each with the number it buys."""
    request, top = plan.request, plan.top
    found: list[Note] = []
    if request.kv_dtype != "fp8":
        found.append(note("fp8_kv", requests=2 * top.max_concurrency if top else None))
    weights = plan.budget.weights_gib
    if request.weights_dtype in {"bf16", "fp16", "fp32"}:
        found.append(note("fp8_weights", weights_gib=weights, estimate_gib=weights / 2))
    elif request.weights_dtype in {"fp8", "int8"}:
        found.append(note("int4_weights", weights_gib=weights, estimate_gib=weights * 0.55))
    if request.context_tokens > 8192:
        found.append(note("shorter_context", context=request.context_tokens // 2))
    reference = top or _closest_rejection(plan)
    if request.gpu_memory_utilization < 0.95 and (top is None or top.verdict == "tight") and reference:
        visible = reference.gpu_memory_gib
        if visible:
            found.append(note("higher_utilization", extra_gib=(0.95 - request.gpu_memory_utilization) * visible))
    return found[:limit]


def _closest_rejection(plan: Plan) -> Candidate | None:
    rejected = [c for c in plan.candidates if not c.feasible and c.verdict == "no_kv_room"]
    return max(rejected, key=lambda c: c.kv_cache_gib_per_gpu, default=None)
