"""The placement search: assess each TP x PP split of a GPU set and choose the one to serve with."""

from typing import NamedTuple

from engine.context import PlanContext
from engine.hardware import Support, support
from engine.notes import Note, note
from engine.performance import Speed, estimate_speed, link_for
from engine.placement import Hardware, valid_tp_degrees
from engine.plan import FEASIBLE
from engine.verdict import memory_verdict
from engine.vllm_memory import MemoryBudget, memory_budget
from engine.vllm_overheads import Topology, engine_args

VERDICT_ORDER = {"fits": 0, "tight": 1, "no_kv_room": 2, "does_not_load": 3}

#: one GPU set as the memory model sees it: GPU, count, interconnect, per-GPU memory of a fractional slice
SetKey = tuple[str, int, str, float | None]


class Assessment(NamedTuple):
    """What one TP x PP split of a GPU set achieves; shared by every instance with that GPU set."""

    tp: int
    pp: int
    replicas: int
    budget: MemoryBudget
    capacity: float
    verdict: str
    needed: float
    reasons: tuple[Note, ...]
    caveats: tuple[Note, ...]
    speed: Speed | None
    weights_max: float  # GiB per GPU, busiest stage
    activation_max: float

    @property
    def feasible(self) -> bool:
        return self.verdict in FEASIBLE


class Scratch:
    """Work shared between the GPU sets of one plan (the five g6e sizes with one L40S are assessed once)."""

    __slots__ = ("splits", "chosen", "degrees", "budgets")

    def __init__(self) -> None:
        self.splits: dict[tuple[SetKey, int, int, int], Assessment] = {}
        self.chosen: dict[SetKey, Assessment] = {}
        self.degrees: dict[int, list[int]] = {}
        #: per-GPU memory of a split does not depend on how many GPUs the set has: shared across sizes
        self.budgets: dict[tuple[str, float | None, int, int, str, bool], _PerGpu] = {}


def assess(ctx: PlanContext, scratch: Scratch, hw: Hardware, tp: int, pp: int, replicas: int) -> Assessment:
    """Memory verdict and speed of one layout; computed once per (GPU set, layout) within a plan."""
    key = (hw.set_key, tp, pp, replicas)
    found = scratch.splits.get(key)
    if found is None:
        found = scratch.splits[key] = _assess(ctx, scratch, hw, tp, pp, replicas)
    return found


class _PerGpu(NamedTuple):
    """What a split means for each GPU, whatever the set's size: shared by g6e.12xlarge and g6e.48xlarge."""

    budget: MemoryBudget
    capacity: float
    support: Support
    weights: float
    activation: float


def _per_gpu(ctx: PlanContext, scratch: Scratch, hw: Hardware, tp: int, pp: int) -> _PerGpu:
    """Memoised on the served model (a pure function of these keys), like its per-stage bytes."""
    memory_mib = hw.instance.memory_mib_per_gpu if hw.instance else None
    key = (hw.gpu.id, memory_mib, tp, pp, hw.interconnect, tp > hw.gpus_per_node)
    found = scratch.budgets.get(key)
    if found is None:
        util = ctx.request.gpu_memory_utilization
        lasting = ("per_gpu", *key, ctx.behaviour, ctx.context, util, engine_args(ctx.request))
        found = scratch.budgets[key] = ctx.served.memo.get(lasting, _compute_per_gpu, ctx, hw, tp, pp, memory_mib)
    return found


def _compute_per_gpu(ctx: PlanContext, hw: Hardware, tp: int, pp: int, memory_mib: float | None) -> _PerGpu:
    served, catalog, req = ctx.served, ctx.catalog, ctx.request
    topology = Topology(hw.interconnect, tp_spans_nodes=tp > hw.gpus_per_node)
    budget = memory_budget(
        served, catalog, hw.gpu, tp, pp, ctx.behaviour, ctx.context, req.gpu_memory_utilization, memory_mib, topology,
        engine_args(req),
    )  # fmt: skip
    weights = max(s.weights for s in budget.stages)
    activation = max(s.activation for s in budget.stages)
    capacity = budget.max_concurrency if budget.loads else 0.0
    return _PerGpu(budget, capacity, support(hw.gpu, served, catalog.vllm.kernels), weights, activation)


