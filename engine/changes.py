"""What a follow-up changed, in the request and in the answer, as notes."""

from __future__ import annotations

from engine.notes import Note, note
from engine.plan import Plan
from engine.request import EXTRA_FIELDS, MEMORY_FLAG_FIELDS

#: the request fields a follow-up can change, in the order they are reported
FIELDS = (
    "model", "weights_dtype", "kv_dtype", "context_tokens", "input_tokens", "output_tokens", "concurrency",
    "instance", "gpu", "gpus", "tp", "pp", "replicas", "gpu_memory_utilization", "vllm_version", "region", "families",
    "exclude_families", "max_usd_per_hour", "min_tokens_per_s", "max_ttft_s", "sort",
    *MEMORY_FLAG_FIELDS, *EXTRA_FIELDS,
)  # fmt: skip


def changes(before: Plan, after: Plan) -> list[Note]:
    """Each changed request field, then the KV, weights and top pick that moved with it."""
    found = []
    old, new = before.request, after.request
    for field in FIELDS:
        a, b = getattr(old, field), getattr(new, field)
        derived = field in {"input_tokens", "output_tokens"} and old.context_tokens != new.context_tokens
        if a != b and not derived:
            found.append(note("field", field=field, old=a, new=b))
    if before.budget.kv_gib_per_sequence != after.budget.kv_gib_per_sequence:
        found.append(note("kv_per_request", old=before.budget.kv_gib_per_sequence, new=after.budget.kv_gib_per_sequence))
    if before.budget.weights_gib != after.budget.weights_gib:
        found.append(note("weights", old=before.budget.weights_gib, new=after.budget.weights_gib))
    top_a, top_b = before.top, after.top
    name_a = top_a.instance if top_a else None
    name_b = top_b.instance if top_b else None
    if name_a != name_b:
        found.append(note("top_pick", old=name_a, new=name_b))
    elif top_a and top_b and top_a.usd_per_hour != top_b.usd_per_hour:  # same instance, another region's price
        found.append(note("price", instance=name_b, old=top_a.usd_per_hour, new=top_b.usd_per_hour))
    elif top_a and top_b and top_a.max_concurrency != top_b.max_concurrency:
        found.append(note("holds", instance=name_b, old=top_a.max_concurrency, new=top_b.max_concurrency))
    return found
