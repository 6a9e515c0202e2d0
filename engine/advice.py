"""What would fix a tight or failed plan -- each lever re-planned by the engine on the same hardware.

No rule of thumb reaches the user: every fix is the Request changed by one lever, planned again on
the instance the answer is about, and reported with its result (enough, or still short by how much).
"""

from __future__ import annotations

from collections.abc import Callable

from engine.catalog.loader import Catalog
from engine.errors import HeadroomError
from engine.notes import Note, note
from engine.plan import Candidate, Plan
from engine.request import Request

Replan = Callable[[Request, Catalog], Plan]
#: utilization offered as a fix: vLLM's own ceiling advice for a dedicated GPU
HIGH_UTILIZATION = 0.95
MIN_CONTEXT = 1024


def reference(plan: Plan) -> Candidate | None:
    """The candidate a fix is tried on: a tight top pick, else the rejection that came closest --
    among instances within the budget, when there is one (a fix elsewhere would not be taken)."""
    if plan.top is not None:
        return plan.top if plan.top.verdict == "tight" else None
    budget = plan.request.max_usd_per_hour
    rejected = [
        c for c in plan.candidates
        if not c.feasible and c.instance_type and c.usd_per_hour is not None and (not budget or c.usd_per_hour <= budget)
    ]  # fmt: skip
    kv_short = [c for c in rejected if c.verdict == "no_kv_room"]
    if kv_short:
        return max(kv_short, key=lambda c: (c.kv_cache_gib_per_gpu, -(c.usd_per_hour or 0)))
    loads_close = [c for c in rejected if c.verdict == "does_not_load" and c.kv_cache_gib_per_gpu < 0]
    return max(loads_close, key=lambda c: c.kv_cache_gib_per_gpu, default=None)


def fixes(request: Request, plan: Plan, catalog: Catalog, replan: Replan, limit: int = 3) -> list[Note]:
    """Up to `limit` levers, each re-planned on the reference instance with its result."""
    ref = reference(plan)
    if ref is None or not ref.instance_type:
        return []
    pinned = request.replace(
        instance=ref.instance_type, nodes=ref.nodes if ref.nodes > 1 else None, gpu=None, gpus=None, families=(),
        exclude_families=(), compare=(), why_not=None, tp=ref.tp, multi_node=False,
    )  # fmt: skip
    # an open question ("which instance?") re-plans each lever over every instance within its targets; a
    # question about given hardware (an instance, a GPU set, a command) re-plans it on that hardware
    open_question = not (request.instance or request.gpu or request.compare or request.tp)
    found: list[Note] = []
    for lever, change in _levers(request, plan, ref):
        base = request if open_question and lever != "layout" else pinned
        try:
            after = replan(base.replace(**change), catalog)
        except (HeadroomError, ValueError):
            continue
        if not after.candidates:
            continue
        best = after.top or after.candidates[0]
        wanted = 1 if request.users == "max" else -(-int(request.users) // max(best.replicas, 1))
        found.append(_result(lever, change, ref, best, plan.request.context_tokens, wanted))
        if len(found) == limit:
            break
    return found


def _levers(request: Request, plan: Plan, ref: Candidate) -> list[tuple[str, dict[str, object]]]:
    """The changes worth trying, most useful first, given what failed."""
    r = plan.request
    kv_short = ref.verdict in {"no_kv_room", "tight"}
    levers: list[tuple[str, dict[str, object]]] = []
    if kv_short and r.kv_dtype != "fp8":
        levers.append(("kv_fp8", {"kv_dtype": "fp8"}))
    lighter = {"bf16": "fp8", "fp16": "fp8", "fp32": "bf16", "fp8": "int4", "int8": "int4"}.get(r.weights_dtype)
    if lighter:
        levers.append(("weights", {"weights": lighter}))
    if kv_short and ref.kv_cache_tokens and r.concurrency != "max":
        wanted = max(1, -(-int(r.concurrency) // max(ref.replicas, 1)))
        fitting = (ref.kv_cache_tokens // wanted) // MIN_CONTEXT * MIN_CONTEXT
        if MIN_CONTEXT <= fitting < r.context_tokens:
            levers.append(("context", {"context_tokens": fitting, "input_tokens": None, "output_tokens": None}))
    if r.gpu_memory_utilization < HIGH_UTILIZATION:
        levers.append(("utilization", {"gpu_memory_utilization": HIGH_UTILIZATION}))
    if request.tp and ref.gpu_count > ref.tp * ref.pp * ref.replicas:  # a command's layout leaves GPUs unused
        levers.insert(0, ("layout", {"tp": None, "pp": None, "replicas": None}))
    return levers


def _result(lever: str, change: dict[str, object], before: Candidate, after: Candidate, context: int, wanted: int) -> Note:
    value = after.tp if lever == "layout" else next(iter(change.values()))
    return note(
        "fix",
        lever=lever,
        value=value,
        instance=after.instance,
        verdict=after.verdict,
        enough=after.feasible and after.meets_targets,
        serves=after.feasible,
        loads=after.verdict != "does_not_load",
        requests=after.max_concurrency,
        kv_tokens=after.kv_cache_tokens,
        context=change.get("context_tokens", context),
        weights_gib=after.weights_gib_per_gpu,
        over_gib=max(0.0, -after.kv_cache_gib_per_gpu),
        short_tokens=max(0, int(change.get("context_tokens", context)) - after.kv_cache_tokens),  # type: ignore[call-overload]
        wanted=wanted,
        replicas=after.replicas,
        pp=after.pp,
        runnable=lever != "weights" or after.vllm_command is not None or not after.feasible,
        command=after.vllm_command,
    )
