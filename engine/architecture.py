"""Parameter counts by tensor group, and KV-cache bytes per token, from a model's architecture.

Everything here is derived from the config-level architecture in the catalog: no
per-model constants. The counts follow the tensors vLLM actually allocates
(vocab-parallel embeddings, replicated KV heads when TP exceeds them, MLA's
compressed latent cache).
"""

from typing import NamedTuple

from engine.catalog.schema import Arch


class LayerParams(NamedTuple):
    """Parameters of one decoder layer, by group."""

    attention: int
    mlp: int = 0  # dense MLP
    experts: int = 0  # routed experts (all resident)
    shared: int = 0  # shared experts
    router: int = 0
    norms: int = 0

    @property
    def quantizable(self) -> int:
        return self.attention + self.mlp + self.experts + self.shared

    @property
    def total(self) -> int:
        return self.quantizable + self.router + self.norms


class ParamBreakdown(NamedTuple):
    embed: int
    lm_head: int  # 0 when tied to the embeddings
    layers: tuple[LayerParams, ...]
    final_norm: int
    vision: int

    @property
    def total(self) -> int:
        return self.embed + self.lm_head + self.final_norm + self.vision + sum(layer.total for layer in self.layers)

    @property
    def expert_params(self) -> int:
        return sum(layer.experts for layer in self.layers)


def _standard_attention(arch: Arch) -> int:
    q = arch.hidden * arch.heads * arch.head_dim
    kv = 2 * arch.hidden * arch.kv_heads * arch.head_dim
    o = arch.heads * arch.head_dim * arch.hidden
    bias = (arch.heads + 2 * arch.kv_heads) * arch.head_dim if arch.attention_bias else 0
    return q + kv + o + bias


def _mla_attention(arch: Arch) -> int:
    mla = arch.mla
    assert mla is not None
    qk_head = mla.qk_nope_head_dim + mla.qk_rope_head_dim
    if mla.q_lora_rank:
        q = arch.hidden * mla.q_lora_rank + mla.q_lora_rank + mla.q_lora_rank * arch.heads * qk_head
    else:
        q = arch.hidden * arch.heads * qk_head
    kv_a = arch.hidden * (mla.kv_lora_rank + mla.qk_rope_head_dim) + mla.kv_lora_rank
    kv_b = mla.kv_lora_rank * arch.heads * (mla.qk_nope_head_dim + mla.v_head_dim)
    o = arch.heads * mla.v_head_dim * arch.hidden
    return q + kv_a + kv_b + o


def _linear_attention(arch: Arch) -> int:
    lin = arch.linear_attention
    assert lin is not None
    key = lin.key_heads * lin.key_head_dim
    value = lin.value_heads * lin.value_head_dim
    in_proj = arch.hidden * (2 * key + 2 * value) + arch.hidden * 2 * lin.value_heads
    conv = (2 * key + value) * lin.conv_kernel
    out = value * arch.hidden
    return in_proj + conv + out + 2 * lin.value_heads + lin.value_head_dim


def _mlp(hidden: int, intermediate: int, gated: bool) -> int:
    return (3 if gated else 2) * hidden * intermediate


def is_moe_layer(arch: Arch, index: int) -> bool:
    moe = arch.moe
    if moe is None or index < moe.first_dense_layers:
        return False
    return (index + 1) % moe.layer_step == 0


def is_linear_attention_layer(arch: Arch, index: int) -> bool:
    """Hybrid linear-attention models keep full attention on every Nth layer (the last of each group)."""
    lin = arch.linear_attention
    if lin is None:
        return False
    full = arch.layers - lin.linear_layers
    period = arch.layers // full if full else arch.layers + 1
    return (index + 1) % period != 0


def param_breakdown(arch: Arch) -> ParamBreakdown:
    gated = arch.mlp == "gated"
    standard = _mla_attention(arch) if arch.mla else _standard_attention(arch)
    layers: list[LayerParams] = []
    for index in range(arch.layers):
        attention = _linear_attention(arch) if is_linear_attention_layer(arch, index) else standard
        norms = 2 * arch.hidden
        if is_moe_layer(arch, index):
            moe = arch.moe
            assert moe is not None
            layers.append(
                LayerParams(
                    attention=attention,
                    experts=moe.experts * _mlp(arch.hidden, moe.expert_intermediate, gated),
                    shared=moe.shared_experts * _mlp(arch.hidden, moe.shared_intermediate, gated),
                    router=arch.hidden * moe.experts,
                    norms=norms,
                )
            )
        else:
            layers.append(
                LayerParams(attention=attention, mlp=_mlp(arch.hidden, arch.intermediate, gated), norms=norms)
            )
    embed = arch.vocab * arch.hidden
    return ParamBreakdown(
        embed=embed,
        lm_head=0 if arch.tied_embeddings else embed,
        layers=tuple(layers),
        final_norm=arch.hidden,
        vision=arch.vision_params,
    )


