"""A model as it will be served: architecture + weight format + KV dtype, split over GPUs.

This is where "70B in FP8" becomes bytes per GPU: quantized linear layers,
BF16 embeddings and lm_head, vocab-parallel sharding, pipeline stages.
"""

from functools import cached_property
from typing import NamedTuple

from engine.architecture import (
    AttentionLayers,
    ParamBreakdown,
    active_params,
    attention_layers,
    kv_bytes_per_token_layer,
    kv_heads_per_gpu,
    linear_state_bytes_per_layer,
    param_breakdown,
)
from engine.catalog.schema import Arch, ModelSpec
from engine.dtypes import PLAIN_BYTES, WEIGHT_FORMATS, WeightFormat, resolved_kv_dtype
from engine.memo import Memo
from engine.serving_extras import NO_EXTRAS, Extras

GIB = 2**30


class Stage(NamedTuple):
    """One pipeline stage: which layers it holds and whether it has the embeddings / lm_head."""

    first_layer: int
    layer_count: int
    first: bool
    last: bool


def pipeline_stages(layers: int, pp: int) -> tuple[Stage, ...]:
    """vLLM's split: equal shares, the remainder going to the stages just before the last."""
    sizes = [layers // pp] * pp
    for i in range(2, layers % pp + 2):
        sizes[-i] += 1
    stages, start = [], 0
    for index, size in enumerate(sizes):
        stages.append(Stage(start, size, index == 0, index == pp - 1))
        start += size
    return tuple(stages)


class ServedModel:
    """Facts set once, plus a bounded memo of per-(stage, TP) byte counts, owned by this object.

    A plain class (equal only to itself, like the memo it owns): see engine/notes.py on dataclasses.
    """

    def __init__(
        self, spec: ModelSpec, fmt: WeightFormat, kv_dtype: str, expert_align: tuple[int, int] = (1, 1),
        extras: Extras = NO_EXTRAS,
    ) -> None:  # fmt: skip
        self.spec = spec
        self.fmt = fmt
        self.kv_dtype = kv_dtype  # resolved: bf16 / fp16 / fp32 / fp8
        #: (hidden, intermediate-per-rank) alignment the MoE kernel pads expert weights to
        self.expert_align = expert_align
        self.extras = extras  # issue 10: text-only VLM, drafter, LoRA (engine/serving_extras.py)
        self.memo = Memo(4096)

    def __repr__(self) -> str:
        return f"ServedModel({self.spec.id!r}, {self.fmt.dtype!r}, kv={self.kv_dtype!r}, {self.extras!r})"

    @property
    def arch(self) -> Arch:
        return self.spec.arch

    @cached_property
    def params(self) -> ParamBreakdown:
        return param_breakdown(self.arch)

    @cached_property
    def active_params(self) -> int:
        return active_params(self.arch, self.params)

    @property
    def base_bytes(self) -> int:
        return PLAIN_BYTES[self.fmt.base]

    @property
    def kv_element_bytes(self) -> int:
        return PLAIN_BYTES[self.kv_dtype]

    def _quantized(self, group: str) -> bool:
        if self.fmt.dtype == "mxfp4" and self.arch.moe is not None:
            return group == "experts"  # gpt-oss style: only routed experts are MXFP4
        return True

    def _expert_params_per_gpu(self, tp: int) -> float:
        """Routed-expert parameters on one GPU of a MoE layer, after the kernel's padding."""
        moe = self.arch.moe
        assert moe is not None
        align_hidden, align_inter = self.expert_align
        hidden = _round_up(self.arch.hidden, align_hidden)
        inter = _round_up(-(-moe.expert_intermediate // tp), align_inter)
        return moe.experts * (3 if self.arch.mlp == "gated" else 2) * hidden * inter

    @cached_property
    def _layer_sums(self) -> tuple[list[float], list[float], list[int], list[int]]:
        """Prefix sums over layers: TP-sharded bytes, replicated bytes, MoE layers, attention layers.

        A stage's bytes on one GPU are then O(1) for any TP: sharded / tp + replicated,
        plus padded experts and KV-projection replication where they apply.
        """
        linear, base = self.fmt.linear_bytes, self.base_bytes
        sharded, replicated, moe_layers, kv_layers = [0.0], [0.0], [0], [0]
        for layer in self.params.layers:
            total = 0.0
            for group in ("attention", "mlp", "shared"):
                total += getattr(layer, group) * (linear if self._quantized(group) else base)
            if layer.experts and self.expert_align == (1, 1):
                total += layer.experts * (linear if self._quantized("experts") else base)
            sharded.append(sharded[-1] + total)
            replicated.append(replicated[-1] + (layer.router + layer.norms) * base)
            moe_layers.append(moe_layers[-1] + (1 if layer.experts and self.expert_align != (1, 1) else 0))
            kv_layers.append(kv_layers[-1] + (1 if layer.attention else 0))
        return sharded, replicated, moe_layers, kv_layers

    def _layers_bytes(self, first: int, count: int, tp: int) -> float:
        sharded, replicated, moe_layers, kv_layers = self._layer_sums
        end = first + count
        total = (sharded[end] - sharded[first]) / tp + replicated[end] - replicated[first]
        padded_moe = moe_layers[end] - moe_layers[first]
        if padded_moe:
            per_byte = self.fmt.linear_bytes if self._quantized("experts") else self.base_bytes
            total += padded_moe * self._expert_params_per_gpu(tp) * per_byte
        if not self.arch.mla and self.arch.kv_heads < tp:
            # KV projections are replicated on ranks beyond the number of KV heads
            kv_proj = 2 * self.arch.hidden * self.arch.head_dim
            per_byte = self.fmt.linear_bytes if self._quantized("attention") else self.base_bytes
            extra = kv_proj * (kv_heads_per_gpu(self.arch, tp) - self.arch.kv_heads / tp) * per_byte
            total += extra * (kv_layers[end] - kv_layers[first])
        return total

    def _rope_cache_bytes(self) -> float:
        positions = self.arch.rope_max_positions or self.arch.max_context
        rotary_dim = self.arch.mla.qk_rope_head_dim if self.arch.mla else self.arch.head_dim
        return positions * rotary_dim * PLAIN_BYTES[self.fmt.compute]

    def busiest_stage_bytes(self, tp: int, pp: int) -> float:
        """Weight bytes on one GPU of the heaviest pipeline stage."""
        return self.memo.get(("busiest", tp, pp), self._busiest, tp, pp)

    def _busiest(self, tp: int, pp: int) -> float:
        return max(self.stage_weight_bytes(s, tp) for s in pipeline_stages(self.arch.layers, pp))

    def stage_weight_bytes(self, stage: Stage, tp: int) -> float:
        """Bytes of weights (and fixed buffers loaded with them) on one GPU of a stage."""
        return self.memo.get(("weights", stage, tp), ServedModel._stage_weight_bytes, self, stage, tp)

    def stage_layer_bytes(self, stage: Stage, tp: int) -> float:
        """Bytes of the decoder layers alone on one GPU of a stage (what --cpu-offload-gb can move)."""
        return self._layers_bytes(stage.first_layer, stage.layer_count, tp)

    def _stage_weight_bytes(self, stage: Stage, tp: int) -> float:
        total = self._layers_bytes(stage.first_layer, stage.layer_count, tp)
        base = self.base_bytes
        if stage.first:
            total += self.params.embed * base / tp + self.params.vision * base / tp * self.extras.tower
        if stage.last:
            lm_head = self.params.lm_head or (self.params.embed if not stage.first else 0)
            total += lm_head * base / tp + self.params.final_norm * base
        if self.extras != NO_EXTRAS:  # issue 10: drafter and LoRA stacks
            from engine.extra_memory import extra_weight_bytes  # it imports this module

            total += extra_weight_bytes(self, stage, tp)
        return total + self._rope_cache_bytes()

    @cached_property
    def total_weight_bytes(self) -> float:
        return self.stage_weight_bytes(pipeline_stages(self.arch.layers, 1)[0], 1)

    @cached_property
    def expert_bytes(self) -> float:
        """Whole-model bytes of routed experts (unpadded)."""
        return self.weight_bytes_by_group.get("experts", 0.0)

    @cached_property
    def weight_bytes_by_group(self) -> dict[str, float]:
        """Whole-model bytes by tensor group, for explanations."""
        groups = {"attention": 0.0, "mlp": 0.0, "experts": 0.0, "shared_experts": 0.0, "norms_and_routers": 0.0}
        for layer in self.params.layers:
            for group, key in (
                ("attention", "attention"),
                ("mlp", "mlp"),
                ("experts", "experts"),
                ("shared", "shared_experts"),
            ):
                count = getattr(layer, group)
                groups[key] += count * (self.fmt.linear_bytes if self._quantized(group) else self.base_bytes)
            groups["norms_and_routers"] += (layer.router + layer.norms) * self.base_bytes
        groups["embeddings"] = self.params.embed * self.base_bytes
        groups["lm_head"] = self.params.lm_head * self.base_bytes
        groups["vision"] = self.params.vision * self.base_bytes * self.extras.tower
        return {k: v for k, v in groups.items() if v}

    # --- KV cache ---------------------------------------------------------------------

    def kv_layers(self, stage: Stage | None = None) -> AttentionLayers:
        count = stage.layer_count if stage else None
        return self.memo.get(("layers", count), attention_layers, self.arch, count)

    def kv_bytes_per_token(self, tp: int = 1, stage: Stage | None = None) -> int:
        """Bytes per token if every KV layer held the full context (how vLLM counts capacity)."""
        return self.memo.get(("per_token", tp, stage.layer_count if stage else None), self._kv_per_token, tp, stage)

    def _kv_per_token(self, tp: int, stage: Stage | None) -> int:
        own = self.kv_layers(stage).with_kv * kv_bytes_per_token_layer(self.arch, tp, self.kv_element_bytes)
        if self.extras.draft:  # issue 10: the drafter's layers share the pool
            from engine.extra_memory import extra_kv_bytes_per_token

            own += extra_kv_bytes_per_token(self, tp, stage)
        return own

    def kv_bytes_per_request(
        self, context: int, tp: int, window_slack: int, stage: Stage | None = None, block: int = 1
    ) -> float:
        """Bytes one request of `context` tokens pins, in whole blocks.

        Windowed layers hold at most window - 1 + slack tokens (slack: the tokens one
        scheduler step may add, vLLM's max_num_batched_tokens) plus one spare block.
        """
        key = ("request", context, tp, window_slack, stage.layer_count if stage else None, block)
        return self.memo.get(key, ServedModel._kv_bytes_per_request, self, context, tp, window_slack, stage, block)

    def _kv_bytes_per_request(self, context: int, tp: int, window_slack: int, stage: Stage | None, block: int) -> float:
        layers = self.kv_layers(stage)
        per_layer = kv_bytes_per_token_layer(self.arch, tp, self.kv_element_bytes)
        tokens = layers.paged_full * _round_up(context, block)  # issue 10: chunked layers paged in full
        for count, window in layers.paged_windows:
            need = min(context, window - 1 + window_slack)
            tokens += count * (_round_up(need, block) + (block if block > 1 else 0))
        state = layers.linear * linear_state_bytes_per_layer(self.arch, tp)
        if self.extras.draft:  # issue 10: the drafter's layers hold this request too
            from engine.extra_memory import extra_kv_bytes_per_request

            return tokens * per_layer + state + extra_kv_bytes_per_request(self, context, tp, window_slack, stage, block)
        return tokens * per_layer + state

    def kv_bytes_read_per_step(self, context: int, tp: int) -> float:
        """KV bytes one decode step reads for one sequence at `context` tokens (all stages)."""
        layers = self.kv_layers()
        per_layer = kv_bytes_per_token_layer(self.arch, tp, self.kv_element_bytes)
        tokens = layers.full * context + sum(n * min(context, w) for n, w in layers.windowed)
        return tokens * per_layer + layers.linear * linear_state_bytes_per_layer(self.arch, tp)


def _round_up(tokens: int, block: int) -> int:
    return -(-tokens // block) * block


def serve(
    spec: ModelSpec,
    weights: str | None,
    kv_dtype: str,
    expert_align: tuple[int, int] = (1, 1),
    memo: Memo | None = None,
    extras: Extras = NO_EXTRAS,
) -> ServedModel:
    """Pick the weight format (the checkpoint's own when none is asked) and resolve "auto" KV.

    With a `memo` (the catalog's), the served model -- and its per-stage byte counts -- are
    reused across plans; a model from outside the catalog is keyed by identity of its spec.
    """
    fmt = WEIGHT_FORMATS[weights or spec.dtype]

    def build() -> ServedModel:
        return ServedModel(spec, fmt, resolved_kv_dtype(kv_dtype, fmt), expert_align, extras)

    if memo is None:
        return build()
    served = memo.get(("served", spec.id, fmt.dtype, kv_dtype, expert_align, extras), build)
    return served if served.spec is spec else build()


__all__ = ["GIB", "ServedModel", "Stage", "pipeline_stages", "serve"]
