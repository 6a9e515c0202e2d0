"""The model as the answer describes it: sizes, attention kind and numbers (templates word them)."""

from __future__ import annotations

from engine.plan import ModelSummary
from engine.served import ServedModel


def model_summary(served: ServedModel) -> ModelSummary:
    arch = served.arch
    attention = "mla" if arch.mla else ("mha" if arch.kv_heads == arch.heads else "gqa")
    window = arch.sliding_window if arch.sliding_window and arch.sliding_window.sliding_layers else None
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
        kv_lora_rank=arch.mla.kv_lora_rank if arch.mla else None,
        rope_dim=arch.mla.qk_rope_head_dim if arch.mla else None,
        sliding_layers=window.sliding_layers if window else 0,
        window=window.window if window else None,
        experts=arch.moe.experts if arch.moe else None,
        active_experts=arch.moe.active if arch.moe else None,
        max_context=arch.max_context,
        weight_layout=served.fmt.dtype,
        source=served.spec.source,
    )
