"""plan(request) -> Plan: evaluate every EC2 instance (or a pinned GPU set) and rank them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

from engine.catalog.loader import Catalog, VllmVersion, load_catalog
from engine.catalog.resolve import ResolvedModel, resolve_model
from engine.errors import InvalidRequest
from engine.hardware import support
from engine.performance import Link, Speed, estimate_speed, link_for
from engine.placement import Hardware, hardware_options, multi_node_options, valid_tp_degrees
from engine.plan import FEASIBLE, Budget, Candidate, ModelSummary, NormalisedRequest, Plan, WhyNot
from engine.request import Request
from engine.served import GIB, ServedModel, serve
from engine.vllm_memory import MemoryBudget, memory_budget

#: a plan is "tight" when the requested load needs more than this share of the KV pool
TIGHT_KV_SHARE = 0.85


@dataclass(frozen=True)
class Context:
    """Everything fixed for one plan, passed to each evaluation."""

    request: Request
    catalog: Catalog
    served: ServedModel
    behaviour: VllmVersion
    version: str
    context: int
    split: tuple[int, int]
    release: str | None
    cache: dict = field(default_factory=dict, compare=False, hash=False)


# --- placement ---------------------------------------------------------------------------


def _verdict(ctx: Context, budget: MemoryBudget, capacity: float, replicas: int) -> tuple[str, float, list[str]]:
    """Verdict, the KV each GPU needs for the requested load, and the reasons behind the verdict."""
    req = ctx.request
    binding = budget.binding
    per_request = ctx.served.kv_bytes_per_request(ctx.context, 1, budget.batching.max_num_batched_tokens)
    if not budget.loads:
        over = -binding.kv_pool
        return (
            "does_not_load",
            0.0,
            [
                f"needs {binding.weights:.1f} GiB weights + {binding.activation:.1f} GiB activations + "
                f"{binding.non_torch + binding.cudagraph:.1f} GiB runtime per GPU, {over:.1f} GiB more than the "
                f"{binding.usable:.1f} GiB vLLM may use ({budget.utilization:.2f} × {budget.visible_gib:.1f} GiB)"
            ],
        )
    wanted = 1 if req.concurrency == "max" else math.ceil(int(req.concurrency) / replicas)
    share = wanted / capacity if capacity else math.inf
    needed = binding.kv_pool * min(share, 1.0) if capacity else 0.0
    tokens = f"{budget.kv_tokens:,} tokens"
    if capacity < 1:
        return (
            "no_kv_room",
            per_request / GIB,
            [
                f"weights load, but only {binding.kv_pool:.2f} GiB per GPU is left for KV ({tokens}); one "
                f"{ctx.context:,}-token request needs more, so vLLM refuses to start"
            ],
        )
    if capacity < wanted:
        return (
            "no_kv_room",
            needed,
            [
                f"KV cache holds {capacity:.1f} requests of {ctx.context:,} tokens per replica ({tokens}); "
                f"{wanted} are needed per replica for {req.concurrency} users"
            ],
        )
    if req.concurrency == "max":
        verdict = "tight" if capacity < 2 else "fits"
        return (
            verdict,
            needed,
            [f"KV cache holds {capacity:.1f} requests of {ctx.context:,} tokens per replica ({tokens})"],
        )
    verdict = "tight" if share > TIGHT_KV_SHARE else "fits"
    return (
        verdict,
        needed,
        [
            f"KV cache holds {capacity:.1f} requests of {ctx.context:,} tokens per replica ({tokens}); "
            f"{wanted} needed uses {share:.0%} of it"
        ],
    )


def _vllm_command(ctx: Context, tp: int, pp: int, util: float) -> str:
    served = ctx.served
    model = ctx.release or served.spec.id
    parts = [f"vllm serve {model}"]
    if served.fmt.dtype == "fp8" and not ctx.release and served.spec.dtype != "fp8":
        parts.append("--quantization fp8")
    if tp > 1:
        parts.append(f"--tensor-parallel-size {tp}")
    if pp > 1:
        parts.append(f"--pipeline-parallel-size {pp}")
    parts.append(f"--max-model-len {ctx.context}")
    parts.append(f"--gpu-memory-utilization {util:.2f}")
    if ctx.request.kv_dtype == "fp8":
        parts.append("--kv-cache-dtype fp8")
    return " ".join(parts)


@dataclass(frozen=True, eq=False)
class Assessment:
    """What one TP x PP split of a GPU set achieves; shared by every instance with that GPU set."""

    tp: int
    pp: int
    replicas: int
    budget: MemoryBudget
    capacity: float
    verdict: str
    needed: float
    reasons: tuple[str, ...]
    caveats: tuple[str, ...]
    speed: Speed | None

    @property
    def feasible(self) -> bool:
        return self.verdict in FEASIBLE

    @cached_property
    def weights_max(self) -> float:
        return max(s.weights for s in self.budget.stages)

    @cached_property
    def activation_max(self) -> float:
        return max(s.activation for s in self.budget.stages)


def assess(ctx: Context, hw: Hardware, tp: int, pp: int) -> Assessment:
    """Memory verdict and speed of one split; cached per (GPU set, split) within a plan."""
    memory_mib = hw.instance.memory_mib_per_gpu if hw.instance else None
    key = (hw.gpu.id, hw.gpu_count, hw.interconnect, memory_mib, tp, pp)
    if key in ctx.cache:
        return ctx.cache[key]
    served, catalog, req = ctx.served, ctx.catalog, ctx.request
    replicas = hw.gpu_count // (tp * pp)
    budget = memory_budget(
        served, catalog, hw.gpu, tp, pp, ctx.behaviour, ctx.context, req.gpu_memory_utilization, memory_mib
    )
    capacity = budget.max_concurrency if budget.loads else 0.0
    support_key = ("support", hw.gpu.id)
    if support_key not in ctx.cache:
        ctx.cache[support_key] = support(hw.gpu, served)
    hw_support = ctx.cache[support_key]
    caveats = list(hw_support.caveats)
    if hw_support.runs:
        verdict, needed, reasons = _verdict(ctx, budget, capacity, replicas)
    else:
        verdict, needed, reasons = "does_not_load", 0.0, [hw_support.reason]
    speed = None
    if verdict in FEASIBLE:
        link: Link = link_for(catalog, hw.gpu, hw.interconnect)
        speed = estimate_speed(
            served,
            catalog,
            hw.gpu,
            link,
            tp,
            pp,
            replicas,
            ctx.split,
            req.concurrency,
            budget.capacity_tokens,
            budget.batching.max_num_seqs,
        )
    if hw.nodes > 1:
        caveats.append(f"spans {hw.nodes} instances: pipeline parallel over EFA, needs a Ray cluster")
    result = Assessment(tp, pp, replicas, budget, capacity, verdict, needed, tuple(reasons), tuple(caveats), speed)
    ctx.cache[key] = result
    return result


def _target_misses(req: Request, price: float | None, speed: Speed) -> list[str]:
    misses = []
    if req.max_usd_per_hour and (price is None or price > req.max_usd_per_hour):
        cost = "an unknown amount" if price is None else f"${price:.2f}/h"
        misses.append(f"costs {cost}, over the ${req.max_usd_per_hour:.2f}/h budget")
    if req.min_tokens_per_s and speed.decode_tokens_per_s_per_user < req.min_tokens_per_s:
        misses.append(
            f"decodes {speed.decode_tokens_per_s_per_user:.0f} tok/s per user, under the "
            f"{req.min_tokens_per_s:.0f} tok/s target"
        )
    if req.max_ttft_s and speed.ttft_s > req.max_ttft_s:
        misses.append(f"first token after {speed.ttft_s:.2f} s, over the {req.max_ttft_s:.2f} s target")
    return misses


def candidate(ctx: Context, hw: Hardware, a: Assessment) -> Candidate:
    """Dress an assessment with one instance's price, host and targets."""
    served, req = ctx.served, ctx.request
    speed, budget = a.speed, a.budget
    binding = budget.binding
    price = hw.usd_per_hour
    reasons, caveats = list(a.reasons), list(a.caveats)
    misses = _target_misses(req, price, speed) if speed else []
    reasons.extend(misses)
    if hw.instance and hw.instance.ram_gib and hw.instance.ram_gib < served.total_weight_bytes / GIB / hw.nodes:
        caveats.append(
            f"host RAM {hw.instance.ram_gib:.0f} GiB is below the {served.total_weight_bytes / GIB:.0f} GiB "
            "checkpoint: loading streams from disk, slow cold starts"
        )
    if a.feasible and ctx.served.fmt.dtype == "fp8" and not ctx.release and ctx.served.spec.dtype != "fp8":
        caveats.append(
            "--quantization fp8 quantizes the BF16 checkpoint while loading; a pre-quantized FP8 checkpoint "
            "(e.g. a RedHatAI ...-FP8-dynamic release) loads faster with the same memory"
        )
    memory_mib = hw.instance.memory_mib_per_gpu if hw.instance else None
    per_million = price / (speed.throughput_tokens_per_s * 3600) * 1e6 if price and speed else None
    return Candidate(
        rank=0,
        instance=hw.label,
        family=hw.instance.family if hw.instance else None,
        gpu=hw.gpu.name,
        gpu_id=hw.gpu.id,
        gpu_count=hw.gpu_count,
        gpu_memory_gib=budget.visible_gib,
        gpu_memory_aws_gib=(memory_mib / 1024) if memory_mib else hw.gpu.memory_gib,
        interconnect=hw.interconnect if hw.gpu_count > 1 else "none",
        nodes=hw.nodes,
        tp=a.tp,
        pp=a.pp,
        replicas=a.replicas,
        verdict=a.verdict,  # type: ignore[arg-type]  # one of the four Verdict literals
        feasible=a.feasible,
        meets_targets=a.feasible and not misses,
        weights_gib_per_gpu=a.weights_max,
        activation_gib_per_gpu=a.activation_max,
        non_torch_gib_per_gpu=binding.non_torch,
        cudagraph_gib_per_gpu=binding.cudagraph,
        usable_gib_per_gpu=binding.usable,
        kv_cache_gib_per_gpu=binding.kv_pool,
        kv_cache_tokens=budget.kv_tokens,
        max_concurrency=a.capacity,
        kv_needed_gib_per_gpu=a.needed,
        headroom_gib_per_gpu=binding.kv_pool - a.needed,
        batch=speed.batch if speed else 0,
        decode_bound=speed.bound if speed else None,
        gpu_bandwidth_gbps=hw.gpu.bandwidth_gbps,
        decode_tokens_per_s_per_user=speed.decode_tokens_per_s_per_user if speed else None,
        throughput_tokens_per_s=speed.throughput_tokens_per_s if speed else None,
        ttft_s=speed.ttft_s if speed else None,
        usd_per_hour=price,
        usd_per_million_tokens=per_million if per_million else None,
        price_note=hw.price_note,
        reasons=reasons,
        caveats=caveats,
        vllm_command=_vllm_command(ctx, a.tp, a.pp, budget.utilization) if a.feasible else None,
    )


