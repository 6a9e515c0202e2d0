"""A diagnosis of a pasted vLLM start-up: what failed, headroom's budget next to what vLLM printed, and fixes.

The reader (engine/paste_reader.py) says what the paste holds; this module plans the same settings on the
same GPUs and compares term by term, so the answer can say which term broke and offer fixes that were each
re-planned (engine/advice.py). What the paste omits (the model, the GPU) is asked for, or assumed and said.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from dataclasses import fields as dataclass_fields
from typing import Any

from engine.catalog.loader import Catalog
from engine.catalog.resolve import resolve_model
from engine.catalog.schema import GpuSpec
from engine.constraints import Invalid
from engine.errors import HeadroomError
from engine.notes import Note, note
from engine.paste_reader import PasteReading
from engine.placement import find_gpu
from engine.plan import Candidate, Plan
from engine.ranking import plan as make_plan
from engine.request import EXTRA_FIELDS, MEMORY_FLAG_FIELDS, Request

#: kinds whose cause is memory: the budget comparison and the fixes apply
MEMORY_KINDS = frozenset({"kv_too_small_for_max_len", "no_cache_blocks", "cuda_oom", "healthy_startup"})
#: predicted and printed differ by more than this share: the answer says so and shows both
DISAGREE = 0.05
#: a GPU identified by its printed memory alone must match a catalog GPU's CUDA-visible memory this closely
MEMORY_MATCH = 0.03


@dataclass(frozen=True)
class Diagnosis:
    reading: PasteReading
    request: Request | None  # the paste's settings on its GPUs, when they are known
    plan: Plan | None
    candidate: Candidate | None  # the plan on the paste's hardware
    compared: tuple[Note, ...]  # headroom's figure next to vLLM's, per term
    assumed: tuple[Note, ...]
    missing: tuple[str, ...]  # "model", "gpu": ask for these
    elsewhere: Candidate | None = None  # not supported on this GPU: the cheapest instance that runs it, re-planned


def reading_to_json(reading: PasteReading) -> dict[str, Any]:
    """A reading as JSON, for a thread's memory (redacted already: it holds no secret)."""
    return asdict(reading)


def reading_from_json(data: dict[str, Any]) -> PasteReading:
    fields = {f.name for f in dataclass_fields(PasteReading)}
    kept: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k in fields}
    return PasteReading(**kept)


