"""What is fixed for one plan: the served model, the vLLM behaviour, the context, and what was assumed."""

from typing import NamedTuple

from engine.catalog.loader import Catalog, VllmVersion, version_key
from engine.catalog.resolve import ResolvedModel, resolve_model
from engine.errors import InvalidRequest
from engine.notes import Note, note
from engine.placement import split_block, valid_tp_degrees
from engine.request import Request
from engine.served import ServedModel, serve
from engine.serving_extras import extras_for


class PlanContext(NamedTuple):
    """Everything fixed for one plan, passed to each evaluation."""

    request: Request
    catalog: Catalog
    served: ServedModel
    behaviour: VllmVersion
    version: str
    context: int
    split: tuple[int, int]
    release: str | None  # the quantized repo id the user named, if any
    checkpoint: str | None  # what `vllm serve` loads: None when no checkpoint in this precision is known
    checkpoint_release: str | None  # the pre-quantized release loaded (named by the user or chosen from data)

    @property
    def weight_block(self) -> int | None:
        """The FP8 block size of the checkpoint loaded, when it is block-quantized (None: no block rule)."""
        if self.served.fmt.dtype != "fp8" or self.checkpoint is None:
            return None
        return self.catalog.weight_blocks.get(self.checkpoint)


def _weights_for(req: Request, resolved: ResolvedModel) -> str | None:
    if req.weights and resolved.implied_weights and req.weights != resolved.implied_weights:
        raise InvalidRequest("weights_conflict", model=req.model, implied=resolved.implied_weights, asked=req.weights)
    return req.weights or resolved.implied_weights


def _behaviour(catalog: Catalog, version: str) -> VllmVersion:
    oldest = catalog.vllm.versions[0].version
    if version_key(version) < version_key(oldest):
        raise InvalidRequest("vllm_too_old", version=version, oldest=oldest)
    return catalog.vllm_version(version)