_VERDICT_ORDER = {"fits": 0, "tight": 1, "no_kv_room": 2, "does_not_load": 3}


def _split_score(a: Assessment, by_speed: bool) -> tuple:
    """Order the splits of one GPU set: best verdict, then (if speed matters) fastest per user, else smallest TP.

    Among splits that fail, show the one that came closest (most KV room), so the
    rejection names the real shortfall rather than the TP=1 strawman.
    """
    if not a.feasible or a.speed is None:
        return (_VERDICT_ORDER[a.verdict], -a.budget.binding.kv_pool, a.tp)
    metric = -a.speed.decode_tokens_per_s_per_user if by_speed else a.tp
    return (_VERDICT_ORDER[a.verdict], metric, a.tp)


def best_placement(ctx: Context, hw: Hardware) -> Candidate:
    """Choose the TP split for a GPU set, as a serving engineer would.

    The smallest TP that fits the load with headroom wins: spare GPUs become
    data-parallel replicas. Only when the request is about speed (sort by speed,
    tok/s or TTFT targets) is every split compared on per-user speed.
    """
    req = ctx.request
    if hw.nodes > 1:
        return candidate(ctx, hw, assess(ctx, hw, hw.gpus_per_node, hw.nodes))
    memory_mib = hw.instance.memory_mib_per_gpu if hw.instance else None
    chosen_key = ("chosen", hw.gpu.id, hw.gpu_count, hw.interconnect, memory_mib)
    if chosen_key in ctx.cache:
        return candidate(ctx, hw, ctx.cache[chosen_key])
    degrees_key = ("degrees", hw.gpu_count)
    if degrees_key not in ctx.cache:
        ctx.cache[degrees_key] = valid_tp_degrees(ctx.served, hw.gpu_count)
    degrees = ctx.cache[degrees_key]
    if req.tp:
        if req.tp not in degrees:
            raise InvalidRequest(
                f"tensor parallel {req.tp} does not work with {hw.gpu_count} × {hw.gpu.name} and "
                f"{ctx.served.arch.heads} attention heads; valid: {', '.join(map(str, degrees))}"
            )
        degrees = [req.tp]
    speed_matters = req.sort == "speed" or bool(req.min_tokens_per_s or req.max_ttft_s)
    options = []
    for tp in degrees or [1]:
        option = assess(ctx, hw, tp, 1)
        options.append(option)
        if option.verdict == "fits" and not speed_matters:
            break
    chosen = min(options, key=lambda a: _split_score(a, speed_matters))
    ctx.cache[chosen_key] = chosen
    return candidate(ctx, hw, chosen)


