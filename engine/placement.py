"""Where a model can go: GPU sets (instances, multi-node groups, pinned GPUs) and valid TP splits."""

from typing import NamedTuple

from engine.catalog.loader import Catalog
from engine.catalog.resolve import normalise
from engine.catalog.schema import GpuSpec, InstanceSpec
from engine.errors import InvalidRequest, UnknownHardware
from engine.notes import Note, note
from engine.plan import NotEvaluated
from engine.request import Request
from engine.served import ServedModel

MAX_NODES = 4


class Hardware(NamedTuple):
    """A set of identical GPUs to place one model on: an instance, several, or a pinned GPU set."""

    gpu: GpuSpec
    gpus_per_node: int
    nodes: int
    interconnect: str
    instance: InstanceSpec | None
    usd_per_hour: float | None
    price_note: str | None  # the catalog's own note on an instance's price (data, not wording)
    label: str | None

    @property
    def gpu_count(self) -> int:
        return self.gpus_per_node * self.nodes

    @property
    def set_key(self) -> tuple[str, int, str, float | None]:
        """The GPU set as the memory model sees it: instances with the same key are assessed once per plan."""
        memory_mib = self.instance.memory_mib_per_gpu if self.instance else None
        return (self.gpu.id, self.gpu_count, self.interconnect, memory_mib)


def find_gpu(catalog: Catalog, name: str) -> GpuSpec:
    wanted = normalise(name)
    for gpu in catalog.gpus.values():
        if wanted in {normalise(gpu.id), normalise(gpu.name), *(normalise(a) for a in gpu.aliases)}:
            return gpu
    from rapidfuzz import process  # only for a miss

    names = {g.id: g for g in catalog.gpus.values()}
    close = [m[0] for m in process.extract(name, list(names), limit=4) if m[1] >= 50]
    raise UnknownHardware("unknown_gpu", suggestions=close, name=name)


def find_instance(catalog: Catalog, name: str) -> InstanceSpec:
    key = name.strip().lower()
    if key in catalog.instances:
        return catalog.instances[key]
    from rapidfuzz import process  # only for a miss

    close = [m[0] for m in process.extract(key, list(catalog.instances), limit=4) if m[1] >= 60]
    raise UnknownHardware("unknown_instance", suggestions=close, name=name)


def valid_tp_degrees(served: ServedModel, gpu_count: int, weight_block: int | None = None) -> list[int]:
    """TP degrees vLLM accepts: they divide the GPU count and the attention heads (and KV heads), and
    for block-quantized FP8 weights every shard is whole blocks."""
    arch = served.arch
    degrees = []
    for tp in range(1, gpu_count + 1):
        if gpu_count % tp or arch.heads % tp:
            continue
        if not arch.mla and arch.kv_heads % tp and tp % arch.kv_heads:
            continue
        if weight_block and split_block(served, tp, weight_block):
            continue
        degrees.append(tp)
    return degrees


