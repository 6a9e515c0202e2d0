"""Load and validate the bundled catalog data files (models, GPUs, instances, vLLM behaviour)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from engine.catalog.schema import GpuFile, GpuSpec, InstanceFile, InstanceSpec, ModelFile, ModelSpec
from engine.errors import CatalogError

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VllmVersion(_Frozen):
    version: str
    gpu_memory_utilization: float
    subtract_cudagraph_estimate: bool
    tokens_from_concurrency: bool
    source: str


class BatchDefaults(_Frozen):
    max_num_batched_tokens: int
    max_num_seqs: int


class Batching(_Frozen):
    large_gpu_min_gib: float
    small_arch_excluded: list[str]
    large: BatchDefaults
    small: BatchDefaults


class Fitted(_Frozen):
    activation_base_gib: float
    sampler_bytes_per_logit: float
    non_torch_single_gib: float
    non_torch_pp_only_gib: float
    non_torch_tp_base_gib: float
    non_torch_tp_per_rank_gib: float
    cudagraph_base_gib: float
    cudagraph_gib_per_layer: float


class Performance(_Frozen):
    step_overhead_ms: float
    allreduce_latency_us: dict[str, float]
    pcie_gbps_by_gen: dict[int, float]
    efa_gbps_per_gpu: float


class VllmFile(_Frozen):
    as_of: str
    default_version: str
    newest_modelled: str
    block_size: int
    versions: list[VllmVersion]
    batching: Batching
    fitted: Fitted
    performance: Performance


class Efficiencies(_Frozen):
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


@dataclass(frozen=True, eq=False)
class Catalog:
    """Everything the engine knows about the world; hashed by identity so lookups can be cached."""

    models: tuple[ModelSpec, ...]
    gpus: dict[str, GpuSpec]
    instances: dict[str, InstanceSpec]
    vllm: VllmFile
    efficiencies: Efficiencies
    as_of: dict[str, str]
    region: str
    digest: str
    sources: dict[str, str] = field(default_factory=dict)

    def gpu(self, gpu_id: str) -> GpuSpec:
        return self.gpus[gpu_id]

    def vllm_version(self, version: str) -> VllmVersion:
        wanted = version_key(version)
        usable = [v for v in self.vllm.versions if version_key(v.version) <= wanted]
        if not usable:
            oldest = self.vllm.versions[0].version
            raise CatalogError(f"vLLM {version} predates the oldest modelled behaviour ({oldest})")
        return max(usable, key=lambda v: version_key(v.version))


def _read(name: str) -> tuple[str, object]:
    text = resources.files("engine.catalog").joinpath("data", name).read_text(encoding="utf-8")
    return text, yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 - a safe loader


def _validate(kind: type[BaseModel], name: str, data: object) -> BaseModel:
    try:
        return kind.model_validate(data)
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


@cache
def load_catalog() -> Catalog:
    """Read every data file once; raise CatalogError naming the file and field on bad data."""
    digest = hashlib.sha256()
    models: list[ModelSpec] = []
    model_dir = resources.files("engine.catalog").joinpath("data", "models")
    model_as_of = []
    for entry in sorted(model_dir.iterdir(), key=lambda p: p.name):
        if not entry.name.endswith(".yaml"):
            continue
        text, data = _read(f"models/{entry.name}")
        digest.update(text.encode())
        parsed = _validate(ModelFile, entry.name, data)
        assert isinstance(parsed, ModelFile)
        models.extend(parsed.models)
        model_as_of.append(parsed.as_of)
    ids = [m.id.lower() for m in models]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        raise CatalogError(f"models listed twice: {sorted(duplicates)}")

    gpu_text, gpu_data = _read("gpus.yaml")
    inst_text, inst_data = _read("instances.yaml")
    vllm_text, vllm_data = _read("vllm.yaml")
    meas_text, meas_data = _read("h100_measurements.yaml")
    for text in (gpu_text, inst_text, vllm_text, meas_text):
        digest.update(text.encode())
    gpu_file = _validate(GpuFile, "gpus.yaml", gpu_data)
    inst_file = _validate(InstanceFile, "instances.yaml", inst_data)
    vllm_file = _validate(VllmFile, "vllm.yaml", vllm_data)
    assert isinstance(gpu_file, GpuFile) and isinstance(inst_file, InstanceFile) and isinstance(vllm_file, VllmFile)

    gpus = {g.id: g for g in gpu_file.gpus}
    for inst in inst_file.instances:
        if inst.gpu not in gpus:
            raise CatalogError(f"instances.yaml: {inst.name} names unknown gpu {inst.gpu!r}")
    return Catalog(
        models=tuple(models),
        gpus=gpus,
        instances={i.name: i for i in inst_file.instances},
        vllm=vllm_file,
        efficiencies=_efficiencies(meas_data),  # type: ignore[arg-type]
        as_of={
            "models": max(model_as_of) if model_as_of else "",
            "gpus": gpu_file.as_of,
            "instance_specs": inst_file.as_of.get("specs", ""),
            "prices": inst_file.as_of.get("prices", ""),
            "vllm": vllm_file.as_of,
        },
        region=inst_file.region,
        digest=digest.hexdigest()[:12],
        sources={**gpu_file.sources, **inst_file.sources},
    )
