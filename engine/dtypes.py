"""Numeric formats: bytes per element for weights (with their scales) and KV cache.

A "4-bit" checkpoint is never 0.5 bytes per parameter: group scales (and zero
points for AWQ) add to it, and only the linear layers are quantized at all.
These figures follow the on-disk layouts vLLM loads.
"""

from typing import Literal, NamedTuple

WeightDtype = Literal["fp32", "fp16", "bf16", "fp8", "int8", "int4", "fp4", "mxfp4"]
KvDtype = Literal["auto", "fp32", "fp16", "bf16", "fp8"]

WEIGHT_DTYPES: tuple[WeightDtype, ...] = ("bf16", "fp16", "fp32", "fp8", "int8", "int4", "fp4", "mxfp4")
KV_DTYPES: tuple[KvDtype, ...] = ("auto", "bf16", "fp16", "fp32", "fp8")

#: bytes of one element of a tensor kept in a plain floating-point dtype
PLAIN_BYTES: dict[str, int] = {"fp32": 4, "fp16": 2, "bf16": 2, "fp8": 1}


class WeightFormat(NamedTuple):
    """How a checkpoint stores its quantized linear layers."""

    dtype: WeightDtype
    #: bytes per parameter of a quantized linear layer, scales included
    linear_bytes: float
    #: dtype of everything that is not quantized (embeddings, lm_head, norms, routers)
    base: str
    #: activations and KV default to this dtype ("auto" KV follows the model dtype)
    compute: str


def _group(bits: float, group: int, scale_bytes: int = 2, zero_bits: float = 0.0) -> float:
    return bits / 8 + (scale_bytes + zero_bits / 8) / group


WEIGHT_FORMATS: dict[str, WeightFormat] = {
    "fp32": WeightFormat("fp32", 4.0, "fp32", "fp32"),
    "fp16": WeightFormat("fp16", 2.0, "fp16", "fp16"),
    "bf16": WeightFormat("bf16", 2.0, "bf16", "bf16"),
    # compressed-tensors FP8-dynamic / --quantization fp8: per-channel or per-tensor scales
    "fp8": WeightFormat("fp8", 1.0, "bf16", "bf16"),
    "int8": WeightFormat("int8", 1.0, "bf16", "bf16"),
    # GPTQ/AWQ with group size 128: a 16-bit scale (and for AWQ a 4-bit zero) per group
    "int4": WeightFormat("int4", _group(4, 128, 2, 4), "bf16", "bf16"),
    # NVFP4: FP8 scale per 16 elements
    "fp4": WeightFormat("fp4", _group(4, 16, 1), "bf16", "bf16"),
    # OCP MXFP4: E8M0 scale per 32 elements
    "mxfp4": WeightFormat("mxfp4", _group(4, 32, 1), "bf16", "bf16"),
}


def resolved_kv_dtype(kv_dtype: str, weights: WeightFormat) -> str:
    """ "auto" KV follows the model's compute dtype, as in vLLM."""
    return weights.compute if kv_dtype == "auto" else kv_dtype
