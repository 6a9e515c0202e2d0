"""The answer: a Plan of ranked candidates, as plain data (pydantic) for templates and --json."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Verdict = Literal["fits", "tight", "no_kv_room", "does_not_load"]
FEASIBLE: frozenset[str] = frozenset({"fits", "tight"})


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class NormalisedRequest(_Out):
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
    families: list[str] = []
    exclude_families: list[str] = []
    max_usd_per_hour: float | None = None
    min_tokens_per_s: float | None = None
    max_ttft_s: float | None = None
    sort: str = "cost"


class ModelSummary(_Out):
    id: str
    name: str
    params_b: float
    active_params_b: float
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    attention: str  # "GQA 64/8", "MLA", ...
    moe: str | None
    max_context: int
    weight_layout: str
    source: str


class Budget(_Out):
    weights_gib: float
    weights_by_group_gib: dict[str, float]
    kv_bytes_per_token: int
    kv_gib_per_sequence: float
    kv_gib_total: float  # for the requested concurrency (or one sequence for "max")


class Candidate(_Out):
    rank: int
    instance: str | None
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
    usable_gib_per_gpu: float
    kv_cache_gib_per_gpu: float
    kv_cache_tokens: int
    max_concurrency: float
    kv_needed_gib_per_gpu: float
    headroom_gib_per_gpu: float
    batch: int
    decode_tokens_per_s_per_user: float | None
    throughput_tokens_per_s: float | None
    ttft_s: float | None
    usd_per_hour: float | None
    usd_per_million_tokens: float | None
    price_note: str | None
    reasons: list[str]
    caveats: list[str]
    vllm_command: str | None


class NotEvaluated(_Out):
    instances: list[str]
    reason: str


class Plan(_Out):
    request: NormalisedRequest
    model: ModelSummary
    budget: Budget
    candidates: list[Candidate]
    not_evaluated: list[NotEvaluated]
    warnings: list[str]
    assumptions: list[str]
    catalog_as_of: dict[str, str]
    catalog_version: str
    schema_version: int = 1

    @property
    def feasible(self) -> list[Candidate]:
        return [c for c in self.candidates if c.feasible and c.meets_targets]

    @property
    def top(self) -> Candidate | None:
        feasible = self.feasible
        return feasible[0] if feasible else None
