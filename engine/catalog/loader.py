"""Load and validate the bundled catalog data files (models, GPUs, instances, vLLM behaviour).

Pure pieces, so that a caller outside engine/ can cache the validated result: the digest of the file texts
(read by bot/catalog_files.py) and a full build (YAML + pydantic, both imported only for it);
``engine/catalog/compiled.py`` holds the compiled form.
"""

import hashlib
from collections.abc import Mapping
from typing import NamedTuple, TypeVar

from engine.catalog.schema import (
    GpuFile,
    GpuSpec,
    InstanceFile,
    InstanceSpec,
    ModelFile,
    ModelSpec,
    RegionsFile,
    RegionSpec,
    ReleasesFile,
    ShapesFile,
)
from engine.errors import CatalogError
from engine.memo import Memo

_REQUIRED = ("gpus.yaml", "instances.yaml", "vllm.yaml", "h100_measurements.yaml", "shapes.yaml", "releases.yaml")


Record = TypeVar("Record")


class VllmVersion(NamedTuple):
    version: str
    gpu_memory_utilization: float
    subtract_cudagraph_estimate: bool
    tokens_from_concurrency: bool
    source: str
    #: model runner V2 is the default for dense attention models and reserves no CUDA-graph estimate (0.25-0.28)
    dense_runner_v2: bool = False


class BatchDefaults(NamedTuple):
    max_num_batched_tokens: int
    max_num_seqs: int


class Batching(NamedTuple):
    large_gpu_min_gib: float
    large_excluded_device_names: list[str]
    large: BatchDefaults
    small: BatchDefaults
    offline_large: BatchDefaults
    offline_small: BatchDefaults
    #: from `huge_from`, a device of at least `huge_gpu_min_gib` gets `huge` under vllm serve and LLM() alike
    huge_gpu_min_gib: float
    huge_from: str
    huge: BatchDefaults


class Allreduce(NamedTuple):
    """When vLLM's custom all-reduce is set up, and what it allocates."""

    custom_world_sizes: list[int]
    custom_buffer_mib: float
    source: str


class Fitted(NamedTuple):
    activation_base_gib: float
    sampler_bytes_per_logit: float
    non_torch_single_gib: float
    non_torch_pp_only_gib: float
    non_torch_tp_base_gib: float
    non_torch_tp_per_rank_gib: float
    non_torch_tp_pcie_gib: float
    cudagraph_base_gib: float
    cudagraph_gib_per_layer: float


class Performance(NamedTuple):
    step_overhead_ms: float
    allreduce_latency_us: dict[str, float]
    pcie_gbps_by_gen: dict[int, float]


class Kernels(NamedTuple):
    """Which GPUs vLLM's kernels accept, for every modelled version (all are newer than the changes cited)."""

    #: weight-only Marlin kernels (FP8, NVFP4, INT4 GPTQ/AWQ) need at least this compute capability
    marlin_min_capability: str
    #: model families vLLM refuses to run in float16 (numerical instability)
    fp16_refused_families: list[str]
    source: str


class VllmFile(NamedTuple):
    as_of: str
    default_version: str
    newest_modelled: str
    block_size: int
    versions: list[VllmVersion]
    batching: Batching
    allreduce: Allreduce
    fitted: Fitted
    performance: Performance
    kernels: Kernels


class Efficiencies(NamedTuple):
    """Fractions of datasheet bandwidth / FLOPS reached in practice, derived from measurements."""

    weight_stream: dict[str, float]  # by weight dtype family: "16bit", "8bit"
    kv_read: float
    gemm: dict[str, float]  # "16bit", "8bit"
    source: str


def version_key(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in version.split(".")[:3])
    except ValueError as exc:
        raise CatalogError(f"not a vLLM version: {version!r}") from exc


