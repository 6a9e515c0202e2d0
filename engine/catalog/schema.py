"""Pydantic models for the catalog data files.

The YAML files under ``data/`` are the only place where figures about models,
accelerators and instances live; these models validate them on load so that a
typo in a data file fails loudly instead of skewing a plan.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

NativeDtype = Literal["fp32", "fp16", "bf16", "fp8", "mxfp4", "int8", "int4", "fp4"]  # the last three: Hub checkpoints


class _Strict(BaseModel):
    # defer_build: core schemas are built on first validation, not at import (a compiled catalog needs none)
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class Moe(_Strict):
    experts: int = Field(gt=1)
    active: int = Field(gt=0)
    expert_intermediate: int = Field(gt=0)
    shared_experts: int = Field(default=0, ge=0)
    shared_intermediate: int = Field(default=0, ge=0)
    layer_step: int = Field(default=1, ge=1)
    first_dense_layers: int = Field(default=0, ge=0)


class Mla(_Strict):
    q_lora_rank: int | None = None
    kv_lora_rank: int = Field(gt=0)
    qk_nope_head_dim: int = Field(gt=0)
    qk_rope_head_dim: int = Field(gt=0)
    v_head_dim: int = Field(gt=0)


class SlidingWindow(_Strict):
    window: int = Field(gt=0)
    sliding_layers: int = Field(ge=0)


class ChunkedAttention(_Strict):
    chunk: int = Field(gt=0)
    chunked_layers: int = Field(ge=0)


class LinearAttention(_Strict):
    """Gated-DeltaNet style layers: a fixed-size state per sequence, no per-token KV."""

    linear_layers: int = Field(gt=0)
    key_heads: int = Field(gt=0)
    value_heads: int = Field(gt=0)
    key_head_dim: int = Field(gt=0)
    value_head_dim: int = Field(gt=0)
    conv_kernel: int = Field(default=4, gt=0)


# --- issue 10: vision towers and MTP heads --------------------------------------------------


class Vision(_Strict):
    """A vision encoder as vLLM's start-up profile runs it (why: its dummy batch sets the activation peak).

    Shapes come from the checkpoint's vision_config; the per-item figures are what the model's
    multimodal processor reports as its largest item (vLLM ``get_mm_max_tokens_per_item``).
    """

    layers: int = Field(gt=0)
    hidden: int = Field(gt=0)
    intermediate: int = Field(gt=0)
    mlp: Literal["gated", "plain"] = "plain"
    patches_per_item: int = Field(gt=0)  # encoder positions of the largest item (every tile / frame)
    tokens_per_item: int = Field(gt=0)  # embeddings that item hands the language model
    values_per_patch: int = Field(gt=0)  # pixel values one patch carries: channels x patch^2 (x frames)
    modalities: list[Literal["image", "video"]] = ["image"]  # what --limit-mm-per-prompt names
    #: first vLLM version whose `--limit-mm-per-prompt` of 0 skips building the tower (None: never seen to)
    tower_skippable_from: str | None = None
    source: str


class Arch(_Strict):
    layers: int = Field(gt=0)
    hidden: int = Field(gt=0)
    heads: int = Field(gt=0)
    kv_heads: int = Field(gt=0)
    head_dim: int = Field(gt=0)
    intermediate: int = Field(ge=0)
    vocab: int = Field(gt=0)
    tied_embeddings: bool
    max_context: int = Field(gt=0)
    rope_max_positions: int | None = None
    mlp: Literal["gated", "plain"] = "gated"
    attention_bias: bool = False
    moe: Moe | None = None
    mla: Mla | None = None
    sliding_window: SlidingWindow | None = None
    chunked_attention: ChunkedAttention | None = None
    linear_attention: LinearAttention | None = None
    vision_params: int = Field(default=0, ge=0)
    vision: Vision | None = None  # issue 10: the tower's shape for the multimodal profile
    mtp_layers: int = Field(default=0, ge=0)  # issue 10: num_nextn_predict_layers shipped in the checkpoint

    @model_validator(mode="after")
    def _consistent(self) -> Arch:
        if self.heads % self.kv_heads and not self.mla:
            raise ValueError(f"heads {self.heads} not a multiple of kv_heads {self.kv_heads}")
        for part, count in (
            ("sliding_window.sliding_layers", self.sliding_window and self.sliding_window.sliding_layers),
            ("linear_attention.linear_layers", self.linear_attention and self.linear_attention.linear_layers),
        ):
            if count and count > self.layers:
                raise ValueError(f"{part}={count} exceeds layers={self.layers}")
        if self.vision and not self.vision_params:
            raise ValueError("a vision tower without vision_params")  # issue 10
        return self


class ModelSpec(_Strict):
    id: str
    name: str
    family: str
    size: str
    aliases: list[str] = []
    source: str
    published_params_b: float = Field(gt=0)
    params_source: str
    dtype: NativeDtype
    arch: Arch
    #: FP8 weights scaled per N x N block (config quantization_config.weight_block_size): TP shards must be whole blocks
    weight_block: int | None = Field(default=None, gt=0)
    notes: str = ""
    unconfirmed: list[str] = []
    #: a model read from the Hub (engine/hub_model.py): the commit its files were read at, and its quantization method
    hub_revision: str | None = None
    hub_method: str | None = None


class ModelFile(_Strict):
    as_of: str
    models: list[ModelSpec]


class GpuSpec(_Strict):
    id: str
    name: str
    aliases: list[str] = []
    #: aliases that also fit another part ("a100": 40 or 80 GB): resolved here, and the answer says so
    ambiguous_aliases: list[str] = []
    vendor: Literal["nvidia", "amd", "aws"]
    architecture: str
    compute_capability: str | None
    memory_gib: float = Field(gt=0)
    memory_cuda_gib: float | None = None
    memory_cuda_source: str | None = None
    memory_type: str | None = None
    bandwidth_gbps: float | None = Field(default=None, gt=0)
    tflops_bf16: float | None = None
    tflops_fp16: float | None = None
    tflops_fp8: float | None = None
    tflops_fp4: float | None = None
    dtypes: list[str]
    nvlink_gbps: float | None = None
    pcie_gen: int | None = None
    runtime: Literal["cuda", "rocm", "neuron", "none"]
    sources: list[str] = []
    unconfirmed: list[str] = []
    notes: str = ""

    @property
    def capability(self) -> tuple[int, int] | None:
        if not self.compute_capability:
            return None
        major, minor = self.compute_capability.split(".")
        return int(major), int(minor)


class GpuFile(_Strict):
    as_of: str
    sources: dict[str, str]
    gpus: list[GpuSpec]


class InstanceSpec(_Strict):
    name: str
    family: str
    gpu: str
    gpu_count: int = Field(gt=0)
    gpu_fraction: float = Field(default=1.0, gt=0, le=1)
    memory_mib_per_gpu: float | None = Field(default=None, gt=0)
    vcpu: int | None = None
    ram_gib: float | None = None
    network_gbps: float | None = None
    local_nvme_gb: float | None = None
    interconnect: Literal["nvlink", "pcie", "neuronlink", "none"]
    interconnect_note: str | None = None
    host_arch: Literal["x86_64", "arm64"] = "x86_64"
    price_usd_per_hour: float | None = Field(default=None, gt=0)
    price_note: str | None = None
    sources: list[str] = []
    unconfirmed: list[str] = []


class InstanceFile(_Strict):
    as_of: dict[str, str]
    region: str
    sources: dict[str, str]
    instances: list[InstanceSpec]


class ShapesFile(_Strict):
    """Which families a bare size ("70B") is read as: the most-deployed dense GQA models, first preferred."""

    as_of: str
    source: str
    bare_size_families: list[str] = Field(min_length=1)


class Release(_Strict):
    """A pre-quantized checkpoint of a catalog model on the Hub (data/releases.yaml)."""

    model: str
    weights: Literal["fp8", "int8", "int4", "fp4", "mxfp4"]
    repo: str = Field(pattern=r"^[\w.\-]+/[\w.\-]+$")
    method: Literal["awq", "gptq", "compressed-tensors", "fp8", "modelopt", "mxfp4"]
    source: str
    resolves: bool
    #: FP8 weights scaled per N x N block (quantization_config.weight_block_size): TP shards must be whole blocks
    weight_block: int | None = Field(default=None, gt=0)
    note: str = ""


class ReleasesFile(_Strict):
    as_of: str
    releases: list[Release]


# --- regions (issue 12): which types each region offers, at what price ------------------------


class RegionSpec(_Strict):
    """One AWS region: what EC2 offers there (DescribeInstanceTypeOfferings) and its prices."""

    code: str = Field(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
    name: str
    #: place names a question may use for it ("frankfurt"), lower case
    places: list[str] = []
    #: every catalog type offered there -> on-demand Linux USD/hour (null: offered, no price in the snapshot)
    offered: dict[str, float | None]
    #: latest spot price per type, USD/hour (only after `headroom catalog refresh`)
    spot: dict[str, float] = {}

    @model_validator(mode="after")
    def _positive(self) -> RegionSpec:
        for kind, prices in (("offered", self.offered), ("spot", self.spot)):
            bad = [t for t, p in prices.items() if p is not None and p <= 0]
            if bad:
                raise ValueError(f"{self.code}: {kind} prices must be positive: {bad}")
        unoffered = sorted(set(self.spot) - set(self.offered))
        if unoffered:
            raise ValueError(f"{self.code}: spot prices for types not offered there: {unoffered}")
        return self


class RegionsFile(_Strict):
    """data/regions.yaml, or a refreshed copy of it (`headroom catalog refresh`)."""

    as_of: dict[str, str]  # prices, offerings, spot (when present)
    sources: dict[str, str]
    refreshed: bool = False
    regions: list[RegionSpec] = Field(min_length=1)
