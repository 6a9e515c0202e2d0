"""The verdict on one replica layout: does it load, does the KV cache hold the load, does it meet the targets."""

import math
from typing import NamedTuple

from engine.notes import Note, note
from engine.performance import Speed
from engine.request import Request
from engine.served import GIB
from engine.vllm_memory import MemoryBudget

#: a plan is "tight" when the requested load needs more than this share of the KV pool
TIGHT_KV_SHARE = 0.85


class MemoryVerdict(NamedTuple):
    verdict: str  # fits | tight | no_kv_room | does_not_load
    needed_gib: float  # KV each GPU needs for the requested load
    reasons: tuple[Note, ...]


def memory_verdict(
    budget: MemoryBudget, capacity: float, replicas: int, concurrency: int | str, context: int, per_request: float
) -> MemoryVerdict:
    """Verdict, the KV each GPU needs for the requested load, and the reasons behind the verdict."""
    binding = budget.binding
    if not budget.loads:
        return MemoryVerdict(
            "does_not_load",
            0.0,
            (
                note(
                    "does_not_load",
                    weights_gib=binding.weights,
                    activation_gib=binding.activation,
                    runtime_gib=binding.non_torch + binding.cudagraph,
                    over_gib=-binding.kv_pool,
                    usable_gib=binding.usable,
                    utilization=budget.utilization,
                    visible_gib=budget.visible_gib,
                ),
            ),
        )
    wanted = 1 if concurrency == "max" else math.ceil(int(concurrency) / replicas)
    share = wanted / capacity if capacity else math.inf
    needed = binding.kv_pool * min(share, 1.0) if capacity else 0.0
    tokens = budget.kv_tokens
    if capacity < 1:
        reason = note("kv_below_one_request", kv_pool_gib=binding.kv_pool, kv_tokens=budget.kv_tokens, context=context)
        return MemoryVerdict("no_kv_room", per_request / GIB, (reason,))
    if capacity < wanted:
        reason = note(
            "kv_short", capacity=capacity, context=context, kv_tokens=tokens, wanted=wanted, concurrency=concurrency
        )
        return MemoryVerdict("no_kv_room", needed, (reason,))
    if concurrency == "max":
        reason = note("kv_holds", capacity=capacity, context=context, kv_tokens=tokens)
        return MemoryVerdict("tight" if capacity < 2 else "fits", needed, (reason,))
    reason = note("kv_holds_load", capacity=capacity, context=context, kv_tokens=tokens, wanted=wanted, share=share)
    return MemoryVerdict("tight" if share > TIGHT_KV_SHARE else "fits", needed, (reason,))


def target_misses(req: Request, price: float | None, speed: Speed) -> list[Note]:
    """The request's budget, speed and TTFT targets this layout misses."""
    misses = []
    if req.max_usd_per_hour and (price is None or price > req.max_usd_per_hour):
        misses.append(note("over_budget", usd_per_hour=price, budget=req.max_usd_per_hour))
    if req.min_tokens_per_s and speed.decode_tokens_per_s_per_user < req.min_tokens_per_s:
        misses.append(note("under_speed", tokens_per_s=speed.decode_tokens_per_s_per_user, target=req.min_tokens_per_s))
    if req.max_ttft_s and speed.ttft_s > req.max_ttft_s:
        misses.append(note("over_ttft", ttft_s=speed.ttft_s, target=req.max_ttft_s))
    return misses