class Catalog:
    """Everything the engine knows about the world; equal only to itself, so lookups can be cached in its memo.

    A frozen plain class rather than a dataclass (see engine/notes.py): its fields are set once, here.
    """

    #: the fields, then the memo: derived indexes and per-model byte counts, computed on first use; bounded and
    #: thread-safe, owned here (a ``replace`` gets a new one)
    __slots__ = ("models", "gpus", "instances", "vllm", "efficiencies", "as_of", "region", "digest", "sources",
                 "bare_size_families", "releases", "weight_blocks", "regions", "regions_refreshed", "memo")  # fmt: skip

    models: tuple[ModelSpec, ...]
    gpus: dict[str, GpuSpec]
    instances: dict[str, InstanceSpec]
    vllm: VllmFile
    efficiencies: Efficiencies
    as_of: dict[str, str]
    region: str
    digest: str
    sources: dict[str, str]
    #: model families whose dense GQA shapes stand for a bare size ("70B"), first preferred (data/shapes.yaml)
    bare_size_families: tuple[str, ...]
    #: pre-quantized checkpoints on the Hub: model id -> weight format -> repo id (data/releases.yaml)
    releases: dict[str, dict[str, str]]
    #: checkpoint repo id -> block size of its block-quantized FP8 weights (releases.yaml, models' weight_block)
    weight_blocks: dict[str, int]
    #: per region: the types EC2 offers there and their prices (data/regions.yaml or a refreshed copy)
    regions: dict[str, RegionSpec]
    #: the regions data came from `headroom catalog refresh`, not the shipped snapshot
    regions_refreshed: bool
    memo: Memo

    def __init__(
        self, *, models: tuple[ModelSpec, ...], gpus: dict[str, GpuSpec], instances: dict[str, InstanceSpec],
        vllm: VllmFile, efficiencies: Efficiencies, as_of: dict[str, str], region: str, digest: str,
        sources: dict[str, str] | None = None, bare_size_families: tuple[str, ...] = (),
        releases: dict[str, dict[str, str]] | None = None, weight_blocks: dict[str, int] | None = None,
        regions: dict[str, RegionSpec] | None = None, regions_refreshed: bool = False,
    ) -> None:  # fmt: skip
        values = (models, gpus, instances, vllm, efficiencies, as_of, region, digest, sources or {}, bare_size_families,
                  releases or {}, weight_blocks or {}, regions or {}, regions_refreshed, Memo(4096))  # fmt: skip
        for name, value in zip(self.__slots__, values, strict=True):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"a Catalog does not change ({name}); use replace()")

    def replace(self, **changes: object) -> "Catalog":
        """This catalog with some fields changed, and a memo of its own (nothing derived from the old one is kept)."""
        fields = {name: getattr(self, name) for name in self.__slots__ if name != "memo"}
        return Catalog(**{**fields, **changes})  # type: ignore[arg-type]

    def __repr__(self) -> str:
        return f"Catalog({len(self.models)} models, {len(self.instances)} instances, digest {self.digest})"

    def gpu(self, gpu_id: str) -> GpuSpec:
        return self.gpus[gpu_id]

    def vllm_version(self, version: str) -> VllmVersion:
        wanted = version_key(version)
        usable = [v for v in self.vllm.versions if version_key(v.version) <= wanted]
        if not usable:
            oldest = self.vllm.versions[0].version
            raise CatalogError(f"vLLM {version} predates the oldest modelled behaviour ({oldest})")
        return max(usable, key=lambda v: version_key(v.version))


def sources_digest(sources: Mapping[str, str]) -> str:
    """sha256 (hex) of every name and text: changes when any data file is added, removed, renamed or edited."""
    digest = hashlib.sha256()
    for name, text in sorted(sources.items()):
        data = text.encode()
        # length-prefixed, so no two different sets of files hash the same bytes
        digest.update(f"{len(name)}:{name}:{len(data)}:".encode())
        digest.update(data)
    return digest.hexdigest()