def diagnose(
    reading: PasteReading,
    catalog: Catalog,
    overrides: dict[str, Any] | None = None,
    hints: dict[str, Any] | None = None,
) -> Diagnosis:
    """`overrides`: what the user said (flags, a follow-up), above the paste; `hints`: what the paste's own
    prose names ("running on a g5.8xlarge", "MODEL: ..."), used only where the log itself is silent."""
    overrides, hints = dict(overrides or {}), dict(hints or {})
    assumed: list[Note] = []
    printed_total = reading.gpu_total_gib or reading.numbers.get("total_gpu_memory_gib")
    impossible = _impossible(reading.numbers, float(printed_total)) if printed_total else None
    model = overrides.pop("model", None) or _model(catalog, reading) or hints.get("model")
    hardware: dict[str, Any] = {k: overrides.pop(k) for k in ("instance", "gpu", "gpus", "nodes") if k in overrides}
    if not hardware:
        gpu = _gpu(catalog, reading, assumed)
        if gpu is not None:
            tp = _int(reading.command, "tp") or reading.numbers.get("tp")
            hardware = {"gpu": gpu.id, "gpus": reading.gpu_count or int(tp or 1)}
        else:
            hardware = {str(k): v for k, v in hints.items() if k in {"instance", "gpu", "gpus"} and v}
            if "instance" in hardware:  # "4x L40S (g6e.12xlarge)": the instance says it all; a request takes one
                hardware = {"instance": hardware["instance"]}
    if reading.kind in {"unsupported_on_gpu", "nccl_or_p2p", "fp8_block_split"} and model:
        # the fix is other GPUs (for NCCL / P2P: NVLink ones, where all-reduce needs no PCIe P2P), or for a TP
        # that split FP8 blocks another layout on the same GPUs: plan them
        settings = {k: v for k, v in _settings(reading).items() if k not in {"tp", "pp", "replicas"}}
        if reading.kind == "fp8_block_split":
            settings.update(hardware)
        if reading.kind == "nccl_or_p2p":
            settings["families"] = tuple(sorted({i.family for i in catalog.instances.values() if i.interconnect == "nvlink"}))
        try:
            anywhere = make_plan(Request.from_data({**settings, **overrides, "model": model}), catalog)
        except (HeadroomError, Invalid):
            anywhere = None
        elsewhere = anywhere.top if anywhere else None
        return Diagnosis(reading, None, anywhere, None, (), tuple(assumed), (), elsewhere)
    if reading.kind not in MEMORY_KINDS:  # not a memory failure: no budget to compare, nothing to ask
        return Diagnosis(reading, None, None, None, (), tuple(assumed), ())
    missing = tuple(name for name, known in (("model", model), ("gpu", hardware)) if not known)
    if missing:
        return Diagnosis(reading, None, None, None, (), tuple(assumed), missing)
    try:
        request = Request.from_data({**_settings(reading), **overrides, **hardware, "model": model})
    except Invalid as exc:  # settings vLLM itself refuses: said, not planned around
        assumed.append(note("paste_settings_refused", problems=exc.problems))
        return Diagnosis(reading, None, None, None, (), tuple(assumed), ())
    try:
        planned = make_plan(request, catalog)
    except HeadroomError:
        return Diagnosis(reading, request, None, None, (), tuple(assumed), ())
    top = planned.candidates[0] if planned.candidates else None
    compared = _compare(top, reading.numbers) if top else ()
    impossible = impossible or (_impossible(reading.numbers, top.gpu_memory_gib) if top else None)
    if impossible:  # said first, and no term-by-term comparison with figures that cannot be real
        return Diagnosis(reading, request, planned, top, (), (impossible, *assumed), ())
    return Diagnosis(reading, request, planned, top, compared, tuple(assumed), ())


#: the per-GPU memory figures a log prints (GiB), and how much past the GPU's own memory rounding may take them
_PER_GPU = ("weights_gib", "weights_and_non_torch_gib", "kv_cache_gib", "activation_peak_gib", "non_torch_gib",
            "cudagraph_gib")  # fmt: skip
_SLACK = 1.02


def _impossible(printed: dict[str, float | int], total_gib: float) -> Note | None:
    """A log whose figures cannot come from one GPU of ``total_gib`` (edited, or pasted from elsewhere): said
    instead of diagnosed. vLLM's own terms never add up to more than the GPU: weights (or consumed), KV pool and
    activation peak sit inside its memory."""
    figures = {k: float(printed[k]) for k in _PER_GPU if k in printed}
    base = figures.get("weights_and_non_torch_gib", figures.get("weights_gib", 0.0))
    parts = base + max(figures.get("kv_cache_gib", 0.0), 0.0) + figures.get("activation_peak_gib", 0.0)
    over = [k for k, v in figures.items() if v > total_gib * _SLACK or (v < 0 and k != "kv_cache_gib")]
    if not over and parts <= total_gib * _SLACK:
        return None
    return note("paste_figures_impossible", figures=figures, total_gib=total_gib, parts_gib=parts, over=over)


def _model(catalog: Catalog, reading: PasteReading) -> str | None:
    named = reading.model or (reading.command or {}).get("model")
    for candidate in (named, str(named or "").rstrip("/").split("/")[-1]):
        if not candidate:
            continue
        try:
            resolved = resolve_model(catalog, str(candidate))
        except HeadroomError:
            continue
        return resolved.release or resolved.spec.id
    return None


