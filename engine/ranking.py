"""plan(request, catalog) -> Plan: evaluate every EC2 instance (or a pinned GPU set) and rank them."""

import math

from engine.advice import fixes
from engine.candidate import candidate
from engine.catalog.loader import Catalog
from engine.context import PlanContext, build_context
from engine.errors import InvalidRequest
from engine.notes import note
from engine.placement import Hardware, hardware_options, multi_node_options, split_block, valid_tp_degrees
from engine.plan import Budget, Candidate, NormalisedRequest, Plan, WhyNot
from engine.regions import (
    cheapest_regions,
    fitting_elsewhere,
    localise,
    offered_only,
    region_data,
    regional_options,
    with_spot,
)
from engine.request import EXTRA_FIELDS, MEMORY_FLAG_FIELDS, Request
from engine.search import VERDICT_ORDER, Scratch, choose_split
from engine.served import GIB
from engine.summary import model_summary


def _rank_key(sort: str):  # noqa: ANN202
    def key(c: Candidate) -> tuple:
        group = 0 if c.feasible and c.meets_targets else (1 if c.feasible else 2 + VERDICT_ORDER[c.verdict])
        if sort == "speed" and c.feasible:
            return (group, -(c.decode_tokens_per_s_per_user or 0.0), c.usd_per_hour or math.inf)
        price = c.usd_per_hour if c.usd_per_hour is not None else math.inf
        return (group, price, -(c.throughput_tokens_per_s or 0.0), c.instance or "")

    return key


def _candidates(ctx: PlanContext, scratch: Scratch, options: list[Hardware]) -> list[Candidate]:
    """One candidate per GPU set a pinned TP can run on (all of them without a pin)."""
    found = []
    for hw in options:
        chosen = choose_split(ctx, scratch, hw)
        if chosen is not None:
            found.append(candidate(ctx, hw, chosen))
    return found


def _multi_node(ctx: PlanContext, scratch: Scratch, options: list[Hardware]) -> list[Candidate]:
    """Per instance type, the fewest nodes that serve the request (else the smallest group, to show why not)."""
    best: dict[str, Candidate] = {}
    for hw in options:
        chosen = choose_split(ctx, scratch, hw)
        if chosen is None:
            continue
        cand, type_name = candidate(ctx, hw, chosen), hw.instance.name if hw.instance else ""
        if type_name not in best or (cand.feasible and not best[type_name].feasible):
            best[type_name] = cand
    return list(best.values())


def _normalised(ctx: PlanContext) -> NormalisedRequest:
    req, served = ctx.request, ctx.served
    return NormalisedRequest(
        model=served.spec.id,
        model_name=served.spec.name,
        weights_dtype=served.fmt.dtype,
        kv_dtype=served.kv_dtype,
        context_tokens=ctx.context,
        input_tokens=ctx.split[0],
        output_tokens=ctx.split[1],
        concurrency=req.users,
        vllm_version=ctx.version,
        gpu_memory_utilization=req.gpu_memory_utilization or ctx.behaviour.gpu_memory_utilization,
        region=req.region,
        instance=req.instance,
        gpu=req.gpu,
        gpus=req.gpus,
        tp=req.tp,
        pp=req.pp,
        replicas=req.replicas,
        nodes=req.nodes,
        families=req.families,
        exclude_families=req.exclude_families,
        max_usd_per_hour=req.max_usd_per_hour,
        min_tokens_per_s=req.min_tokens_per_s,
        max_ttft_s=req.max_ttft_s,
        sort=req.sort,
        model_note=req.model_note,
        **{name: getattr(req, name) for name in (*MEMORY_FLAG_FIELDS, *EXTRA_FIELDS)},
    )


def _budget(ctx: PlanContext) -> Budget:
    served, req = ctx.served, ctx.request
    per_sequence = served.kv_bytes_per_request(ctx.context, 1, 0 if not served.arch.sliding_window else 8192)
    wanted = 1 if req.users == "max" else int(req.users)
    return Budget(
        weights_gib=round(served.total_weight_bytes / GIB, 2),
        weights_by_group_gib={k: round(v / GIB, 2) for k, v in served.weight_bytes_by_group.items()},
        kv_bytes_per_token=served.kv_bytes_per_token(1),
        kv_gib_per_sequence=round(per_sequence / GIB, 3),
        kv_gib_total=round(per_sequence * wanted / GIB, 2),
    )