# --- hardware lists ----------------------------------------------------------------------

# --- the plan ----------------------------------------------------------------------------


def _rank_key(sort: str):
    def key(c: Candidate) -> tuple:
        group = 0 if c.feasible and c.meets_targets else (1 if c.feasible else 2 + _VERDICT_ORDER[c.verdict])
        if sort == "speed" and c.feasible:
            return (group, -(c.decode_tokens_per_s_per_user or 0.0), c.usd_per_hour or math.inf)
        price = c.usd_per_hour if c.usd_per_hour is not None else math.inf
        return (group, price, -(c.throughput_tokens_per_s or 0.0), c.instance or "")

    return key


def _model_summary(served: ServedModel) -> ModelSummary:
    arch = served.arch
    if arch.mla:
        attention = f"MLA (latent {arch.mla.kv_lora_rank} + rope {arch.mla.qk_rope_head_dim})"
    elif arch.kv_heads == arch.heads:
        attention = f"MHA {arch.heads} heads"
    else:
        attention = f"GQA {arch.heads} query / {arch.kv_heads} KV heads"
    if arch.sliding_window and arch.sliding_window.sliding_layers:
        attention += (
            f", {arch.sliding_window.sliding_layers} of {arch.layers} layers windowed to {arch.sliding_window.window:,}"
        )
    moe = f"{arch.moe.experts} experts, {arch.moe.active} active" if arch.moe else None
    return ModelSummary(
        id=served.spec.id,
        name=served.spec.name,
        params_b=round(served.params.total / 1e9, 2),
        active_params_b=round(served.active_params / 1e9, 2),
        layers=arch.layers,
        hidden=arch.hidden,
        heads=arch.heads,
        kv_heads=arch.kv_heads,
        head_dim=arch.head_dim,
        attention=attention,
        moe=moe,
        max_context=arch.max_context,
        weight_layout=served.fmt.layout,
        source=served.spec.source,
    )