def _parse(sources: Mapping[str, str], name: str) -> object:
    import yaml  # only a full build parses YAML; a rebuild from the compiled form never imports it

    if name not in sources:
        raise CatalogError(f"catalog file {name} is missing")
    try:
        return yaml.load(sources[name], Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 - safe
    except yaml.YAMLError as exc:
        raise CatalogError(f"catalog file {name} is not valid YAML:\n{exc}") from exc


def validated(kind: type[Record], data: object) -> Record:
    """``data`` checked against a record class: types, extra keys, ``Bounds`` and the classes' checks.

    Raises pydantic's ValidationError; pydantic is imported here, on a full build or a Hub read only.
    """
    from pydantic import ConfigDict, TypeAdapter

    return TypeAdapter(kind, config=ConfigDict(extra="forbid")).validate_python(data)


def _validate(kind: type[Record], name: str, data: object) -> Record:
    from pydantic import ValidationError

    try:
        return validated(kind, data)
    except ValidationError as exc:
        raise CatalogError(f"catalog file {name} is invalid:\n{exc}") from exc


def _efficiencies(raw: dict) -> Efficiencies:
    """Turn the H100 micro-benchmarks into efficiency fractions of the H100 datasheet."""
    spec_bw = raw["spec"]["bandwidth_gbps"]
    spec_bf16 = raw["spec"]["tflops_bf16"]
    spec_fp8 = raw["spec"]["tflops_fp8"]

    def median(values: list[float]) -> float:
        ordered = sorted(values)
        mid = len(ordered) // 2
        return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2

    gemm = raw["gemm"]
    stream = {
        "16bit": median([g["weight_GBps"] for g in gemm if not g["fp8"] and g["M"] <= 64]) / spec_bw,
        "8bit": median([g["weight_GBps"] for g in gemm if g["fp8"] and g["M"] <= 64]) / spec_bw,
    }
    compute = {
        "16bit": median([g["TFLOPs"] for g in gemm if not g["fp8"] and g["M"] >= 1024]) / spec_bf16,
        "8bit": median([g["TFLOPs"] for g in gemm if g["fp8"] and g["M"] >= 1024]) / spec_fp8,
    }
    kv = median([a["kv_GBps"] for a in raw["attention"] if a["B"] >= 16]) / spec_bw
    return Efficiencies(weight_stream=stream, kv_read=kv, gemm=compute, source=raw["source"])


def _measured(data: object) -> Efficiencies:
    try:
        return _efficiencies(data)  # type: ignore[arg-type]
    except (KeyError, IndexError, TypeError, ZeroDivisionError) as exc:
        raise CatalogError(f"catalog file h100_measurements.yaml is invalid:\n{type(exc).__name__}: {exc}") from exc


def build_catalog(sources: Mapping[str, str]) -> Catalog:
    """Parse and fully validate the data files; raise CatalogError naming the file and field on bad data."""
    models: list[ModelSpec] = []
    model_as_of = []
    for name in sorted(n for n in sources if n.startswith("models/") and n.endswith(".yaml")):
        parsed = _validate(ModelFile, name.removeprefix("models/"), _parse(sources, name))
        assert isinstance(parsed, ModelFile)
        models.extend(parsed.models)
        model_as_of.append(parsed.as_of)
    ids = [m.id.lower() for m in models]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        raise CatalogError(f"models listed twice: {sorted(duplicates)}")

    gpu_data, inst_data, vllm_data, meas_data, shape_data, release_data = (_parse(sources, n) for n in _REQUIRED)
    gpu_file = _validate(GpuFile, "gpus.yaml", gpu_data)
    inst_file = _validate(InstanceFile, "instances.yaml", inst_data)
    vllm_file = _validate(VllmFile, "vllm.yaml", vllm_data)
    shapes = _validate(ShapesFile, "shapes.yaml", shape_data)
    assert isinstance(gpu_file, GpuFile) and isinstance(inst_file, InstanceFile) and isinstance(vllm_file, VllmFile)
    assert isinstance(shapes, ShapesFile)
    releases, weight_blocks = _releases(release_data, {m.id for m in models})
    weight_blocks.update({m.id: m.weight_block for m in models if m.weight_block})
    unknown_families = set(shapes.bare_size_families) - {m.family for m in models}
    if unknown_families:
        raise CatalogError(f"shapes.yaml: no model of family {sorted(unknown_families)}")

    gpus = {g.id: g for g in gpu_file.gpus}
    for inst in inst_file.instances:
        if inst.gpu not in gpus:
            raise CatalogError(f"instances.yaml: {inst.name} names unknown gpu {inst.gpu!r}")
    regions = _regions(sources, {i.name for i in inst_file.instances})
    return Catalog(
        models=tuple(models),
        gpus=gpus,
        instances={i.name: i for i in inst_file.instances},
        vllm=vllm_file,
        efficiencies=_measured(meas_data),
        as_of={
            "models": max(model_as_of) if model_as_of else "",
            "gpus": gpu_file.as_of,
            "instance_specs": inst_file.as_of.get("specs", ""),
            "prices": inst_file.as_of.get("prices", ""),
            "vllm": vllm_file.as_of,
            **({f"region_{k}": v for k, v in regions.as_of.items()} if regions else {}),
        },
        region=inst_file.region,
        digest=sources_digest(sources)[:12],
        sources={**gpu_file.sources, **inst_file.sources},
        bare_size_families=tuple(shapes.bare_size_families),
        releases=releases,
        weight_blocks=weight_blocks,
        regions={r.code: r for r in regions.regions} if regions else {},
        regions_refreshed=bool(regions and regions.refreshed),
    )


def parse_regions(text: str, known: set[str] | None = None) -> RegionsFile:
    """A regions.yaml (shipped or refreshed), validated; types not in the catalog (``known``) are refused."""
    parsed = _validate(RegionsFile, "regions.yaml", _parse({"regions.yaml": text}, "regions.yaml"))
    assert isinstance(parsed, RegionsFile)
    codes = [r.code for r in parsed.regions]
    if len(set(codes)) != len(codes):
        raise CatalogError(f"regions.yaml: a region is listed twice: {sorted(c for c in codes if codes.count(c) > 1)}")
    for region in parsed.regions:
        unknown = sorted(set(region.offered) - known) if known is not None else []
        if unknown:
            raise CatalogError(f"regions.yaml: {region.code} offers types not in instances.yaml: {unknown}")
    return parsed


def _regions(sources: Mapping[str, str], known: set[str]) -> RegionsFile | None:
    return parse_regions(sources["regions.yaml"], known) if "regions.yaml" in sources else None


def _releases(data: object, model_ids: set[str]) -> tuple[dict[str, dict[str, str]], dict[str, int]]:
    """model -> weight format -> repo (the first release listed per pair that maps back to its model),
    and repo -> FP8 block size for the block-quantized ones."""
    parsed = _validate(ReleasesFile, "releases.yaml", data)
    assert isinstance(parsed, ReleasesFile)
    found: dict[str, dict[str, str]] = {}
    for release in parsed.releases:
        if release.model not in model_ids:
            raise CatalogError(f"releases.yaml: {release.repo} names unknown model {release.model!r}")
        if release.resolves:
            found.setdefault(release.model, {}).setdefault(release.weights, release.repo)
    return found, {r.repo: r.weight_block for r in parsed.releases if r.weight_block}
