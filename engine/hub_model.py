"""A model the catalog lacks, from its Hub files (config.json + safetensors headers) to the catalog's ModelSpec.

Pure: `bot/hub.py` fetches the files and caches them; this maps them onto the same architecture and
weight layout the catalog uses, or refuses with a HeadroomError naming what is missing or unsupported.
The shape comes from the config, and the headers must agree with it (parameter count within
`PARAMS_TOLERANCE`): a name is never read for a size, and a config that disagrees with its weights
is refused rather than planned.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from engine.architecture import param_breakdown
from engine.catalog.loader import Catalog, validated
from engine.catalog.schema import Arch, Mla, ModelSpec, Moe, SlidingWindow
from engine.errors import HeadroomError, InvalidRequest
from engine.hub_weights import Quantization, WeightSummary, quantization

#: the config's shape must account for the headers' parameters to within this share
PARAMS_TOLERANCE = 0.02
#: a Hub repo id: owner/name
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")
_DTYPES = {"bfloat16": "bf16", "float16": "fp16", "half": "fp16", "float32": "bf16", "float": "bf16"}


class HubFiles(BaseModel):
    """What the bot read from the Hub for one repo at one revision (kept in the cache as JSON)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    repo: str
    revision: str  # the commit the files were read at
    config: dict[str, Any]
    weights: WeightSummary


