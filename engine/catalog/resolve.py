"""Turn what people type for a model into a catalog entry and the weight format it implies.

Accepts Hugging Face ids (``meta-llama/Llama-3.3-70B-Instruct``), quantized
releases (``RedHatAI/...-FP8-dynamic``, ``...-quantized.w4a16``, ``*-AWQ``,
``*-GPTQ-Int4``, ``nvidia/*-FP8``) and loose names (``llama 3.3 70b``).
"""

import re
from typing import NamedTuple

from engine.catalog.loader import Catalog
from engine.catalog.schema import ModelSpec
from engine.dtypes import WeightDtype
from engine.errors import UnknownModel

# quantized-release suffixes -> the weight format they imply (checked longest first)
_RELEASE_SUFFIXES: tuple[tuple[str, WeightDtype], ...] = (
    ("fp8-dynamic", "fp8"),
    ("fp8-static", "fp8"),
    ("quantized-w8a8", "int8"),
    ("quantized-w8a16", "int8"),
    ("quantized-w4a16", "int4"),
    ("gptq-int4", "int4"),
    ("gptq-int8", "int8"),
    ("awq-int4", "int4"),
    ("w4a16", "int4"),
    ("w8a8", "int8"),
    ("nvfp4", "fp4"),
    ("mxfp4", "mxfp4"),
    ("awq", "int4"),
    ("gptq", "int4"),
    ("fp8", "fp8"),
    ("fp4", "fp4"),
    ("int4", "int4"),
    ("int8", "int8"),
    ("bf16", "bf16"),
)
_DROP_TOKENS = {"instruct", "it", "chat", "hf", "meta", "base", "model"}
_KEEP_META_BEFORE = {"llama"}


_NUMERIC_NAMES = re.compile(r"^(fp|bf|int|nvfp|mxfp|w|a|e|v|r|k)\d")


def _split_word(token: str) -> list[str]:
    """`qwen2` -> `qwen 2`, `phi3` -> `phi 3`; dtype-like tokens (fp8, int4, w4a16) stay whole."""
    if _NUMERIC_NAMES.match(token):
        return [token]
    return re.sub(r"([a-z]{2,})(\d)", r"\1 \2", token).split()


def normalise(name: str) -> str:
    """Lower-case, unify separators, split `qwen2` into `qwen-2`, drop filler words like 'instruct'."""
    tokens = [t for t in re.split(r"[\s_\-./:]+", name.strip().lower()) if t]
    words = [w for t in tokens for w in _split_word(t)]
    return "-".join(w for w in words if w not in _DROP_TOKENS)


class ResolvedModel(NamedTuple):
    spec: ModelSpec
    implied_weights: WeightDtype | None  # from a quantized release id, if any
    release: str | None  # the quantized repo id as typed


def _strip_release(name: str) -> tuple[str, WeightDtype | None]:
    base = name.split("/")[-1] if "/" in name else name
    key = normalise(base)
    for suffix, dtype in _RELEASE_SUFFIXES:
        if key.endswith("-" + suffix):
            return key[: -len(suffix) - 1], dtype
    return key, None


def model_index(catalog: Catalog) -> dict[str, ModelSpec]:
    """Normalised names (ids, aliases, "family size") -> model; built once per catalog (memoised on it)."""
    return catalog.memo.get(_INDEX_KEY, build_model_index, catalog)


_INDEX_KEY = ("model_index",)


def seed_model_index(catalog: Catalog, index: dict[str, ModelSpec]) -> None:
    """Give a catalog the index its compiled form carries (``build_model_index`` of the same data and code)."""
    catalog.memo.get(_INDEX_KEY, lambda: index)


def build_model_index(catalog: Catalog) -> dict[str, ModelSpec]:
    index: dict[str, ModelSpec] = {}
    for spec in catalog.models:
        names = [spec.id, spec.id.split("/")[-1], spec.name, f"{spec.family} {spec.size}", *spec.aliases]
        for name in names:
            index.setdefault(normalise(name), spec)
            index.setdefault(normalise(name.split("/")[-1]), spec)
    return index


def resolve_model(catalog: Catalog, name: str) -> ResolvedModel:
    """Find the model; raise UnknownModel with the closest known names when nothing matches."""
    index = model_index(catalog)
    whole = normalise(name)
    if whole in index:
        return ResolvedModel(index[whole], None, None)
    stripped, implied = _strip_release(name)
    if stripped in index:
        return ResolvedModel(index[stripped], implied, name if "/" in name else None)
    raise UnknownModel("unknown_model", suggestions=suggest_models(catalog, name), name=name)


def suggest_models(catalog: Catalog, name: str, limit: int = 5) -> list[str]:
    """Closest catalog model ids to a misspelt name (rapidfuzz WRatio over normalised names)."""
    from rapidfuzz import fuzz, process  # only for a miss: not on every start-up

    index = model_index(catalog)
    query = _strip_release(name)[0] or normalise(name)
    matches = process.extract(query, list(index), scorer=fuzz.WRatio, limit=limit * 4)
    seen: list[str] = []
    for key, score, _ in matches:
        model_id = index[key].id
        if score >= 60 and model_id not in seen:
            seen.append(model_id)
        if len(seen) == limit:
            break
    return seen