def split_block(served: ServedModel, tp: int, block: int) -> tuple[str, int] | None:
    """The first layer width that TP `tp` cuts into shards that are not whole `block`-wide FP8 blocks, or None.

    Mirrors vLLM's fp8_utils.validate_fp8_block_shape (linear layers: a column-parallel output shard
    and a row-parallel input shard must be multiples of the block) and the block-FP8 fused-MoE
    check (each expert's intermediate shard), both of which refuse to load the model otherwise
    (vllm-project/vllm issue 52997). MLA projections and linear-attention layers are not checked.
    """
    if tp == 1:
        return None
    arch, moe = served.arch, served.arch.moe
    widths: list[tuple[str, int]] = []
    if not arch.mla:
        widths += [("attention", arch.heads * arch.head_dim), ("kv", max(arch.kv_heads, tp) * arch.head_dim)]
    if arch.intermediate and (moe is None or moe.first_dense_layers or moe.layer_step > 1):
        widths.append(("mlp", arch.intermediate))
    if moe is not None:
        widths.append(("expert", moe.expert_intermediate))
        if moe.shared_experts and moe.shared_intermediate:
            widths.append(("shared_expert", moe.shared_intermediate * moe.shared_experts))
    for name, width in widths:
        if width % tp or (width // tp) % block:
            return name, width
    return None


# --- hardware lists ------------------------------------------------------------------------

def _instance_hardware(catalog: Catalog, inst_name: str, nodes: int = 1) -> Hardware:
    return catalog.memo.get(("hardware", inst_name, nodes), _build_hardware, catalog, inst_name, nodes)


def _build_hardware(catalog: Catalog, inst_name: str, nodes: int) -> Hardware:
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


class Selection(NamedTuple):
    """The GPU sets to evaluate, the instances that cannot be (Neuron, no CUDA), and what to say about a pin."""

    options: list[Hardware]
    skipped: list[NotEvaluated]
    warnings: list[Note]


def _gpu_pin(req: Request, catalog: Catalog) -> Selection:
    """A pinned GPU set is the EC2 instances that have exactly that set; else the bare set, unpriced, and
    the smallest instances with more of that GPU named (never a price for an instance that does not exist)."""
    gpu = find_gpu(catalog, req.gpu or "")
    assumed = [note("gpu_assumed", name=req.gpu, gpu=gpu.name)] if normalise(req.gpu or "") in {
        normalise(a) for a in gpu.ambiguous_aliases} else []  # fmt: skip
    count = req.gpus or req.tp or 1
    whole = [i for i in catalog.instances.values() if i.gpu == gpu.id and i.gpu_fraction == 1.0]
    exact = [i for i in whole if i.gpu_count == count]
    if exact:
        return Selection([_instance_hardware(catalog, i.name) for i in exact], [], assumed)
    interconnect = ("nvlink" if gpu.nvlink_gbps else "pcie") if count > 1 else "none"
    bare = Hardware(gpu, count, 1, interconnect, None, None, None, None)
    larger = sorted((i for i in whole if i.gpu_count > count), key=lambda i: (i.gpu_count, i.price_usd_per_hour or 1e9))
    nearest = [
        {"instance": i.name, "gpus": i.gpu_count, "usd_per_hour": i.price_usd_per_hour}
        for i in larger
        if i.gpu_count == larger[0].gpu_count
    ][:1]
    warning = note("no_instance_with_gpus", gpus=count, gpu=gpu.name, nearest=nearest)
    return Selection([bare], [], [*assumed, warning])


def hardware_options(req: Request, catalog: Catalog) -> Selection:
    """The GPU sets a request asks to evaluate, and the instances it cannot (Neuron, no CUDA)."""
    if req.gpu:
        return _gpu_pin(req, catalog)
    if req.compare:
        chosen = [find_instance(catalog, name) for name in req.compare]
        cuda = [_instance_hardware(catalog, i.name) for i in chosen if catalog.gpu(i.gpu).runtime == "cuda"]
        return Selection(cuda, [], [])
    if req.instance:
        inst = find_instance(catalog, req.instance)
        if catalog.gpu(inst.gpu).runtime == "neuron":
            raise InvalidRequest("neuron_instance", instance=inst.name)
        return Selection([_instance_hardware(catalog, inst.name, req.nodes or 1)], [], [])
    filters = (req.families, req.exclude_families, req.single_gpu)
    listed, neuron_listed, other_listed = catalog.memo.get(("instances", filters), _listed, catalog, req)
    options, neuron, other = list(listed), list(neuron_listed), list(other_listed)
    if req.why_not:
        asked = find_instance(catalog, req.why_not)
        if asked.name not in {o.instance.name for o in options if o.instance}:
            if catalog.gpu(asked.gpu).runtime == "cuda":
                options.append(_instance_hardware(catalog, asked.name))
            else:
                neuron.append(asked.name)
    skipped = []
    if neuron:
        skipped.append(NotEvaluated(instances=tuple(neuron), reason=note("neuron")))
    if other:
        names = _gpu_names(catalog, list(other))
        skipped.append(NotEvaluated(instances=tuple(other), reason=note("no_cuda_gpu", gpus=names)))
    if req.families and not options and not neuron:
        raise InvalidRequest(
            "no_family_match",
            families=list(req.families),
            known=sorted({i.family for i in catalog.instances.values()}),
        )
    return Selection(options, skipped, [])


def _listed(catalog: Catalog, req: Request) -> tuple[tuple[Hardware, ...], tuple[str, ...], tuple[str, ...]]:
    """The instances a set of family filters keeps, by runtime: CUDA sets, Neuron names, other names."""
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
    return tuple(options), tuple(neuron), tuple(other)


def _gpu_names(catalog: Catalog, instances: list[str]) -> list[str]:
    return sorted({catalog.gpu(catalog.instances[name].gpu).name for name in instances})


def multi_node_options(req: Request, catalog: Catalog) -> list[Hardware]:
    """NVLink instances of 8 GPUs, 2..MAX_NODES of them joined by pipeline parallelism over EFA."""
    found = []
    for inst in catalog.instances.values():
        if inst.interconnect != "nvlink" or inst.gpu_count < 8 or not _matches_families(req, inst):
            continue
        for nodes in range(2, MAX_NODES + 1):
            found.append(_instance_hardware(catalog, inst.name, nodes))
    return found
