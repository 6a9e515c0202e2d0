"""The answer: a Plan of ranked candidates, as plain data for templates, JSON and Slack.

Plain records rather than pydantic models or dataclasses: NamedTuples (ranking gives each
of a plan's ~70 candidates its rank with ``_replace``); class definitions and the plan both sit
on every `headroom plan`'s start-up (issue 14). ``plan_json``
turns a Plan into the documented JSON object (see docs/plan-json.md).
"""

from collections.abc import Callable
from typing import Any, Literal, NamedTuple

from engine.notes import Note, as_json

Verdict = Literal["fits", "tight", "no_kv_room", "does_not_load"]
FEASIBLE: frozenset[str] = frozenset({"fits", "tight"})
SCHEMA_VERSION = 2  # 2: notes are objects with a code (and text), model summary as data


class NormalisedRequest(NamedTuple):
    model: str  # catalog id
    model_name: str
    weights_dtype: str
    kv_dtype: str
    context_tokens: int
    input_tokens: int
    output_tokens: int
    concurrency: int | Literal["max"]
    vllm_version: str
    gpu_memory_utilization: float
    region: str
    instance: str | None = None
    gpu: str | None = None
    gpus: int | None = None
    tp: int | None = None
    pp: int | None = None
    replicas: int | None = None
    nodes: int | None = None
    families: tuple[str, ...] = ()
    exclude_families: tuple[str, ...] = ()
    max_usd_per_hour: float | None = None
    min_tokens_per_s: float | None = None
    max_ttft_s: float | None = None
    sort: str = "cost"
    model_note: Note | None = None
    # the memory flags, vision, drafting and LoRA as the plan used them (issue 10)
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    enforce_eager: bool = False
    cpu_offload_gb: float | None = None
    kv_cache_memory_bytes: int | None = None
    offline: bool = False
    text_only: bool = False
    draft: str | None = None
    speculative_tokens: int | None = None
    max_loras: int | None = None
    lora_rank: int | None = None


class ModelSummary(NamedTuple):
    id: str
    name: str
    params_b: float
    active_params_b: float
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    attention: str  # mha | gqa | mla
    kv_lora_rank: int | None  # MLA latent width
    rope_dim: int | None  # MLA rope part
    sliding_layers: int  # layers with a sliding window (0: none)
    window: int | None
    experts: int | None  # MoE routed experts
    active_experts: int | None
    max_context: int
    weight_layout: str  # the weight format's dtype: how its tensors are stored (templates word it)
    source: str


class Budget(NamedTuple):
    weights_gib: float
    weights_by_group_gib: dict[str, float]
    kv_bytes_per_token: int
    kv_gib_per_sequence: float
    kv_gib_total: float  # for the requested concurrency (or one sequence for "max")


class Candidate(NamedTuple):
    rank: int
    instance: str | None  # what the answer calls it: "g6e.12xlarge", "2 × p5.48xlarge", None for bare GPUs
    instance_type: str | None  # the EC2 type ("p5.48xlarge"), never parsed out of `instance`
    family: str | None
    gpu: str
    gpu_id: str
    gpu_count: int
    gpu_memory_gib: float  # visible to CUDA, per GPU
    gpu_memory_aws_gib: float  # what AWS lists per GPU
    interconnect: str
    nodes: int
    tp: int
    pp: int
    replicas: int
    verdict: Verdict
    feasible: bool
    meets_targets: bool
    weights_gib_per_gpu: float
    activation_gib_per_gpu: float
    non_torch_gib_per_gpu: float
    cudagraph_gib_per_gpu: float
    moe_workspace_gib_per_gpu: float  # of the activation: the fused-MoE kernel's workspace, kept after the profile
    usable_gib_per_gpu: float
    kv_cache_gib_per_gpu: float
    kv_cache_tokens: int
    max_concurrency: float
    kv_needed_gib_per_gpu: float
    headroom_gib_per_gpu: float
    batch: int
    decode_bound: str | None  # "memory" or "compute" at the planned batch
    weights_gib_read_per_step: float | None  # per GPU per decode step (MoE: only the experts the batch touches)
    kv_gib_read_per_step: float | None  # per GPU per decode step, the whole batch
    gpu_bandwidth_gbps: float | None
    decode_tokens_per_s_per_user: float | None
    throughput_tokens_per_s: float | None
    ttft_s: float | None
    usd_per_hour: float | None
    usd_per_million_tokens: float | None
    price_note: str | None  # the catalog's note on this instance's price
    reasons: list[Note]
    caveats: list[Note]
    vllm_command: str | None
    usd_per_hour_spot: float | None = None  # the region's latest spot price (only after a catalog refresh)


