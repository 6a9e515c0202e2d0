"""The records of the catalog data files, and the limits each field must meet.

The YAML files under ``data/`` are the only place where figures about models,
accelerators and instances live; ``loader.py`` validates them with pydantic against these
classes (extra keys forbidden, ``Bounds`` and the ``_check`` hooks enforced) so that a typo in a
data file fails loudly instead of skewing a plan. They are NamedTuples, not pydantic models:
a start-up rebuilds the catalog from its compiled form without importing pydantic (issue 14),
and a NamedTuple class costs a fraction of a dataclass's to define.
"""

from typing import Annotated, Any, Literal, NamedTuple

from engine.constraints import Bounds

NativeDtype = Literal["fp32", "fp16", "bf16", "fp8", "mxfp4", "int8", "int4", "fp4"]  # the last three: Hub checkpoints


_POSITIVE = Bounds(gt=0)
_COUNT = Bounds(ge=0)


def _after(check: Any, schema: Any) -> Any:
    """pydantic's schema of a record, then ``check`` on the validated record (a ValueError is reported by
    pydantic with the record's location); only called where pydantic validates."""
    from pydantic_core import core_schema

    return core_schema.no_info_after_validator_function(check, schema)


class Moe(NamedTuple):
    experts: Annotated[int, Bounds(gt=1)]
    active: Annotated[int, _POSITIVE]
    expert_intermediate: Annotated[int, _POSITIVE]
    shared_experts: Annotated[int, _COUNT] = 0
    shared_intermediate: Annotated[int, _COUNT] = 0
    layer_step: Annotated[int, Bounds(ge=1)] = 1
    first_dense_layers: Annotated[int, _COUNT] = 0


class Mla(NamedTuple):
    kv_lora_rank: Annotated[int, _POSITIVE]
    qk_nope_head_dim: Annotated[int, _POSITIVE]
    qk_rope_head_dim: Annotated[int, _POSITIVE]
    v_head_dim: Annotated[int, _POSITIVE]
    q_lora_rank: int | None = None


class SlidingWindow(NamedTuple):
    window: Annotated[int, _POSITIVE]
    sliding_layers: Annotated[int, _COUNT]


class ChunkedAttention(NamedTuple):
    chunk: Annotated[int, _POSITIVE]
    chunked_layers: Annotated[int, _COUNT]


class LinearAttention(NamedTuple):
    """Gated-DeltaNet style layers: a fixed-size state per sequence, no per-token KV."""

    linear_layers: Annotated[int, _POSITIVE]
    key_heads: Annotated[int, _POSITIVE]
    value_heads: Annotated[int, _POSITIVE]
    key_head_dim: Annotated[int, _POSITIVE]
    value_head_dim: Annotated[int, _POSITIVE]
    conv_kernel: Annotated[int, _POSITIVE] = 4


# --- issue 10: vision towers and MTP heads --------------------------------------------------


class Vision(NamedTuple):
    """A vision encoder as vLLM's start-up profile runs it (why: its dummy batch sets the activation peak).

    Shapes come from the checkpoint's vision_config; the per-item figures are what the model's
    multimodal processor reports as its largest item (vLLM ``get_mm_max_tokens_per_item``).
    """

    layers: Annotated[int, _POSITIVE]
    hidden: Annotated[int, _POSITIVE]
    intermediate: Annotated[int, _POSITIVE]
    patches_per_item: Annotated[int, _POSITIVE]  # encoder positions of the largest item (every tile / frame)
    tokens_per_item: Annotated[int, _POSITIVE]  # embeddings that item hands the language model
    values_per_patch: Annotated[int, _POSITIVE]  # pixel values one patch carries: channels x patch^2 (x frames)
    source: str
    mlp: Literal["gated", "plain"] = "plain"
    modalities: list[Literal["image", "video"]] = ["image"]  # what --limit-mm-per-prompt names
    #: first vLLM version whose `--limit-mm-per-prompt` of 0 skips building the tower (None: never seen to)
    tower_skippable_from: str | None = None


class Arch(NamedTuple):
    layers: Annotated[int, _POSITIVE]
    hidden: Annotated[int, _POSITIVE]
    heads: Annotated[int, _POSITIVE]
    kv_heads: Annotated[int, _POSITIVE]
    head_dim: Annotated[int, _POSITIVE]
    intermediate: Annotated[int, _COUNT]
    vocab: Annotated[int, _POSITIVE]
    tied_embeddings: bool
    max_context: Annotated[int, _POSITIVE]
    rope_max_positions: int | None = None
    mlp: Literal["gated", "plain"] = "gated"
    attention_bias: bool = False
    moe: Moe | None = None
    mla: Mla | None = None
    sliding_window: SlidingWindow | None = None
    chunked_attention: ChunkedAttention | None = None
    linear_attention: LinearAttention | None = None
    vision_params: Annotated[int, _COUNT] = 0
    vision: Vision | None = None  # issue 10: the tower's shape for the multimodal profile
    mtp_layers: Annotated[int, _COUNT] = 0  # issue 10: num_nextn_predict_layers shipped in the checkpoint

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        return _after(_consistent_arch, handler(source))


def _consistent_arch(arch: Arch) -> Arch:
    if arch.heads % arch.kv_heads and not arch.mla:
        raise ValueError(f"heads {arch.heads} not a multiple of kv_heads {arch.kv_heads}")
    for part, count in (
        ("sliding_window.sliding_layers", arch.sliding_window and arch.sliding_window.sliding_layers),
        ("linear_attention.linear_layers", arch.linear_attention and arch.linear_attention.linear_layers),
    ):
        if count and count > arch.layers:
            raise ValueError(f"{part}={count} exceeds layers={arch.layers}")
    if arch.vision and not arch.vision_params:
        raise ValueError("a vision tower without vision_params")  # issue 10
    return arch