def build_context(req: Request, catalog: Catalog) -> tuple[PlanContext, list[Note], list[Note]]:
    """The plan's fixed parts, its warnings and its assumptions (as notes, in the order they are shown)."""
    resolved = resolve_model(catalog, req.model)
    spec = resolved.spec
    weights = _weights_for(req, resolved)
    version = req.vllm_version or catalog.vllm.default_version
    extras, extra_notes = extras_for(req, spec, catalog, version, weights)  # issue 10
    served = serve(spec, weights, req.kv_dtype, memo=catalog.memo, extras=extras)
    behaviour = _behaviour(catalog, version)
    context = req.context
    warnings: list[Note] = []
    assumptions: list[Note] = []
    if context > spec.arch.max_context:
        warnings.append(note("context_beyond_model", context=context, model=spec.name, max_context=spec.arch.max_context))
    if version_key(version) > version_key(catalog.vllm.newest_modelled):
        warnings.append(note("vllm_newer_than_modelled", version=version, newest=catalog.vllm.newest_modelled))
        # 0.29+ run model runner V2 for nearly every model and reserve the graphs it measures, which nothing
        # here can size: V1's estimate for every model, the nearest derivable figure (docs/vllm-memory.md)
        behaviour = behaviour._replace(dense_runner_v2=False)
    if req.region != catalog.region and req.region not in catalog.regions:  # no data for it (issue 12)
        warnings.append(note("region_prices", catalog_region=catalog.region, region=req.region))
    if spec.hub_revision:  # issue 12: a model read from the Hub says where its numbers came from
        assumptions.append(
            note("hub_model", repo=spec.id, revision=spec.hub_revision, params_b=spec.published_params_b,
                 dtype=spec.dtype, method=spec.hub_method)
        )  # fmt: skip
    if req.model_note:
        assumptions.append(req.model_note)
    assumptions.extend(extra_notes)  # issue 10
    if not req.context_tokens and not (req.input_tokens and req.output_tokens):
        assumptions.append(note("default_context", context=context))
    split = req.split
    assumptions.append(note("typical_request", input=split[0], output=split[1]))
    if req.concurrency is None:
        assumptions.append(note("one_user"))
    if not weights:
        assumptions.append(note("checkpoint_format", dtype=spec.dtype))
    assumptions.append(
        note(
            "vllm_defaults",
            version=version,
            utilization=req.gpu_memory_utilization or behaviour.gpu_memory_utilization,
            block_size=catalog.vllm.block_size,
        )
    )
    eff = catalog.efficiencies
    assumptions.append(
        note(
            "efficiencies",
            stream_16bit=eff.weight_stream["16bit"],
            stream_8bit=eff.weight_stream["8bit"],
            kv_read=eff.kv_read,
            gemm_16bit=eff.gemm["16bit"],
            gemm_8bit=eff.gemm["8bit"],
        )
    )
    checkpoint, release = _checkpoint(catalog, spec.id, spec.dtype, served.fmt.dtype, resolved.release)
    if release and release != resolved.release:
        assumptions.append(note("release_checkpoint", repo=release, dtype=served.fmt.dtype, model=spec.name))
    if checkpoint is None:
        warnings.append(note("no_known_checkpoint", dtype=served.fmt.dtype, model=spec.name))
    ctx = PlanContext(
        req, catalog, served, behaviour, version, context, split, resolved.release, checkpoint, release
    )
    blocked = _block_limits(ctx)
    if blocked is not None:
        warnings.append(blocked)
    region = catalog.regions.get(req.region)
    if req.spot and not (region and region.spot):  # spot prices come only from `headroom catalog refresh`
        warnings.append(note("spot_unknown", region=req.region))
    if req.offline:  # issue 10: UsageContext.LLM_CLASS (vllm.yaml batching.offline_*)
        rules = catalog.vllm.batching
        assumptions.append(note("offline_class", large_batched=rules.offline_large.max_num_batched_tokens,
                                small_batched=rules.offline_small.max_num_batched_tokens,
                                serve_large_batched=rules.large.max_num_batched_tokens,
                                serve_small_batched=rules.small.max_num_batched_tokens,
                                large_min_gib=rules.large_gpu_min_gib, huge_min_gib=rules.huge_gpu_min_gib,
                                huge_batched=rules.huge.max_num_batched_tokens, huge_from=rules.huge_from))  # fmt: skip
    if req.enforce_eager:  # the speed model assumes CUDA graphs (performance.py's fixed step overhead)
        warnings.append(note("eager_speed"))
    if req.cpu_offload_gb:  # offloaded layers stream over PCIe on every step; performance.py does not count it
        warnings.append(note("cpu_offload_speed", gb=req.cpu_offload_gb))
    return ctx, warnings, assumptions


def _block_limits(ctx: PlanContext) -> Note | None:
    """Which common TP sizes a block-FP8 checkpoint rules out (placement.split_block), said once per plan."""
    block = ctx.weight_block
    if block is None:
        return None
    heads_allow = valid_tp_degrees(ctx.served, 8)
    ruled_out = [(tp, split_block(ctx.served, tp, block)) for tp in heads_allow]
    cuts = [(tp, cut) for tp, cut in ruled_out if cut is not None]
    if not cuts:
        return None
    layer, width = cuts[0][1]  # type: ignore[misc]
    return note(
        "fp8_block_tp", checkpoint=ctx.checkpoint, block=block, excluded=[tp for tp, _ in cuts],
        allowed=[tp for tp, cut in ruled_out if cut is None], layer=layer, width=width,
    )  # fmt: skip


def _checkpoint(
    catalog: Catalog, model: str, native: str, dtype: str, named: str | None
) -> tuple[str | None, str | None]:
    """What to load for weights in `dtype`: the release named, the model itself, a known release, or nothing.

    From a 16/32-bit checkpoint, FP8 without a known release is quantized while loading
    (`--quantization fp8`) and other 16/32-bit types are a `--dtype` away; every other format, and
    any change to a checkpoint that is itself quantized, needs a release in that format.
    """
    if named:
        return named, named
    if dtype == native:
        return model, None
    known = catalog.releases.get(model, {}).get(dtype)
    if known:
        return known, known
    if native in {"bf16", "fp16", "fp32"} and dtype in {"fp8", "bf16", "fp16", "fp32"}:
        return model, None  # `--quantization fp8` or `--dtype`: vLLM converts a 16/32-bit checkpoint while loading
    return None, None  # a quantized checkpoint (FP8, MXFP4) loads as it was quantized, whatever --dtype says