def _weights_for(req: Request, resolved: ResolvedModel) -> str | None:
    if req.weights and resolved.implied_weights and req.weights != resolved.implied_weights:
        raise InvalidRequest(
            f"'{req.model}' is a {resolved.implied_weights} checkpoint, but --weights says {req.weights}; "
            "drop one of them"
        )
    return req.weights or resolved.implied_weights


def build_context(req: Request, catalog: Catalog) -> tuple[Context, list[str], list[str]]:
    resolved = resolve_model(catalog, req.model)
    spec = resolved.spec
    weights = _weights_for(req, resolved)
    served = serve(spec, weights, req.kv_dtype)
    version = req.vllm_version or catalog.vllm.default_version
    behaviour = catalog.vllm_version(version)
    context = req.context
    warnings: list[str] = []
    assumptions: list[str] = []
    if context > spec.arch.max_context:
        warnings.append(
            f"{context:,} tokens is longer than {spec.name} supports ({spec.arch.max_context:,}); vLLM will refuse "
            f"--max-model-len above that unless you extend RoPE scaling. Planned at {context:,} anyway."
        )
    if req.region != catalog.region:
        warnings.append(f"prices are {catalog.region} on-demand list prices; {req.region} usually costs a little more")
    if not req.context_tokens and not (req.input_tokens and req.output_tokens):
        assumptions.append(f"context {context:,} tokens per request (default)")
    split = req.split
    assumptions.append(f"a typical request: {split[0]:,} prompt + {split[1]:,} output tokens")
    if req.concurrency == 1 and "concurrency" not in req.model_fields_set:
        assumptions.append("one user at a time (say '16 users' or --concurrency N for more)")
    if not weights:
        assumptions.append(f"weights in the checkpoint's own format ({spec.dtype})")
    if req.model_note:
        assumptions.insert(0, req.model_note)
    assumptions.append(
        f"vLLM {version} defaults: gpu_memory_utilization {req.gpu_memory_utilization or behaviour.gpu_memory_utilization}, block size {catalog.vllm.block_size}"
    )
    assumptions.append(
        f"speeds use H100-measured efficiencies on every GPU: weight streaming {catalog.efficiencies.weight_stream['16bit']:.0%} "
        f"(16-bit) / {catalog.efficiencies.weight_stream['8bit']:.0%} (8-bit) of spec bandwidth, KV reads "
        f"{catalog.efficiencies.kv_read:.0%}, GEMMs {catalog.efficiencies.gemm['16bit']:.0%} / {catalog.efficiencies.gemm['8bit']:.0%} of peak"
    )
    return Context(req, catalog, served, behaviour, version, context, split, resolved.release), warnings, assumptions