class RegionPick(NamedTuple):
    """One region's cheapest instance that serves the request (a row of "cheapest region for ...")."""

    region: str
    name: str
    instance: str
    usd_per_hour: float
    usd_per_hour_spot: float | None
    usd_per_million_tokens: float | None


class NotEvaluated(NamedTuple):
    instances: tuple[str, ...]
    reason: Note


class WhyNot(NamedTuple):
    """The answer to "why not X?": where X ranked and what failed."""

    instance: str
    rank: int
    verdict: str
    reasons: tuple[Note, ...]
    top: str | None


class Plan(NamedTuple):
    request: NormalisedRequest
    model: ModelSummary
    budget: Budget
    candidates: list[Candidate]
    not_evaluated: list[NotEvaluated]
    warnings: list[Note]
    assumptions: list[Note]
    catalog_as_of: dict[str, str]
    catalog_version: str
    why_not: WhyNot | None = None
    fixes: tuple[Note, ...] = ()  # levers for a tight or failed plan, each re-planned (engine/advice.py)
    price_region: str = "us-east-1"  # the region the catalog's prices are for
    regions: tuple[RegionPick, ...] = ()  # "cheapest region for ...": regions, cheapest fitting instance first
    schema_version: int = SCHEMA_VERSION

    @property
    def top(self) -> Candidate | None:
        """The best pick that loads and meets the request's targets, if any does."""
        return next((c for c in self.candidates if c.feasible and c.meets_targets), None)


def plan_json(plan: Plan, say: Callable[[Note], object] | None = None) -> dict[str, Any]:
    """The `headroom plan --json` object (docs/plan-json.md); floats to 3 decimals, notes with their words.

    Notes become {"code", their numbers, and "text": whatever ``say`` returns for the note (its words, or a
    slot that ``bot.note_words`` fills)}. Written for speed (a plan holds ~4,000 values and every `headroom
    plan --json` converts them): exact-type checks first, a dataclass's field names looked up once per call.
    """
    names: dict[type, tuple[str, ...]] = {}

    def plain(value: object, words: bool = True) -> object:
        kind = type(value)
        if kind is str or kind is int or kind is bool or value is None:
            return value
        if kind is float:
            return round(value, 3)  # type: ignore[call-overload]
        if kind is Note:
            data = as_json(value)  # type: ignore[arg-type]
            if say is not None and words:
                data["text"] = say(value)  # type: ignore[arg-type]
            return plain(data, False)
        if isinstance(value, dict):
            return {k: plain(v, words) for k, v in value.items()}
        if isinstance(value, tuple) and hasattr(kind, "_fields"):  # a NamedTuple record: an object, like a dataclass
            return {name: plain(v, words) for name, v in zip(kind._fields, value, strict=True)}  # type: ignore[attr-defined]
        if isinstance(value, list | tuple):
            return [plain(v, words) for v in value]
        found = names.get(kind)
        if found is None:
            if not hasattr(kind, "__dataclass_fields__"):
                return value
            from dataclasses import fields  # a dataclass (a diagnosis's records): dataclasses is loaded already

            found = names[kind] = tuple(f.name for f in fields(kind))  # type: ignore[arg-type]
        return {name: plain(getattr(value, name), words) for name in found}

    return plain(plan)  # type: ignore[return-value]
