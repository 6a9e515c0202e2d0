"""What a Hub checkpoint stores: its quantization (from config.json) and a summary of its safetensors headers.

Pure: the bot fetches config.json and the headers (names, dtypes, shapes -- never the weights) and hands
them here. Packed formats (GPTQ/AWQ int32 words, NVFP4/MXFP4 bytes) are counted back to parameters;
scales, zero points and group indexes are not parameters and are left out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from engine.dtypes import WeightDtype
from engine.errors import InvalidRequest

#: bits of one element of each safetensors dtype
DTYPE_BITS: dict[str, int] = {
    "F64": 64, "F32": 32, "F16": 16, "BF16": 16, "F8_E4M3": 8, "F8_E5M2": 8, "F8_E8M0": 8,
    "I64": 64, "I32": 32, "I16": 16, "I8": 8, "U8": 8, "U16": 16, "U32": 32, "U64": 64, "BOOL": 8, "F4": 4,
}  # fmt: skip
_INTEGER = frozenset({"I64", "I32", "I16", "I8", "U8", "U16", "U32", "U64"})
#: tensors that hold quantization bookkeeping, not parameters
_AUX = re.compile(
    r"(?:^|\.)(?:scales|qzeros|g_idx|absmax|quant_map|SCB|weight_shape|weight_zero_point|zeros"
    r"|[a-z_]*scale(?:_inv|_2)?|[a-z_]*_scales|[a-z_]*quant_state[\w.]*|inv_freq)$"
)
_VISION = re.compile(
    r"^(?:model\.)?(?:vision_tower|vision_model|visual|vision_encoder|multi_modal_projector|mm_projector"
    r"|vision_embed|audio_tower|embed_vision|patch_merger)\b"
)
_LAYER = re.compile(r"(?:^|\.)layers\.(\d+)\.")
_BIAS = re.compile(r"self_attn\.(?:q_proj|k_proj|qkv_proj|query_key_value)\.bias$")
_PLAIN_MLP = re.compile(r"(?:\.fc1\.|\.c_fc\.|dense_h_to_4h)")


class WeightSummary(BaseModel):
    """The headers in a few numbers (small enough to cache): what was stored and what it means."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    params: int  # parameters of the decoder vLLM loads (packed formats unpacked, bookkeeping left out)
    stored: dict[str, int]  # elements per safetensors dtype, every tensor
    vision_params: int = 0  # vision / audio towers and projectors
    extra_layer_params: int = 0  # layers past num_hidden_layers (multi-token-prediction heads, not loaded)
    lm_head: bool = True  # False: the embeddings are tied
    attention_bias: bool = False
    plain_mlp: bool = False  # fc1/fc2 MLP without a gate
    tensors: int = 0


class Quantization(BaseModel):
    """A checkpoint's stored weight format, read from its quantization_config."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    weights: WeightDtype | None  # None: not quantized (the config's dtype says what it is)
    method: str | None = None
    bits: int = 16
    block: int | None = None  # block-quantized FP8: weight_block_size / block_structure (TP shards must be whole)


def _number(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _block(sizes: object) -> int | None:
    """The output-side block of `weight_block_size: [128, 128]` (vLLM checks block_n and block_k alike)."""
    if isinstance(sizes, list | tuple) and sizes and all(_number(s) for s in sizes):
        return max(int(s) for s in sizes)
    return None


def _compressed(repo: str, config: Mapping[str, Any]) -> Quantization:
    """compressed-tensors: the first config group's weights say bits and kind (float 8 -> FP8, float 4 -> NVFP4)."""
    groups = config.get("config_groups") or {}
    for group in groups.values() if isinstance(groups, Mapping) else ():
        weights = group.get("weights") if isinstance(group, Mapping) else None
        if isinstance(weights, Mapping):
            bits, kind = _number(weights.get("num_bits")), weights.get("type")
            formats: dict[tuple[int | None, object], str] = {
                (8, "float"): "fp8",
                (8, "int"): "int8",
                (4, "int"): "int4",
                (4, "float"): "fp4",
            }
            found = formats.get((bits, kind))
            if found and bits:
                block = _block(weights.get("block_structure")) if weights.get("strategy") == "block" else None
                return Quantization(weights=found, method="compressed-tensors", bits=bits, block=block)  # type: ignore[arg-type]
            raise InvalidRequest(
                "hub_quantization_unsupported", repo=repo, method=f"compressed-tensors {kind} {bits}-bit"
            )
    raise InvalidRequest("hub_config_incomplete", repo=repo, missing=["quantization_config.config_groups"])