def plan(req: Request, catalog: Catalog | None = None) -> Plan:
    """The whole answer for one request. Raises InvalidRequest (with suggestions) on bad input."""
    catalog = catalog or load_catalog()
    ctx, warnings, assumptions = build_context(req, catalog)
    served = ctx.served
    options, skipped = hardware_options(req, catalog)
    candidates = [best_placement(ctx, hw) for hw in options]
    pinned = bool(req.gpu or req.instance)
    if not pinned and req.multi_node and not any(c.feasible for c in candidates):
        multi = [best_placement(ctx, hw) for hw in multi_node_options(req, catalog)]
        best_by_type: dict[str, Candidate] = {}
        for cand in multi:
            family_key = cand.instance.split("× ")[-1] if cand.instance else ""
            if family_key not in best_by_type or (cand.feasible and not best_by_type[family_key].feasible):
                best_by_type[family_key] = cand
        candidates.extend(best_by_type.values())
        if any(c.feasible for c in multi):
            warnings.append(
                "nothing fits one instance: the plan spans several instances with pipeline parallelism over EFA"
            )
    candidates.sort(key=_rank_key(req.sort))
    for i, c in enumerate(candidates):
        c.rank = i + 1
    ranked = candidates

    per_sequence = served.kv_bytes_per_request(ctx.context, 1, 0 if not served.arch.sliding_window else 8192)
    wanted = 1 if req.concurrency == "max" else int(req.concurrency)
    normalised = NormalisedRequest(
        model=served.spec.id,
        model_name=served.spec.name,
        weights_dtype=served.fmt.dtype,
        kv_dtype=served.kv_dtype,
        context_tokens=ctx.context,
        input_tokens=ctx.split[0],
        output_tokens=ctx.split[1],
        concurrency=req.concurrency,
        vllm_version=ctx.version,
        gpu_memory_utilization=req.gpu_memory_utilization or ctx.behaviour.gpu_memory_utilization,
        region=req.region,
        instance=req.instance,
        gpu=req.gpu,
        gpus=req.gpus,
        tp=req.tp,
        families=req.families,
        exclude_families=req.exclude_families,
        max_usd_per_hour=req.max_usd_per_hour,
        min_tokens_per_s=req.min_tokens_per_s,
        max_ttft_s=req.max_ttft_s,
        sort=req.sort,
        model_note=req.model_note,
    )
    budget = Budget(
        weights_gib=round(served.total_weight_bytes / GIB, 2),
        weights_by_group_gib={k: round(v / GIB, 2) for k, v in served.weight_bytes_by_group.items()},
        kv_bytes_per_token=served.kv_bytes_per_token(1),
        kv_gib_per_sequence=round(per_sequence / GIB, 3),
        kv_gib_total=round(per_sequence * wanted / GIB, 2),
    )
    if not any(c.feasible for c in ranked):
        warnings.append("no evaluated hardware serves this request; see the rejections for what failed")
    why_not = None
    if req.why_not:
        asked = next((c for c in ranked if c.instance == req.why_not), None)
        if asked:
            top = next((c.instance for c in ranked if c.feasible and c.meets_targets), None)
            why_not = WhyNot(asked.instance or "", asked.rank, asked.verdict, tuple(asked.reasons), top)
    return Plan(
        why_not=why_not,
        request=normalised,
        model=_model_summary(served),
        budget=budget,
        candidates=ranked,
        not_evaluated=skipped,
        warnings=warnings,
        assumptions=assumptions,
        catalog_as_of=catalog.as_of,
        catalog_version=catalog.digest,
    )
