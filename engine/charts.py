"""The answer as pictures, in numbers only: one chart model that Slack's blocks and the PNG both draw.

A `BudgetChart` splits each shown GPU's memory the way vLLM accounts for it at start-up
(weights, activation peak, runtime, KV cache, and what gpu_memory_utilization leaves unused)
next to what vLLM may use. A `CapacityCurve` is how many requests of each context length the
top pick holds, for a follow-up that changed the context or the load. No words here: the
templates name every series and axis.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.catalog.loader import Catalog
from engine.context import build_context
from engine.notes import Note
from engine.plan import Candidate, Plan
from engine.request import Request
from engine.vllm_memory import memory_budget
from engine.vllm_overheads import Topology, engine_args

#: bar groups for the top picks (one per distinct GPU layout); the cheapest rejected instance comes after them
TOP_PICKS = 3
#: the budget's parts, bottom to top; templates/charts.j2 names each
PARTS = ("weights", "activation", "runtime", "kv_cache", "unused")
#: request fields whose change makes a follow-up show the capacity curve
CURVE_FIELDS = frozenset({"context_tokens", "input_tokens", "output_tokens", "concurrency"})
#: the context lengths the curve is drawn at (the asked one is added), up to the model's window
CURVE_START = 2048
CURVE_MAX_POINTS = 10


@dataclass(frozen=True, slots=True)
class BudgetBar:
    """One GPU of one candidate, in GiB; `rejected` marks the cheapest instance that does not serve.

    Named like a Candidate (instance, gpu, gpu_count) so the templates' `label` filter names both.
    """

    instance: str | None
    gpu: str
    gpu_count: int
    usd_per_hour: float | None
    rejected: bool
    weights: float
    activation: float
    runtime: float  # non-torch memory (CUDA context, NCCL) + CUDA graphs
    kv_cache: float
    unused: float  # what gpu_memory_utilization keeps back
    may_use: float  # gpu_memory_utilization x visible memory
    memory: float  # visible to CUDA

    def part(self, name: str) -> float:
        return float(getattr(self, name))

    @property
    def stack(self) -> float:
        return sum(self.part(p) for p in PARTS)

    @property
    def over(self) -> float:
        """How far weights + activation + runtime exceed what vLLM may use (0 when they fit)."""
        return max(0.0, self.weights + self.activation + self.runtime - self.may_use)


@dataclass(frozen=True, slots=True)
class BudgetChart:
    bars: tuple[BudgetBar, ...]
    utilization: float

    def to_json(self) -> dict:
        """Plain JSON, so a cached Slack answer can still draw its picture later (bot/chart_upload.py)."""
        return {"utilization": self.utilization, "bars": [{f: getattr(b, f) for f in BudgetBar.__slots__}
                                                          for b in self.bars]}  # fmt: skip

    @classmethod
    def from_json(cls, data: dict) -> BudgetChart:
        return cls(tuple(BudgetBar(**bar) for bar in data["bars"]), data["utilization"])

    @property
    def top(self) -> float:
        """The largest GPU shown, for a shared scale (a taller stack is clipped and labelled in pictures)."""
        return max((b.memory for b in self.bars), default=0.0)


@dataclass(frozen=True, slots=True)
class CapacityPoint:
    context: int
    requests: float  # per replica; 0 where the model does not start


@dataclass(frozen=True, slots=True)
class CapacityCurve:
    candidate: Candidate
    points: tuple[CapacityPoint, ...]
    asked_context: int
    asked_load: int | None  # concurrent users asked for (None for "as many as fit")


@dataclass(frozen=True, slots=True)
class Charts:
    budget: BudgetChart | None
    curve: CapacityCurve | None = None


def _bar(c: Candidate, rejected: bool) -> BudgetBar:
    return BudgetBar(
        instance=c.instance,
        gpu=c.gpu,
        gpu_count=c.gpu_count,
        usd_per_hour=c.usd_per_hour,
        rejected=rejected,
        weights=c.weights_gib_per_gpu,
        activation=c.activation_gib_per_gpu,
        runtime=c.non_torch_gib_per_gpu + c.cudagraph_gib_per_gpu,
        kv_cache=max(0.0, c.kv_cache_gib_per_gpu),
        unused=max(0.0, c.gpu_memory_gib - c.usable_gib_per_gpu),
        may_use=c.usable_gib_per_gpu,
        memory=c.gpu_memory_gib,
    )


def _short_of_memory(c: Candidate) -> bool:
    """Rejected for memory (a bar shows why), not for a kernel or dtype the GPU lacks (its budget would look fine)."""
    return c.verdict == "no_kv_room" or c.kv_cache_gib_per_gpu <= 0


def budget_chart(plan: Plan, picks: int = TOP_PICKS) -> BudgetChart | None:
    """The top picks (one per GPU layout) and the cheapest instance rejected for memory (priced first) whose
    weights fit on its GPUs, else the one whose weights come closest (a 2 GiB slice under 600 GiB of weights
    teaches nothing); None if no bar."""
    shown: list[Candidate] = []
    seen: set[tuple[str, int, int]] = set()
    for c in plan.candidates:
        key = (c.gpu_id, c.gpu_count, c.nodes)
        if c.feasible and c.meets_targets and key not in seen and len(shown) < picks:
            seen.add(key)
            shown.append(c)
    rejected = [c for c in plan.candidates if not c.feasible and c.weights_gib_per_gpu > 0 and _short_of_memory(c)]
    near = [c for c in rejected if c.weights_gib_per_gpu <= c.gpu_memory_gib]
    cheapest: Candidate | None
    if near:
        cheapest = min(near, key=lambda c: (c.usd_per_hour is None, c.usd_per_hour or 0.0))
    else:  # no GPU set holds the weights: the one that comes closest
        cheapest = min(rejected, key=lambda c: (c.weights_gib_per_gpu / c.gpu_memory_gib, c.usd_per_hour or 0.0),
                       default=None)  # fmt: skip
    bars = [_bar(c, False) for c in shown]
    if cheapest is not None:
        bars.append(_bar(cheapest, True))
    if not bars:
        return None
    return BudgetChart(tuple(bars), plan.request.gpu_memory_utilization)


def wants_curve(changes: list[Note] | None) -> bool:
    """A follow-up that changed the context or the load (engine/changes.py's "field" notes)."""
    return any(n.code == "field" and n.data.get("field") in CURVE_FIELDS for n in changes or ())


def _contexts(asked: int, window: int) -> list[int]:
    found, length = {asked}, CURVE_START
    while length <= max(window, asked) and len(found) < CURVE_MAX_POINTS:
        found.add(length)
        length *= 2
    return sorted(found)


def capacity_curve(plan: Plan, request: Request, catalog: Catalog) -> CapacityCurve | None:
    """Requests per replica the top pick holds at each context length, with its own GPUs and split."""
    top = plan.top
    if top is None:
        return None
    ctx, _, _ = build_context(request, catalog)
    gpu = catalog.gpu(top.gpu_id)
    instance = catalog.instances.get(top.instance_type) if top.instance_type else None
    memory_mib = instance.memory_mib_per_gpu if instance else None
    # the same wiring and flags the plan was made with (engine/search.py), so the asked point is the answer's
    topology = Topology(top.interconnect, tp_spans_nodes=top.tp > top.gpu_count // max(1, top.nodes))
    points = []
    for length in _contexts(plan.request.context_tokens, plan.model.max_context):
        budget = memory_budget(
            ctx.served, catalog, gpu, top.tp, top.pp, ctx.behaviour, length, request.gpu_memory_utilization, memory_mib,
            topology, engine_args(request),
        )  # fmt: skip
        points.append(CapacityPoint(length, budget.max_concurrency if budget.loads else 0.0))
    load = plan.request.concurrency
    return CapacityCurve(top, tuple(points), plan.request.context_tokens, None if load == "max" else int(load))


def charts_for(plan: Plan, request: Request, catalog: Catalog, changes: list[Note] | None = None) -> Charts:
    """Every answer's budget chart; the capacity curve when a follow-up changed the context or the load."""
    curve = capacity_curve(plan, request, catalog) if wants_curve(changes) else None
    return Charts(budget_chart(plan), curve)
