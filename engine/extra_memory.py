"""Bytes that a vision encoder, a speculative drafter and LoRA slots add at vLLM start-up (issue 10).

Each term mirrors an allocation in vLLM's code (v0.21.0 unless said; docs/vllm-memory.md):

* multimodal profile -- ``GPUModelRunner.profile_run`` runs the encoder on
  ``MultiModalBudget.mm_max_items_per_batch`` dummy items of the largest size, keeps their
  outputs in ``encoder_cache`` through the text dummy run, then clears them;
* drafter -- ``SpeculativeConfig`` loads a draft checkpoint (method ``draft_model``) or the
  target's ``num_nextn_predict_layers`` MTP layers (``DeepSeekMultiTokenPredictorLayer``,
  embeddings and head shared by ``_maybe_share_embeddings`` / ``_maybe_share_lm_head``); their
  attention layers join the KV cache spec, and ``UniformTypeKVCacheSpecs.page_size_bytes`` sums
  every layer's page, so the drafter's bytes per token add to the target's;
* LoRA -- ``LoRAModelManager._create_lora_modules`` wraps every linear layer, the embeddings and
  the logits; ``BaseLinearLayerWithLoRA.create_lora_weights`` allocates ``max_loras`` stacks of
  A (rank x input) and B (output x rank) per slice, sharded like the layer it wraps.
"""

from __future__ import annotations

from engine.architecture import (
    is_linear_attention_layer,
    is_moe_layer,
    kv_bytes_per_token_layer,
    kv_heads_per_gpu,
)
from engine.dtypes import PLAIN_BYTES
from engine.served import GIB, ServedModel, Stage, pipeline_stages


def multimodal_peak_gib(served: ServedModel, base_gib: float, batching_tokens: int, max_seqs: int, tp: int,
                        text_peak_gib: float, first_stage: bool) -> float:  # fmt: skip
    """The profiling run's peak with the encoder's dummy batch: its own pass, or its outputs held over the text pass.

    Items: ``compute_mm_encoder_budget`` gives max(max_num_batched_tokens, tokens per item);
    ``MultiModalBudget._get_max_items`` fits budget // tokens items, at least one, at most one
    per sequence. The encoder pass is sized like the text forward pass (two hidden-state copies,
    then q/k/v and the MLP's widest projections, TP-sharded) plus the pixel values it reads.
    """
    vision = served.arch.vision
    if vision is None or not served.extras.mm_profile or not first_stage:
        return text_peak_gib
    per_item = vision.tokens_per_item
    items = max(1, min(max(batching_tokens, per_item) // per_item, max_seqs))
    act = PLAIN_BYTES[served.fmt.compute]
    positions = items * vision.patches_per_item
    width = (3 if vision.mlp == "gated" else 2) * vision.intermediate
    encoder = positions * act * (2 * vision.hidden + (width + 3 * vision.hidden) / tp)
    pixels = positions * vision.values_per_patch * act
    outputs = items * per_item * served.arch.hidden * act
    return max(base_gib + (encoder + pixels) / GIB, text_peak_gib + outputs / GIB)


def extra_weight_bytes(served: ServedModel, stage: Stage, tp: int) -> float:
    """Drafter and LoRA bytes on one GPU of `stage` (the drafter sits with the last stage)."""
    extras = served.extras
    total = 0.0
    if extras.draft and stage.last:
        if extras.draft.model is not None:
            drafter = extras.draft.model
            total += drafter.stage_weight_bytes(pipeline_stages(drafter.arch.layers, 1)[0], tp)
        total += extras.draft.mtp_layers * _mtp_layer_bytes(served, tp)
    if extras.lora:
        total += lora_bytes(served, stage, tp)
    return total


def _mtp_layer_bytes(served: ServedModel, tp: int) -> float:
    """One MTP layer: a decoder layer shaped like the last one, plus eh_proj (2h -> h) and three norms.

    DeepSeek's eh_proj is a plain nn.Linear, so every rank holds all of it (Qwen3-Next shards it).
    """
    arch = served.arch
    layer = served._layers_bytes(arch.layers - 1, 1, tp)  # the plain layer: no LoRA on the drafter
    return layer + (2 * arch.hidden**2 + 3 * arch.hidden) * served.base_bytes


def extra_kv_bytes_per_token(served: ServedModel, tp: int, stage: Stage | None) -> int:
    """The drafter's KV bytes per token: its attention layers share the pool's blocks."""
    draft = served.extras.draft
    if draft is None or (stage is not None and not stage.last):
        return 0
    per_token = draft.mtp_layers * kv_bytes_per_token_layer(served.arch, tp, served.kv_element_bytes)
    if draft.model is not None:
        per_token += draft.model.kv_bytes_per_token(tp)
    return per_token


def extra_kv_bytes_per_request(
    served: ServedModel, context: int, tp: int, window_slack: int, stage: Stage | None, block: int
) -> float:
    """The blocks one request pins in the drafter's layers."""
    draft = served.extras.draft
    if draft is None or (stage is not None and not stage.last):
        return 0.0
    tokens = -(-context // block) * block
    total = float(draft.mtp_layers * tokens * kv_bytes_per_token_layer(served.arch, tp, served.kv_element_bytes))
    if draft.model is not None:
        total += draft.model.kv_bytes_per_request(context, tp, window_slack, None, block)
    return total


def lora_bytes(served: ServedModel, stage: Stage, tp: int) -> float:
    """LoRA A/B stacks on one GPU of `stage`, in the LoRA dtype (``lora_dtype`` auto = the model's).

    Column-parallel layers keep A whole and shard B's output; row-parallel layers shard A's
    input and keep B whole; merged layers (qkv, gate_up) have one A and one B per slice.
    Attention of MLA and linear-attention layers is left out (the answer says so).
    """
    lora = served.extras.lora
    assert lora is not None
    arch = served.arch
    h, rank = arch.hidden, lora.rank

    def column(inputs: int, outputs: list[float]) -> float:
        return rank * (len(outputs) * inputs + sum(outputs))

    def row(inputs: float, outputs: int) -> float:
        return rank * (inputs + outputs)

    q = arch.heads * arch.head_dim
    kv = kv_heads_per_gpu(arch, tp) * arch.head_dim
    attention = column(h, [q / tp, kv, kv]) + row(q / tp, h)
    gated = arch.mlp == "gated"

    def mlp(intermediate: int) -> float:
        shard = intermediate / tp
        return column(h, [shard, shard] if gated else [shard]) + row(shard, h)

    params = 0.0
    for index in range(stage.first_layer, stage.first_layer + stage.layer_count):
        if not arch.mla and not is_linear_attention_layer(arch, index):
            params += attention
        if is_moe_layer(arch, index):
            moe = arch.moe
            assert moe is not None
            params += moe.experts * mlp(moe.expert_intermediate) + row(h, moe.experts)  # experts + router
            if moe.shared_experts:
                params += mlp(moe.shared_experts * moe.shared_intermediate)
        else:
            params += mlp(arch.intermediate)
    if stage.first:
        params += rank * (arch.vocab + h)  # VocabParallelEmbeddingWithLoRA: A vocab x rank, B hidden x rank
    if stage.last:
        params += rank * (h + arch.vocab)  # LogitsProcessorWithLoRA: A rank x hidden, B vocab x rank
    return params * lora.max_loras * PLAIN_BYTES[served.fmt.compute]