def active_params(arch: Arch, breakdown: ParamBreakdown) -> int:
    """Parameters touched per token: every dense weight, only the routed experts a token picks."""
    if arch.moe is None:
        return breakdown.total - breakdown.vision
    share = arch.moe.active / arch.moe.experts
    return breakdown.total - breakdown.vision - round(breakdown.expert_params * (1 - share))


# --- KV cache -------------------------------------------------------------------------


def kv_heads_per_gpu(arch: Arch, tp: int) -> int:
    """vLLM shards KV heads over TP ranks and replicates them when there are fewer heads than ranks."""
    return max(1, arch.kv_heads // tp)


def kv_bytes_per_token_layer(arch: Arch, tp: int, element_bytes: int) -> int:
    """KV bytes one token occupies in one attention layer on one GPU."""
    if arch.mla:
        # the compressed latent plus the rope key, identical on every TP rank
        return (arch.mla.kv_lora_rank + arch.mla.qk_rope_head_dim) * element_bytes
    return 2 * kv_heads_per_gpu(arch, tp) * arch.head_dim * element_bytes


class AttentionLayers(NamedTuple):
    """How many layers keep a per-token KV cache, and how far back each kind looks."""

    full: int
    windowed: tuple[tuple[int, int], ...]  # (layer count, window tokens)
    linear: int
    #: issue 10: chunked-local layers (the last `windowed` entry) attend within their chunk, but vLLM
    #: turns the hybrid KV cache manager off for them by default, so their pages hold the whole context
    #: (vllm/config/vllm.py VllmConfig.__post_init__@v0.21.0, config/__init__.py@v0.10.1: unless
    #: VLLM_ALLOW_CHUNKED_LOCAL_ATTN_WITH_HYBRID_KV_CACHE=1; kv_cache_utils.py then makes them FullAttentionSpec)
    chunked: int = 0

    @property
    def with_kv(self) -> int:
        return self.full + sum(count for count, _ in self.windowed)

    @property
    def paged_full(self) -> int:
        """Layers whose KV pages hold the whole context."""
        return self.full + self.chunked

    @property
    def paged_windows(self) -> tuple[tuple[int, int], ...]:
        """Windowed layers whose KV pages are freed outside the window (sliding windows)."""
        return self.windowed[:-1] if self.chunked else self.windowed


def attention_layers(arch: Arch, layer_count: int | None = None) -> AttentionLayers:
    """Split `layer_count` layers (default: all) into full, windowed and linear-attention kinds.

    With pipeline parallelism each stage holds a share; the kinds are spread
    evenly, which is how the interleaved patterns of these models fall.
    """
    total = arch.layers
    count = total if layer_count is None else layer_count
    linear = arch.linear_attention.linear_layers if arch.linear_attention else 0
    windowed: list[tuple[int, int]] = []
    if arch.sliding_window and arch.sliding_window.sliding_layers:
        windowed.append((arch.sliding_window.sliding_layers, arch.sliding_window.window))
    if arch.chunked_attention and arch.chunked_attention.chunked_layers:
        windowed.append((arch.chunked_attention.chunked_layers, arch.chunked_attention.chunk))
    full = total - linear - sum(n for n, _ in windowed)

    def share(n: int) -> int:
        return round(n * count / total)

    scaled_windows = tuple((share(n), w) for n, w in windowed)
    scaled_linear = share(linear)
    chunked = arch.chunked_attention.chunked_layers if arch.chunked_attention else 0  # issue 10
    return (
        AttentionLayers(
            full=count - scaled_linear - sum(n for n, _ in scaled_windows),
            windowed=scaled_windows,
            linear=scaled_linear,
            chunked=scaled_windows[-1][0] if chunked else 0,
        )
        if count != total
        else AttentionLayers(full=full, windowed=tuple(windowed), linear=linear, chunked=chunked)
    )


def linear_state_bytes_per_layer(arch: Arch, tp: int) -> int:
    """Recurrent + convolution state one sequence keeps in one linear-attention layer (FP32 state)."""
    lin = arch.linear_attention
    if lin is None:
        return 0
    value_heads = max(1, lin.value_heads // tp)
    key_heads = max(1, lin.key_heads // tp)
    recurrent = value_heads * lin.key_head_dim * lin.value_head_dim * 4
    conv_channels = 2 * key_heads * lin.key_head_dim + value_heads * lin.value_head_dim
    conv = conv_channels * (lin.conv_kernel - 1) * 2
    return recurrent + conv
