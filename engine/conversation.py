"""A conversation about one deployment: follow-ups applied to the previous request, and what changed.

Shared by the terminal chat and the Slack threads, so both read "what about 32k?" the same way.
"""

from __future__ import annotations

from engine.catalog.loader import Catalog
from engine.parse import ParseError, parse_followup
from engine.plan import Plan
from engine.request import Request


class StartOver(ParseError):
    """'start over' with no new question: forget the thread's request and ask for one."""


def follow_up(text: str, previous: Request | None, previous_top: str | None, catalog: Catalog) -> Request:
    """The next request in a thread. Raises ParseError when nothing in `text` can be applied."""
    delta = parse_followup(text, catalog)
    if delta.reset or previous is None:
        if "model" not in delta.changes:
            raise StartOver("Starting over: which model? e.g. 'llama 3.3 70b fp8 8k context'.")
        return Request.model_validate(delta.changes)
    changes = dict(delta.changes)
    compare = changes.get("compare")
    if isinstance(compare, tuple) and len(compare) == 1 and previous_top and previous_top != compare[0]:
        changes["compare"] = (previous_top, *compare)
    if "exclude_families" in changes:  # exclusions add up over a thread
        changes["exclude_families"] = tuple(
            dict.fromkeys((*previous.exclude_families, *changes["exclude_families"]))  # type: ignore[misc]
        )
    if "families" in changes or "compare" in changes or "instance" in changes or "gpu" in changes:
        changes.setdefault("why_not", None)
    return delta.model_copy(update={"changes": changes}).apply(previous)


_LABELS = {
    "model": "model",
    "weights_dtype": "weights",
    "kv_dtype": "KV cache",
    "context_tokens": "context",
    "input_tokens": "prompt",
    "output_tokens": "output",
    "concurrency": "users",
    "instance": "instance",
    "gpu": "GPU",
    "gpus": "GPUs",
    "tp": "TP",
    "gpu_memory_utilization": "gpu_memory_utilization",
    "vllm_version": "vLLM",
    "region": "region",
    "families": "families",
    "exclude_families": "excluded",
    "max_usd_per_hour": "budget $/h",
    "min_tokens_per_s": "min tok/s",
    "max_ttft_s": "max TTFT s",
    "sort": "ranking",
}


def _show(value: object) -> str:
    if isinstance(value, tuple | list):
        return ", ".join(map(str, value)) or "any"
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1000:
        return f"{value:,}"
    return "default" if value is None else str(value)


def changes(before: Plan, after: Plan) -> list[str]:
    """What a follow-up changed, in the request and in the answer."""
    lines = []
    old, new = before.request, after.request
    for field, label in _LABELS.items():
        a, b = getattr(old, field, None), getattr(new, field, None)
        derived = field in {"input_tokens", "output_tokens"} and old.context_tokens != new.context_tokens
        if a != b and not derived:
            lines.append(f"{label}: {_show(a)} → {_show(b)}")
    if before.budget.kv_gib_per_sequence != after.budget.kv_gib_per_sequence:
        lines.append(
            f"KV per request: {before.budget.kv_gib_per_sequence:.2f} → {after.budget.kv_gib_per_sequence:.2f} GiB"
        )
    if before.budget.weights_gib != after.budget.weights_gib:
        lines.append(f"weights: {before.budget.weights_gib:.1f} → {after.budget.weights_gib:.1f} GiB")
    top_a, top_b = before.top, after.top
    name_a = top_a.instance if top_a else "nothing fits"
    name_b = top_b.instance if top_b else "nothing fits"
    if name_a != name_b:
        lines.append(f"top pick: {name_a} → {name_b}")
    elif top_a and top_b and top_a.max_concurrency != top_b.max_concurrency:
        lines.append(f"{name_b} holds {top_a.max_concurrency:.1f} → {top_b.max_concurrency:.1f} requests per replica")
    return lines