def _why_not(req: Request, ranked: list[Candidate]) -> WhyNot | None:
    asked = next((c for c in ranked if c.instance == req.why_not), None) if req.why_not else None
    if asked is None:
        return None
    top = next((c.instance for c in ranked if c.feasible and c.meets_targets), None)
    return WhyNot(asked.instance or "", asked.rank, asked.verdict, tuple(asked.reasons), top)


def plan(req: Request, catalog: Catalog, advise: bool = True) -> Plan:
    """The whole answer for one request. Raises InvalidRequest (with suggestions) on bad input.

    With `advise`, a tight or failed plan carries fixes, each re-planned (without advice) on the same instance.
    """
    ctx, warnings, assumptions = build_context(req, catalog)
    scratch = Scratch()
    selection = hardware_options(req, catalog)
    warnings.extend(selection.warnings)
    pinned = bool(req.gpu or req.instance or req.compare)
    options, elsewhere, regional_warnings, regional_notes = regional_options(
        catalog, req.region, selection.options, pinned, req.why_not
    )
    warnings.extend(regional_warnings)
    assumptions.extend(regional_notes)
    regional = region_data(catalog, req.region) is not None
    candidates = _candidates(ctx, scratch, options)
    if options and not candidates:  # a pinned TP that no GPU set can run
        counts = sorted({hw.gpu_count for hw in options})
        block, tp = ctx.weight_block, req.tp
        cut = split_block(ctx.served, tp, block) if tp and block else None
        if tp and cut is not None:  # heads and GPUs allow it; the checkpoint's FP8 blocks do not
            raise InvalidRequest(
                "tp_splits_fp8_block", tp=tp, checkpoint=ctx.checkpoint, block=block,
                layer=cut[0], width=cut[1], shard=cut[1] / tp,
                working=valid_tp_degrees(ctx.served, max(counts), block),
            )  # fmt: skip
        raise InvalidRequest(
            "tp_invalid", tp=req.tp, pp=req.pp, replicas=req.replicas, counts=counts,
            heads=ctx.served.arch.heads, kv_heads=ctx.served.arch.kv_heads,
        )  # fmt: skip
    if not pinned and req.multi_node and not any(c.feasible for c in candidates):
        groups = multi_node_options(req, catalog)
        multi = _multi_node(ctx, scratch, localise(catalog, req.region, groups)[0] if regional else groups)
        candidates.extend(multi)
        if any(c.feasible for c in multi):
            warnings.append(note("multi_node_plan"))
    candidates.sort(key=_rank_key(req.sort))
    candidates[:] = with_spot(catalog, req.region, [c._replace(rank=i + 1) for i, c in enumerate(candidates)])
    others = _candidates(ctx, scratch, elsewhere) if elsewhere and (req.cheapest_regions or not any(c.feasible for c in candidates)) else []
    if not any(c.feasible for c in candidates):
        warnings.append(note("nothing_serves"))
        if regional:
            warnings.append(note("region_nothing_fits", region=req.region, regions=fitting_elsewhere(catalog, others, req.max_usd_per_hour)))
    elif not any(c.meets_targets for c in candidates):
        near = next(c for c in candidates if c.feasible)  # ranked: cheapest (or fastest) first
        warnings.append(note("nothing_meets_targets", instance=near.instance, usd_per_hour=near.usd_per_hour,
                             misses=[r for r in near.reasons if r.code in {"over_budget", "under_speed", "over_ttft"}]))  # fmt: skip
    result = Plan(
        why_not=_why_not(req, candidates),
        request=_normalised(ctx),
        model=model_summary(ctx.served),
        budget=_budget(ctx),
        candidates=candidates,
        not_evaluated=offered_only(catalog, req.region, selection.skipped),
        warnings=warnings,
        assumptions=assumptions,
        catalog_as_of=_as_of(catalog, req.region),
        catalog_version=catalog.digest,
        price_region=req.region if catalog.regions.get(req.region) else catalog.region,
        regions=tuple(cheapest_regions(catalog, candidates + others, req.max_usd_per_hour, req.cheapest_regions))
        if req.cheapest_regions
        else (),
    )
    if not advise:
        return result
    found = fixes(req, result, catalog, lambda r, c: plan(r, c, advise=False))
    return result._replace(fixes=tuple(found)) if found else result


def _as_of(catalog: Catalog, region: str) -> dict[str, str]:
    """The catalog's dates, with the region's price date when the plan is priced there."""
    if region == catalog.region or region not in catalog.regions:
        return catalog.as_of
    return {**catalog.as_of, "prices": catalog.as_of.get("region_prices", catalog.as_of["prices"])}


__all__ = ["plan"]
