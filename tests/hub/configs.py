"""config.json of a few catalog models, as published on the Hugging Face Hub (the fields that shape them).

Each dict keeps the keys of the real file that matter for sizing, with the real values; the source
of each is the catalog entry's own `source:` (the file on huggingface.co), checked on 2026-12-01.
`tensors(config)` builds safetensors header entries whose names and shapes follow the config, the
way transformers names them (the weights themselves are never needed: only the headers are read).
"""

from __future__ import annotations

from typing import Any

CONFIGS: dict[str, dict[str, Any]] = {
    # https://huggingface.co/meta-llama/Llama-3.1-8B-Instruct/blob/main/config.json
    "meta-llama/Llama-3.1-8B-Instruct": {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "attention_bias": False, "head_dim": 128,
        "hidden_act": "silu", "hidden_size": 4096, "intermediate_size": 14336, "max_position_embeddings": 131072,
        "mlp_bias": False, "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
        "rope_scaling": {"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                         "original_max_position_embeddings": 8192, "rope_type": "llama3"},
        "rope_theta": 500000.0, "tie_word_embeddings": False, "torch_dtype": "bfloat16", "vocab_size": 128256,
    },
    # https://huggingface.co/Qwen/Qwen2.5-7B-Instruct/blob/main/config.json
    "Qwen/Qwen2.5-7B-Instruct": {
        "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_act": "silu", "hidden_size": 3584,
        "intermediate_size": 18944, "max_position_embeddings": 32768, "max_window_layers": 28,
        "num_attention_heads": 28, "num_hidden_layers": 28, "num_key_value_heads": 4, "rope_theta": 1000000.0,
        "sliding_window": 131072, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
        "use_sliding_window": False, "vocab_size": 152064,
    },
    # https://huggingface.co/mistralai/Mixtral-8x7B-Instruct-v0.1/blob/main/config.json
    "mistralai/Mixtral-8x7B-Instruct-v0.1": {
        "architectures": ["MixtralForCausalLM"], "model_type": "mixtral", "hidden_act": "silu", "hidden_size": 4096,
        "intermediate_size": 14336, "max_position_embeddings": 32768, "num_attention_heads": 32,
        "num_experts_per_tok": 2, "num_hidden_layers": 32, "num_key_value_heads": 8, "num_local_experts": 8,
        "rope_theta": 1000000.0, "sliding_window": None, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
        "vocab_size": 32000,
    },
    # https://huggingface.co/google/gemma-2-9b-it/blob/main/config.json
    "google/gemma-2-9b-it": {
        "architectures": ["Gemma2ForCausalLM"], "model_type": "gemma2", "attn_logit_softcapping": 50.0,
        "final_logit_softcapping": 30.0, "head_dim": 256, "hidden_activation": "gelu_pytorch_tanh",
        "hidden_size": 3584, "intermediate_size": 14336, "max_position_embeddings": 8192,
        "num_attention_heads": 16, "num_hidden_layers": 42, "num_key_value_heads": 8,
        "query_pre_attn_scalar": 256, "sliding_window": 4096, "torch_dtype": "float32", "vocab_size": 256000,
    },
    # https://huggingface.co/deepseek-ai/DeepSeek-V2-Lite-Chat/blob/main/config.json
    "deepseek-ai/DeepSeek-V2-Lite-Chat": {
        "architectures": ["DeepseekV2ForCausalLM"], "model_type": "deepseek_v2", "first_k_dense_replace": 1,
        "hidden_act": "silu", "hidden_size": 2048, "intermediate_size": 10944, "kv_lora_rank": 512,
        "max_position_embeddings": 163840, "moe_intermediate_size": 1408, "moe_layer_freq": 1,
        "n_routed_experts": 64, "n_shared_experts": 2, "num_attention_heads": 16, "num_experts_per_tok": 6,
        "num_hidden_layers": 27, "num_key_value_heads": 16, "q_lora_rank": None, "qk_nope_head_dim": 128,
        "qk_rope_head_dim": 64, "tie_word_embeddings": False, "torch_dtype": "bfloat16", "v_head_dim": 128,
        "vocab_size": 102400,
    },
    # https://huggingface.co/openai/gpt-oss-20b/blob/main/config.json
    "openai/gpt-oss-20b": {
        "architectures": ["GptOssForCausalLM"], "model_type": "gpt_oss", "attention_bias": True, "head_dim": 64,
        "hidden_act": "silu", "hidden_size": 2880, "intermediate_size": 2880,
        "layer_types": ["sliding_attention", "full_attention"] * 12, "max_position_embeddings": 131072,
        "num_attention_heads": 64, "num_experts_per_tok": 4, "experts_per_token": 4, "num_hidden_layers": 24,
        "num_key_value_heads": 8, "num_local_experts": 32, "sliding_window": 128, "tie_word_embeddings": False,
        "vocab_size": 201088, "torch_dtype": "bfloat16",
        "quantization_config": {"quant_method": "mxfp4", "modules_to_not_convert": [
            "model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"]},
    },
}  # fmt: skip

Tensors = dict[str, tuple[str, list[int]]]


def _mlp(out: Tensors, prefix: str, hidden: int, inner: int, names: tuple[str, str, str], dtype: str) -> None:
    gate, up, down = names
    out[f"{prefix}.{gate}.weight"] = (dtype, [inner, hidden])
    out[f"{prefix}.{up}.weight"] = (dtype, [inner, hidden])
    out[f"{prefix}.{down}.weight"] = (dtype, [hidden, inner])


def _attention(out: Tensors, p: str, c: dict[str, Any], bias: bool, dtype: str) -> None:
    hidden, heads = c["hidden_size"], c["num_attention_heads"]
    if "kv_lora_rank" in c:  # DeepSeek MLA
        qk = c["qk_nope_head_dim"] + c["qk_rope_head_dim"]
        out[f"{p}.q_proj.weight"] = (dtype, [heads * qk, hidden])
        out[f"{p}.kv_a_proj_with_mqa.weight"] = (dtype, [c["kv_lora_rank"] + c["qk_rope_head_dim"], hidden])
        out[f"{p}.kv_a_layernorm.weight"] = (dtype, [c["kv_lora_rank"]])
        out[f"{p}.kv_b_proj.weight"] = (dtype, [heads * (c["qk_nope_head_dim"] + c["v_head_dim"]), c["kv_lora_rank"]])
        out[f"{p}.o_proj.weight"] = (dtype, [hidden, heads * c["v_head_dim"]])
        return
    head_dim = c.get("head_dim") or hidden // heads
    kv = c.get("num_key_value_heads", heads) * head_dim
    for name, rows in (("q_proj", heads * head_dim), ("k_proj", kv), ("v_proj", kv)):
        out[f"{p}.{name}.weight"] = (dtype, [rows, hidden])
        if bias:
            out[f"{p}.{name}.bias"] = (dtype, [rows])
    out[f"{p}.o_proj.weight"] = (dtype, [hidden, heads * head_dim])


def tensors(c: dict[str, Any], dtype: str = "BF16") -> Tensors:
    """Header entries for a config, named as transformers saves them."""
    out: Tensors = {}
    hidden, kind = c["hidden_size"], c["model_type"]
    out["model.embed_tokens.weight"] = (dtype, [c["vocab_size"], hidden])
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}"
        _attention(out, f"{p}.self_attn", c, kind in ("qwen2", "gpt_oss"), dtype)
        norms = ["input_layernorm", "post_attention_layernorm"]
        if kind == "gemma2":
            norms += ["pre_feedforward_layernorm", "post_feedforward_layernorm"]
        for norm in norms:
            out[f"{p}.{norm}.weight"] = (dtype, [hidden])
        if kind == "gpt_oss":  # MXFP4 experts: two 4-bit values a byte in 32-value blocks, one E8M0 scale per block
            experts, inner = c["num_local_experts"], c["intermediate_size"]
            out[f"{p}.self_attn.o_proj.bias"] = (dtype, [hidden])
            out[f"{p}.self_attn.sinks"] = (dtype, [c["num_attention_heads"]])
            out[f"{p}.mlp.router.weight"] = (dtype, [experts, hidden])
            out[f"{p}.mlp.router.bias"] = (dtype, [experts])
            for name, rows, cols in (("gate_up_proj", 2 * inner, hidden), ("down_proj", hidden, inner)):
                out[f"{p}.mlp.experts.{name}_blocks"] = ("U8", [experts, rows, cols // 32, 16])
                out[f"{p}.mlp.experts.{name}_scales"] = ("U8", [experts, rows, cols // 32])
                out[f"{p}.mlp.experts.{name}_bias"] = (dtype, [experts, rows])
        elif kind == "mixtral":
            out[f"{p}.block_sparse_moe.gate.weight"] = (dtype, [c["num_local_experts"], hidden])
            for e in range(c["num_local_experts"]):
                _mlp(
                    out, f"{p}.block_sparse_moe.experts.{e}", hidden, c["intermediate_size"], ("w1", "w3", "w2"), dtype
                )
        elif "n_routed_experts" in c and i >= c["first_k_dense_replace"]:
            out[f"{p}.mlp.gate.weight"] = (dtype, [c["n_routed_experts"], hidden])
            inner = c["moe_intermediate_size"]
            for e in range(c["n_routed_experts"]):
                _mlp(out, f"{p}.mlp.experts.{e}", hidden, inner, ("gate_proj", "up_proj", "down_proj"), dtype)
            _mlp(out, f"{p}.mlp.shared_experts", hidden, inner * c["n_shared_experts"],
                 ("gate_proj", "up_proj", "down_proj"), dtype)  # fmt: skip
        else:
            _mlp(out, f"{p}.mlp", hidden, c["intermediate_size"], ("gate_proj", "up_proj", "down_proj"), dtype)
    out["model.norm.weight"] = (dtype, [hidden])
    if c.get("tie_word_embeddings") is False:
        out["lm_head.weight"] = (dtype, [c["vocab_size"], hidden])
    return out