def text_config(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """The language model's part of a config (`text_config` of a multimodal model, else the config itself)."""
    inner = config.get("text_config")
    return inner if isinstance(inner, Mapping) else config


def _int(cfg: Mapping[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = cfg.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


class _Reader:
    """Reads required integers from a config and collects the names of the missing ones."""

    def __init__(self, cfg: Mapping[str, Any]) -> None:
        self.cfg = cfg
        self.missing: list[str] = []

    def need(self, *keys: str) -> int:
        value = _int(self.cfg, *keys)
        if value is None:
            self.missing.append(keys[0])
            return 1
        return value


def _sliding(cfg: Mapping[str, Any], layers: int, max_context: int) -> SlidingWindow | None:
    """Windowed layers: from `layer_types`, Gemma 2's alternation, Gemma 3's pattern, or a model-wide window."""
    window = _int(cfg, "sliding_window")
    if not window or cfg.get("use_sliding_window") is False:
        return None
    kinds = cfg.get("layer_types")
    model_type = str(cfg.get("model_type") or "")
    if isinstance(kinds, list):
        count = sum(1 for kind in kinds if kind == "sliding_attention")
    elif model_type == "gemma2":
        count = layers // 2  # even-indexed layers are local
    elif model_type.startswith("gemma3"):
        count = layers - layers // (_int(cfg, "sliding_window_pattern") or 6)
    elif window >= max_context:
        return None  # a window as long as the context is no window
    else:
        count = layers  # vLLM applies a model-wide sliding_window to every layer
    return SlidingWindow(window=window, sliding_layers=count) if count else None


def _moe(repo: str, cfg: Mapping[str, Any], read: _Reader) -> Moe | None:
    experts = _int(cfg, "num_local_experts", "num_experts", "n_routed_experts")
    if not experts or experts < 2:
        return None
    if cfg.get("mlp_only_layers"):
        raise InvalidRequest("hub_unsupported", repo=repo, feature="mlp_only_layers")
    shared = _int(cfg, "n_shared_experts") or 0
    shared_size = _int(cfg, "moe_intermediate_size") or 0 if shared else 0
    if not shared and _int(cfg, "shared_expert_intermediate_size"):
        shared, shared_size = 1, _int(cfg, "shared_expert_intermediate_size") or 0
    step = cfg.get("decoder_sparse_step", cfg.get("moe_layer_freq", 1))
    if not isinstance(step, int) or isinstance(step, bool) or step < 1:
        raise InvalidRequest("hub_unsupported", repo=repo, feature="moe_layer_freq")
    return Moe(
        experts=experts,
        active=read.need("num_experts_per_tok", "moe_top_k", "num_experts_per_token"),
        expert_intermediate=read.need("moe_intermediate_size", "intermediate_size"),
        shared_experts=shared,
        shared_intermediate=shared_size,
        layer_step=step,
        first_dense_layers=_int(cfg, "first_k_dense_replace") or 0,
    )


def _mla(cfg: Mapping[str, Any], read: _Reader) -> Mla | None:
    if _int(cfg, "kv_lora_rank") is None:
        return None
    return Mla(
        q_lora_rank=_int(cfg, "q_lora_rank"),
        kv_lora_rank=read.need("kv_lora_rank"),
        qk_nope_head_dim=read.need("qk_nope_head_dim"),
        qk_rope_head_dim=read.need("qk_rope_head_dim"),
        v_head_dim=read.need("v_head_dim"),
    )


def hub_arch(repo: str, config: Mapping[str, Any], weights: WeightSummary) -> Arch:
    """The architecture config.json describes, in the catalog's terms; what the headers show wins on layout
    (an lm_head tensor or none, attention biases, a gated MLP or not)."""
    cfg = text_config(config)
    kinds = cfg.get("layer_types")
    if isinstance(kinds, list) and any(k not in ("full_attention", "sliding_attention") for k in kinds):
        raise InvalidRequest(
            "hub_unsupported", repo=repo, feature="layer_types " + ", ".join(sorted(set(map(str, kinds))))
        )
    if cfg.get("attention_chunk_size") or cfg.get("linear_num_value_heads"):
        raise InvalidRequest("hub_unsupported", repo=repo, feature="chunked or linear attention")
    read = _Reader(cfg)
    layers = read.need("num_hidden_layers", "n_layer", "num_layers")
    hidden = read.need("hidden_size", "n_embd", "d_model")
    heads = read.need("num_attention_heads", "n_head")
    vocab = read.need("vocab_size")
    max_context = read.need("max_position_embeddings", "max_sequence_length", "seq_length")
    moe, mla = _moe(repo, cfg, read), _mla(cfg, read)
    intermediate = _int(cfg, "intermediate_size", "ffn_hidden_size") if moe else read.need("intermediate_size")
    if read.missing:
        raise InvalidRequest("hub_config_incomplete", repo=repo, missing=read.missing)
    try:
        return validated(Arch, dict(
            layers=layers, hidden=hidden, heads=heads,
            kv_heads=_int(cfg, "num_key_value_heads") or heads,
            head_dim=_int(cfg, "head_dim") or hidden // heads,
            intermediate=intermediate or 0, vocab=vocab,
            tied_embeddings=not weights.lm_head, max_context=max_context, rope_max_positions=max_context,
            mlp="plain" if weights.plain_mlp else "gated", attention_bias=weights.attention_bias,
            moe=moe, mla=mla, sliding_window=_sliding(cfg, layers, max_context),
            vision_params=weights.vision_params,
        ))  # fmt: skip
    except ValidationError as exc:
        raise InvalidRequest("hub_unsupported", repo=repo, feature=exc.errors()[0]["msg"]) from exc


def _native(repo: str, config: Mapping[str, Any], quant: Quantization, weights: WeightSummary) -> str:
    """The checkpoint's format: its quantization, else the config's dtype (float32 served as bf16, as vLLM's
    dtype=auto does), else the float dtype most of its elements are stored in."""
    if quant.weights:
        return quant.weights
    for cfg in (config, text_config(config)):
        named = cfg.get("torch_dtype") or cfg.get("dtype")
        if isinstance(named, str) and named in _DTYPES:
            return _DTYPES[named]
    floats = {"BF16": "bf16", "F16": "fp16", "F32": "bf16"}
    found = max((n, d) for d, n in weights.stored.items() if d in floats) if weights.stored else None
    if found is None:
        raise InvalidRequest("hub_config_incomplete", repo=repo, missing=["torch_dtype"])
    return floats[found[1]]


def hub_spec(files: HubFiles) -> ModelSpec:
    """The ModelSpec a repo's files describe; HeadroomError when they are incomplete, unsupported or disagree."""
    quant = quantization(files.repo, files.config)
    arch = hub_arch(files.repo, files.config, files.weights)
    derived = param_breakdown(arch).total
    stored = files.weights.params + files.weights.vision_params
    if stored <= 0 or abs(derived - stored) > PARAMS_TOLERANCE * stored:
        raise InvalidRequest(
            "hub_shape_mismatch", repo=files.repo, config_params=derived, header_params=stored, revision=files.revision
        )
    model_type = str(text_config(files.config).get("model_type") or files.config.get("model_type") or "hub")
    family = re.sub(r"([a-z])(\d+)$", r"\1-\2", model_type.removesuffix("_text")).replace("_", "-")
    try:  # checked as the catalog's own models are (e.g. a weight block must be positive)
        return validated(ModelSpec, dict(
            id=files.repo, name=files.repo, family=family, size=f"{stored / 1e9:.3g}B",
            source=f"hub:{files.repo}@{files.revision}", published_params_b=round(stored / 1e9, 3),
            params_source=f"safetensors headers of {files.repo}@{files.revision}",
            dtype=_native(files.repo, files.config, quant, files.weights), arch=arch, hub_revision=files.revision,
            hub_method=quant.method, weight_block=quant.block if quant.weights == "fp8" else None,
        ))  # fmt: skip
    except ValidationError as exc:
        raise InvalidRequest("hub_unsupported", repo=files.repo, feature=exc.errors()[0]["msg"]) from exc


def with_models(catalog: Catalog, specs: Iterable[ModelSpec]) -> Catalog:
    """The catalog plus models read from the Hub (the catalog's own entries keep precedence); its own memo and
    a digest that covers the added models, so cached answers never mix the two."""
    known = {m.id.lower() for m in catalog.models}
    added = tuple(s for s in specs if s.id.lower() not in known)
    if not added:
        return catalog
    digest = hashlib.sha256(catalog.digest.encode())
    for spec in added:
        digest.update(repr(spec).encode())
    blocks = {**catalog.weight_blocks, **{s.id: s.weight_block for s in added if s.weight_block}}
    return catalog.replace(models=catalog.models + added, digest=digest.hexdigest()[:12], weight_blocks=blocks)


def wanted_repo(error: HeadroomError | None) -> str | None:
    """The Hub repo an error is waiting for: an id the catalog lacks (in the words, a flag or a remembered request)."""
    if error is None:
        return None
    repo = error.params.get("repo") if error.code == "unknown_hub_model" else None
    if error.code == "unknown_model":
        repo = error.params.get("name")
    return repo if isinstance(repo, str) and REPO_ID.match(repo) else None