def _assess(ctx: PlanContext, scratch: Scratch, hw: Hardware, tp: int, pp: int, replicas: int) -> Assessment:
    served, catalog, req = ctx.served, ctx.catalog, ctx.request
    per_gpu = _per_gpu(ctx, scratch, hw, tp, pp)
    budget, capacity, hw_support = per_gpu.budget, per_gpu.capacity, per_gpu.support
    caveats = hw_support.caveats
    if hw_support.runs:
        short = budget.loads and capacity < 1  # only then is one request's KV (per GPU) quoted
        stage = budget.binding.stage if pp > 1 else None
        slack, block = budget.batching.max_num_batched_tokens, budget.block_size
        per_request = served.kv_bytes_per_request(ctx.context, tp, slack, stage, block) if short else 0.0
        judged = memory_verdict(budget, capacity, replicas, req.users, ctx.context, per_request)
        verdict, needed, reasons = judged.verdict, judged.needed_gib, judged.reasons
    else:
        assert hw_support.reason is not None
        verdict, needed, reasons = "does_not_load", 0.0, (hw_support.reason,)
    speed = None
    if verdict in FEASIBLE:
        link = link_for(catalog, hw.gpu, hw.interconnect)
        speed = estimate_speed(
            served, catalog, hw.gpu, link, tp, pp, replicas, ctx.split, req.users,
            budget.capacity_tokens, budget.batching.max_num_seqs, served.memo,
        )  # fmt: skip
    if hw.nodes > 1:
        caveats = (*caveats, note("spans_nodes", nodes=hw.nodes))
    return Assessment(
        tp, pp, replicas, budget, capacity, verdict, needed, reasons, caveats, speed, per_gpu.weights, per_gpu.activation
    )


def _split_score(a: Assessment, objective: str) -> tuple:
    """Order the splits of one GPU set by what the request optimises (lower is better).

    - "speed" (sort by speed, tok/s or TTFT targets): fastest per user;
    - "max" (as many users as fit): the most concurrent requests over all replicas;
    - "cost" (a given load): the most output tokens/s at that load, i.e. the lowest cost per
      token on this instance.
    Verdict first (fits before tight). Among splits that fail, the one that came closest (most KV
    room), so the rejection names the real shortfall rather than the TP=1 strawman.
    """
    if not a.feasible or a.speed is None:
        return (VERDICT_ORDER[a.verdict], -a.budget.binding.kv_pool, a.tp)
    if objective == "speed":
        metric: tuple = (-a.speed.decode_tokens_per_s_per_user,)
    elif objective == "max":
        metric = (-round(a.capacity * a.replicas, 6), -a.speed.throughput_tokens_per_s)
    else:
        metric = (-round(a.speed.throughput_tokens_per_s, 6),)
    return (VERDICT_ORDER[a.verdict], *metric, a.tp)


def objective(ctx: PlanContext) -> str:
    req = ctx.request
    if req.sort == "speed" or req.min_tokens_per_s or req.max_ttft_s:
        return "speed"
    return "max" if req.users == "max" else "cost"


def choose_split(ctx: PlanContext, scratch: Scratch, hw: Hardware) -> Assessment | None:
    """Choose the layout for a GPU set: every valid split is assessed, the request's objective decides.

    Spare GPUs become data-parallel replicas unless the request pins the replicas (a command's
    --data-parallel-size). None when pinned sizes cannot run on this set.
    """
    req = ctx.request
    if hw.nodes > 1:
        tp, pp = req.tp or hw.gpus_per_node, req.pp or hw.nodes
        if tp * pp > hw.gpu_count or tp not in valid_tp_degrees(ctx.served, tp, ctx.weight_block):
            return None
        return assess(ctx, scratch, hw, tp, pp, 1)
    key = hw.set_key
    if key in scratch.chosen:
        return scratch.chosen[key]
    best = _best_split(ctx, scratch, hw, req.pp or 1)
    if req.pp is None and (best is None or not best.feasible):
        # nothing fits with one pipeline stage (e.g. a block-FP8 checkpoint whose TP is capped below the GPU
        # count): vLLM also pipelines across the GPUs of one host, so try 2, 4, 8 stages before giving up
        for pp in (2, 4, 8):
            option = _best_split(ctx, scratch, hw, pp) if hw.gpu_count % pp == 0 and pp < hw.gpu_count else None
            if option is not None and option.feasible:
                best = option
                break
    if best is not None:
        scratch.chosen[key] = best
    return best


def _best_split(ctx: PlanContext, scratch: Scratch, hw: Hardware, pp: int) -> Assessment | None:
    """The best TP x replicas layout with `pp` pipeline stages on one host; None when none can run."""
    req = ctx.request
    if hw.gpu_count % pp:
        return None
    per_stage = hw.gpu_count // pp
    if per_stage not in scratch.degrees:
        scratch.degrees[per_stage] = valid_tp_degrees(ctx.served, per_stage, ctx.weight_block)
    degrees = scratch.degrees[per_stage]
    if req.tp:
        degrees = [req.tp] if req.tp in degrees else []
    layouts = [(tp, (req.replicas or hw.gpu_count // (tp * pp))) for tp in degrees]
    layouts = [(tp, replicas) for tp, replicas in layouts if tp * pp * replicas <= hw.gpu_count]
    if not layouts:
        return None
    goal = objective(ctx)
    best: Assessment | None = None
    for tp, replicas in layouts:  # ascending TP
        option = assess(ctx, scratch, hw, tp, pp, replicas)
        if best is None or _split_score(option, goal) < _split_score(best, goal):
            best = option
        elif goal != "max" and best.feasible and option.feasible:
            break  # per-token cost and per-user speed rise with TP, then fall: past the peak, stop
    return best