def quantization(repo: str, config: Mapping[str, Any]) -> Quantization:
    """The stored format from config.json's quantization_config (None when there is none); unknown methods refused."""
    raw = config.get("quantization_config") or (config.get("text_config") or {}).get("quantization_config")
    if not isinstance(raw, Mapping):
        return Quantization(weights=None)
    method = str(raw.get("quant_method") or "").lower()
    bits = _number(raw.get("bits")) or _number(raw.get("w_bit")) or 4
    if method in {"fp8", "fbgemm_fp8"}:
        return Quantization(weights="fp8", method=method, bits=8, block=_block(raw.get("weight_block_size")))
    if method in {"awq", "gptq", "auto-round", "autoround"} and bits in (4, 8):
        return Quantization(weights="int4" if bits == 4 else "int8", method=method, bits=bits)
    if method == "mxfp4":
        return Quantization(weights="mxfp4", method=method, bits=4)
    if method == "compressed-tensors":
        return _compressed(repo, raw)
    if method == "modelopt":
        algo = str(raw.get("quant_algo") or (raw.get("quantization") or {}).get("quant_algo") or "").upper()
        if algo in {"FP8", "NVFP4"}:
            return Quantization(
                weights="fp8" if algo == "FP8" else "fp4", method="modelopt", bits=8 if algo == "FP8" else 4
            )
    if method == "bitsandbytes":
        if raw.get("load_in_4bit") or raw.get("_load_in_4bit"):
            return Quantization(weights="int4", method="bitsandbytes", bits=4)
        if raw.get("load_in_8bit") or raw.get("_load_in_8bit"):
            return Quantization(weights="int8", method="bitsandbytes", bits=8)
    raise InvalidRequest("hub_quantization_unsupported", repo=repo, method=method or "unnamed")


def _logical(dtype: str, count: int, bits: int) -> int:
    """Parameters a stored tensor holds: in a quantized checkpoint, integer words pack 32/bits (or 8/bits) values."""
    if bits < 16 and dtype in _INTEGER and bits < DTYPE_BITS[dtype]:
        return count * DTYPE_BITS[dtype] // bits
    return count


def summarise(layers: int, tensors: Mapping[str, tuple[str, Sequence[int]]], bits: int) -> WeightSummary:
    """Fold the headers' tensors (name -> dtype, shape) into a WeightSummary; `layers` is the decoder's depth."""
    stored: dict[str, int] = {}
    params = vision = extra = 0
    lm_head = bias = plain = False
    for name, (dtype, shape) in tensors.items():
        count = math.prod(shape)
        stored[dtype] = stored.get(dtype, 0) + count
        if _AUX.search(name):
            continue
        value = _logical(dtype, count, bits)
        layer = _LAYER.search(name)
        if _VISION.search(name):
            vision += value
        elif layer and int(layer.group(1)) >= layers:
            extra += value
        else:
            params += value
        lm_head = lm_head or "lm_head." in name
        bias = bias or bool(_BIAS.search(name))
        plain = plain or bool(_PLAIN_MLP.search(name))
    return WeightSummary(
        params=params, stored=stored, vision_params=vision, extra_layer_params=extra, lm_head=lm_head,
        attention_bias=bias, plain_mlp=plain, tensors=len(tensors),
    )  # fmt: skip