def _gpu(catalog: Catalog, reading: PasteReading, assumed: list[Note]) -> GpuSpec | None:
    """The GPU the paste names, else the one whose CUDA-visible memory matches the printed total (said)."""
    if reading.gpu_name:
        for name in (reading.gpu_name, reading.gpu_name.replace("NVIDIA ", "").replace("GeForce ", "")):
            try:
                return find_gpu(catalog, name)
            except HeadroomError:
                continue
    total = reading.gpu_total_gib or reading.numbers.get("total_gpu_memory_gib") or reading.numbers.get("oom_total_gib")
    if not total:
        return None
    close = [g for g in catalog.gpus.values() if g.memory_cuda_gib and abs(g.memory_cuda_gib / total - 1) <= MEMORY_MATCH]
    if not close:
        return None
    gpu = min(close, key=lambda g: abs((g.memory_cuda_gib or 0) - total))
    assumed.append(note("gpu_from_memory", gpu=gpu.name, total_gib=total))
    return gpu


def _int(command: dict[str, Any] | None, key: str) -> int | None:
    value = (command or {}).get(key)
    return int(value) if isinstance(value, int) else None


def _settings(reading: PasteReading) -> dict[str, Any]:
    """The request fields the paste sets: the command's, then the figures vLLM printed."""
    fields = {k: v for k, v in (reading.command or {}).items() if k in _COMMAND_FIELDS}
    numbers = reading.numbers
    if "max_model_len" in numbers:
        fields.setdefault("context_tokens", int(numbers["max_model_len"]))
    if "gpu_memory_utilization" in numbers:
        fields.setdefault("gpu_memory_utilization", float(numbers["gpu_memory_utilization"]))
    if "tp" in numbers:
        fields.setdefault("tp", int(numbers["tp"]))
    if reading.vllm_version and reading.vllm_version.count(".") >= 1:
        fields["vllm_version"] = ".".join(reading.vllm_version.split(".")[:2])
    return fields


_COMMAND_FIELDS = frozenset({"weights", "kv_dtype", "tp", "pp", "replicas", "context_tokens", "gpu_memory_utilization"})
_COMMAND_FIELDS |= {"zero_modalities", *EXTRA_FIELDS, *MEMORY_FLAG_FIELDS}  # issue 10

#: (term, headroom's candidate field, the printed figure's key in PasteReading.numbers)
_TERMS = (
    ("weights", "weights_gib_per_gpu", "weights_gib"),
    ("kv_pool", "kv_cache_gib_per_gpu", "kv_cache_gib"),
    ("kv_tokens", "kv_cache_tokens", "kv_cache_tokens"),
    ("non_torch", "non_torch_gib_per_gpu", "non_torch_gib"),
    ("activation", "activation_gib_per_gpu", "activation_peak_gib"),
    ("cuda_graphs", "cudagraph_gib_per_gpu", "cudagraph_estimated_gib"),
)


def _compare(candidate: Candidate, printed: dict[str, float | int]) -> tuple[Note, ...]:
    """headroom's figure next to each printed one, term by term, as the log's vLLM version defines the term.

    From 0.27 the summary line prints "consumed memory (weights + non-torch)", everything the profile left
    allocated (the kept MoE workspace too), and a "peak activation" that adds the CUDA-graph estimate and
    leaves the kept workspace out (Worker.determine_available_memory, utils/mem_utils.py @v0.27.1).
    """
    found = []
    ours_now = {term: float(getattr(candidate, field)) for term, field, _ in _TERMS}
    if "weights_and_non_torch_gib" in printed:
        workspace = candidate.moe_workspace_gib_per_gpu
        ours_now["activation"] += candidate.cudagraph_gib_per_gpu - workspace
        ours_now["consumed"] = candidate.weights_gib_per_gpu + candidate.non_torch_gib_per_gpu + workspace
    for term, _, theirs in (*_TERMS, ("consumed", "", "weights_and_non_torch_gib")):
        if theirs not in printed or term not in ours_now:
            continue
        predicted, seen = ours_now[term], float(printed[theirs])
        off = (predicted - seen) / abs(seen) if seen else 0.0
        found.append(note("compare", term=term, predicted=predicted, printed=seen, off=off, disagree=abs(off) > DISAGREE))
    return tuple(found)
