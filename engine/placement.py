"""Where a model can go: GPU sets (instances, multi-node groups, pinned GPUs) and valid TP splits."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from rapidfuzz import process

from engine.catalog.loader import Catalog
from engine.catalog.resolve import normalise
from engine.catalog.schema import GpuSpec, InstanceSpec
from engine.errors import InvalidRequest, UnknownHardware
from engine.plan import NotEvaluated
from engine.request import Request
from engine.served import ServedModel

MAX_NODES = 4


@dataclass(frozen=True)
class Hardware:
    """A set of identical GPUs to place one model on: an instance, several, or a pinned GPU set."""

    gpu: GpuSpec
    gpus_per_node: int
    nodes: int
    interconnect: str
    instance: InstanceSpec | None
    usd_per_hour: float | None
    price_note: str | None
    label: str | None

    @property
    def gpu_count(self) -> int:
        return self.gpus_per_node * self.nodes


def find_gpu(catalog: Catalog, name: str) -> GpuSpec:
    wanted = normalise(name)
    for gpu in catalog.gpus.values():
        if wanted in {normalise(gpu.id), normalise(gpu.name), *(normalise(a) for a in gpu.aliases)}:
            return gpu
    names = {g.id: g for g in catalog.gpus.values()}
    close = [m[0] for m in process.extract(name, list(names), limit=4) if m[1] >= 50]
    raise UnknownHardware(f"I don't know the GPU '{name}'.", suggestions=close)


def find_instance(catalog: Catalog, name: str) -> InstanceSpec:
    key = name.strip().lower()
    if key in catalog.instances:
        return catalog.instances[key]
    close = [m[0] for m in process.extract(key, list(catalog.instances), limit=4) if m[1] >= 60]
    raise UnknownHardware(f"I don't know the EC2 instance type '{name}'.", suggestions=close)


def _per_gpu_price(catalog: Catalog, gpu: GpuSpec) -> tuple[float | None, str | None]:
    priced = [
        (i.price_usd_per_hour / i.gpu_count, i.name)
        for i in catalog.instances.values()
        if i.gpu == gpu.id and i.price_usd_per_hour and i.gpu_fraction == 1.0
    ]
    if not priced:
        return None, f"no EC2 on-demand price for {gpu.name}"
    price, source = min(priced)
    return price, f"per-GPU share of {source}"


def valid_tp_degrees(served: ServedModel, gpu_count: int) -> list[int]:
    """TP degrees vLLM accepts: they divide the GPU count and the attention heads (and KV heads)."""
    arch = served.arch
    degrees = []
    for tp in range(1, gpu_count + 1):
        if gpu_count % tp or arch.heads % tp:
            continue
        if not arch.mla and arch.kv_heads % tp and tp % arch.kv_heads:
            continue
        degrees.append(tp)
    return degrees


# --- hardware lists ------------------------------------------------------------------------

_NEURON_NOTE = "AWS Neuron accelerators need the Neuron SDK (vLLM's Neuron backend); headroom sizes CUDA GPUs only"


@cache
def _instance_hardware(catalog: Catalog, inst_name: str, nodes: int = 1) -> Hardware:
    inst = catalog.instances[inst_name]
    gpu = catalog.gpu(inst.gpu)
    price = inst.price_usd_per_hour * nodes if inst.price_usd_per_hour else None
    label = inst.name if nodes == 1 else f"{nodes} × {inst.name}"
    interconnect = "nvlink" if inst.interconnect == "nvlink" else ("pcie" if inst.gpu_count > 1 else "none")
    return Hardware(gpu, inst.gpu_count, nodes, interconnect, inst, price, inst.price_note, label)


def _matches_families(req: Request, inst: InstanceSpec) -> bool:
    family = inst.family.lower()
    if req.families and not any(family == f.lower() or inst.name == f.lower() for f in req.families):
        return False
    if any(family == f.lower() or inst.name == f.lower() for f in req.exclude_families):
        return False
    return not (req.single_gpu and inst.gpu_count != 1)


def hardware_options(req: Request, catalog: Catalog) -> tuple[list[Hardware], list[NotEvaluated]]:
    """The GPU sets a request asks to evaluate, and the instances it cannot (Neuron, no CUDA)."""
    if req.gpu:
        gpu = find_gpu(catalog, req.gpu)
        count = req.gpus or req.tp or 1
        price, note = _per_gpu_price(catalog, gpu)
        interconnect = ("nvlink" if gpu.nvlink_gbps else "pcie") if count > 1 else "none"
        return [Hardware(gpu, count, 1, interconnect, None, price * count if price else None, note, None)], []
    if req.compare:
        chosen = [find_instance(catalog, name) for name in req.compare]
        return [
            _instance_hardware(catalog, inst.name) for inst in chosen if catalog.gpu(inst.gpu).runtime == "cuda"
        ], []
    if req.instance:
        inst = find_instance(catalog, req.instance)
        if catalog.gpu(inst.gpu).runtime == "neuron":
            raise InvalidRequest(f"{inst.name}: {_NEURON_NOTE}")
        return [_instance_hardware(catalog, inst.name)], []
    options, neuron, other = [], [], []
    for inst in catalog.instances.values():
        if not _matches_families(req, inst):
            continue
        runtime = catalog.gpu(inst.gpu).runtime
        if runtime == "neuron":
            neuron.append(inst.name)
        elif runtime != "cuda":
            other.append(inst.name)
        else:
            options.append(_instance_hardware(catalog, inst.name))
    if req.why_not:
        asked = find_instance(catalog, req.why_not)
        if asked.name not in {o.instance.name for o in options if o.instance}:
            if catalog.gpu(asked.gpu).runtime == "cuda":
                options.append(_instance_hardware(catalog, asked.name))
            else:
                neuron.append(asked.name)
    skipped = []
    if neuron:
        skipped.append(NotEvaluated(instances=tuple(neuron), reason=_NEURON_NOTE))
    if other:
        skipped.append(
            NotEvaluated(instances=tuple(other), reason="no CUDA GPU (AMD Radeon Pro V520): vLLM does not serve on it")
        )
    if req.families and not options and not neuron:
        raise InvalidRequest(
            f"no GPU instance matches {', '.join(req.families)}; families I know: "
            + ", ".join(sorted({i.family for i in catalog.instances.values()}))
        )
    return options, skipped


def multi_node_options(req: Request, catalog: Catalog) -> list[Hardware]:
    """NVLink instances of 8 GPUs, 2..MAX_NODES of them joined by pipeline parallelism over EFA."""
    found = []
    for inst in catalog.instances.values():
        if inst.interconnect != "nvlink" or inst.gpu_count < 8 or not _matches_families(req, inst):
            continue
        for nodes in range(2, MAX_NODES + 1):
            found.append(_instance_hardware(catalog, inst.name, nodes))
    return found