class ModelSpec(NamedTuple):
    id: str
    name: str
    family: str
    size: str
    source: str
    published_params_b: Annotated[float, _POSITIVE]
    params_source: str
    dtype: NativeDtype
    arch: Arch
    aliases: list[str] = []
    #: FP8 weights scaled per N x N block (config quantization_config.weight_block_size): TP shards must be whole blocks
    weight_block: Annotated[int | None, _POSITIVE] = None
    notes: str = ""
    unconfirmed: list[str] = []
    #: a model read from the Hub (engine/hub_model.py): the commit its files were read at, and its quantization method
    hub_revision: str | None = None
    hub_method: str | None = None


class ModelFile(NamedTuple):
    as_of: str
    models: list[ModelSpec]


class GpuSpec(NamedTuple):
    id: str
    name: str
    vendor: Literal["nvidia", "amd", "aws"]
    architecture: str
    compute_capability: str | None
    memory_gib: Annotated[float, _POSITIVE]
    dtypes: list[str]
    runtime: Literal["cuda", "rocm", "neuron", "none"]
    aliases: list[str] = []
    #: aliases that also fit another part ("a100": 40 or 80 GB): resolved here, and the answer says so
    ambiguous_aliases: list[str] = []
    memory_cuda_gib: float | None = None
    memory_cuda_source: str | None = None
    memory_type: str | None = None
    bandwidth_gbps: Annotated[float | None, _POSITIVE] = None
    tflops_bf16: float | None = None
    tflops_fp16: float | None = None
    tflops_fp8: float | None = None
    tflops_fp4: float | None = None
    nvlink_gbps: float | None = None
    pcie_gen: int | None = None
    sources: list[str] = []
    unconfirmed: list[str] = []
    notes: str = ""

    @property
    def capability(self) -> tuple[int, int] | None:
        if not self.compute_capability:
            return None
        major, minor = self.compute_capability.split(".")
        return int(major), int(minor)


class GpuFile(NamedTuple):
    as_of: str
    sources: dict[str, str]
    gpus: list[GpuSpec]


class InstanceSpec(NamedTuple):
    name: str
    family: str
    gpu: str
    gpu_count: Annotated[int, _POSITIVE]
    interconnect: Literal["nvlink", "pcie", "neuronlink", "none"]
    gpu_fraction: Annotated[float, Bounds(gt=0, le=1)] = 1.0
    memory_mib_per_gpu: Annotated[float | None, _POSITIVE] = None
    vcpu: int | None = None
    ram_gib: float | None = None
    network_gbps: float | None = None
    local_nvme_gb: float | None = None
    interconnect_note: str | None = None
    host_arch: Literal["x86_64", "arm64"] = "x86_64"
    price_usd_per_hour: Annotated[float | None, _POSITIVE] = None
    price_note: str | None = None
    sources: list[str] = []
    unconfirmed: list[str] = []


class InstanceFile(NamedTuple):
    as_of: dict[str, str]
    region: str
    sources: dict[str, str]
    instances: list[InstanceSpec]


class ShapesFile(NamedTuple):
    """Which families a bare size ("70B") is read as: the most-deployed dense GQA models, first preferred."""

    as_of: str
    source: str
    bare_size_families: Annotated[list[str], Bounds(min_length=1)]


class Release(NamedTuple):
    """A pre-quantized checkpoint of a catalog model on the Hub (data/releases.yaml)."""

    model: str
    weights: Literal["fp8", "int8", "int4", "fp4", "mxfp4"]
    repo: Annotated[str, Bounds(pattern=r"^[\w.\-]+/[\w.\-]+$")]
    method: Literal["awq", "gptq", "compressed-tensors", "fp8", "modelopt", "mxfp4"]
    source: str
    resolves: bool
    #: FP8 weights scaled per N x N block (quantization_config.weight_block_size): TP shards must be whole blocks
    weight_block: Annotated[int | None, _POSITIVE] = None
    note: str = ""


class ReleasesFile(NamedTuple):
    as_of: str
    releases: list[Release]


# --- regions (issue 12): which types each region offers, at what price ------------------------


class RegionSpec(NamedTuple):
    """One AWS region: what EC2 offers there (DescribeInstanceTypeOfferings) and its prices."""

    code: Annotated[str, Bounds(pattern=r"^[a-z]{2}(-gov)?-[a-z]+-\d$")]
    name: str
    #: every catalog type offered there -> on-demand Linux USD/hour (null: offered, no price in the snapshot)
    offered: dict[str, float | None]
    #: place names a question may use for it ("frankfurt"), lower case
    places: list[str] = []
    #: latest spot price per type, USD/hour (only after `headroom catalog refresh`)
    spot: dict[str, float] = {}

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        return _after(_positive_prices, handler(source))


def _positive_prices(region: RegionSpec) -> RegionSpec:
    for kind, prices in (("offered", region.offered), ("spot", region.spot)):
        bad = [t for t, p in prices.items() if p is not None and p <= 0]
        if bad:
            raise ValueError(f"{region.code}: {kind} prices must be positive: {bad}")
    unoffered = sorted(set(region.spot) - set(region.offered))
    if unoffered:
        raise ValueError(f"{region.code}: spot prices for types not offered there: {unoffered}")
    return region


class RegionsFile(NamedTuple):
    """data/regions.yaml, or a refreshed copy of it (`headroom catalog refresh`)."""

    as_of: dict[str, str]  # prices, offerings, spot (when present)
    sources: dict[str, str]
    regions: Annotated[list[RegionSpec], Bounds(min_length=1)]
    refreshed: bool = False
