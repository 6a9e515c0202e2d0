"""Reading the model out of a request: Hugging Face ids, names (exact or misspelt), MoE shapes, bare sizes."""

from __future__ import annotations

import math
import re
from typing import NamedTuple

from engine.catalog.loader import Catalog
from engine.catalog.resolve import model_index, normalise, resolve_model
from engine.catalog.schema import ModelSpec
from engine.errors import HeadroomError, ParseError
from engine.notes import Note, note

HF_ID = re.compile(r"(?<![\w/])([a-z][\w.\-]+/[a-z0-9][\w.\-]*[\d\-][\w.\-]*)", re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9][a-z0-9.\-]*")
SIZE = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*b\b")
_SHAPE = re.compile(r"(?<![\w.])(?:\d+x\d+(?:\.\d+)?b|a\d+(?:\.\d+)?b)\b")
_MAX_WORDS = 120
_MAX_WORD = 80
_MAX_FUZZY_LOOKUPS = 40
#: a bare size ("70B") is read as a known dense shape only when one is within this factor of it
BARE_SIZE_FACTOR = 1.5
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


class ModelMatch(NamedTuple):
    model: str  # catalog id, or the quantized release id as typed
    start: int
    end: int
    weights: str | None = None  # implied by a quantized release id
    note: Note | None = None  # what a loose name was read as


def hf_ids(text: str, original: str, catalog: Catalog) -> tuple[list[ModelMatch], list[str]]:
    """Hugging Face ids the catalog knows (read first, before their '-FP8'/'-AWQ' suffixes could read as
    precisions), and the ids it does not know (as typed): those are never guessed from a size in their name."""
    typed = {m.group(1).lower(): m.group(1) for m in HF_ID.finditer(original)}
    found, unknown = [], []
    for m in HF_ID.finditer(text):
        try:
            resolved = resolve_model(catalog, m.group(1))
        except HeadroomError:
            if "-" in m.group(1).split("/")[1]:  # "org/some-model-13b", not "fp8/int4"
                unknown.append(typed.get(m.group(1), m.group(1)))
            continue
        model = typed.get(m.group(1), m.group(1)) if resolved.release else resolved.spec.id
        found.append(ModelMatch(model, m.start(), m.end(), resolved.implied_weights))
    return found, unknown


class _Word(NamedTuple):
    text: str
    key: str  # normalise(text), computed once
    start: int
    end: int


def find_model(text: str, catalog: Catalog) -> ModelMatch | None:
    """The model a loose request names: exact phrase, misspelt phrase with a size, MoE shape, then bare size."""
    index = model_index(catalog)
    words = []
    for m in _WORD.finditer(text):
        word = m.group(0).strip(".-")
        if word and len(word) <= _MAX_WORD:
            words.append(_Word(word, normalise(word), m.start(), m.end()))
        if len(words) == _MAX_WORDS:
            break  # a model is named early; a 2,000-character essay does not get n-gram searched
    found = _longest_model_phrase(words, index) or _fuzzy_model_phrase(words, index)
    if found:
        return found
    shape = _SHAPE.search(text)
    if shape:
        by_shape = _model_by_shape(catalog, shape.group(0).replace(" ", ""))
        if by_shape:
            return ModelMatch(by_shape.id, shape.start(), shape.end())
    size = SIZE.search(text)
    if size and not _family_words(catalog) & set(re.findall(r"[a-z]+", text)):
        wanted = float(size.group(1))
        spec = nearest_dense_model(catalog, wanted)
        if abs(math.log(spec.published_params_b / max(wanted, 1e-3))) > math.log(BARE_SIZE_FACTOR):
            sizes = sorted({m.size for m in _shaped(catalog)}, key=lambda x: float(x.rstrip("Bb")))
            raise ParseError("bare_size_unknown", size=size.group(1), sizes=sizes)
        reading = note(
            "bare_size", size=size.group(1), model=spec.name, layers=spec.arch.layers, kv_heads=spec.arch.kv_heads
        )
        return ModelMatch(spec.id, size.start(), size.end(), note=reading)
    return None


def _phrase_key(window: list[_Word]) -> str:
    """normalise() of the joined words, from each word's own normalised form."""
    return "-".join(w.key for w in window if w.key)


def _longest_model_phrase(words: list[_Word], index: dict[str, ModelSpec]) -> ModelMatch | None:
    for length in range(min(6, len(words)), 0, -1):
        for i in range(len(words) - length + 1):
            window = words[i : i + length]
            key = _phrase_key(window)
            if key in index and (length > 1 or _looks_like_model(key)):
                return ModelMatch(index[key].id, window[0].start, window[-1].end)
    return None


def _looks_like_model(key: str) -> bool:
    """A single word names a model only if it carries a size or a version ('gpt-oss-20b', 'phi-4', 'qwq-32b')."""
    return bool(re.search(r"\d", key)) and len(key) >= 4


def _fuzzy_model_phrase(words: list[_Word], index: dict[str, ModelSpec]) -> ModelMatch | None:
    """Misspelt families ('lama 3.3 70b', 'mistrall 7b'): only phrases that include a size are tried."""
    keys = list(index)
    best: tuple[float, int, ModelSpec, int, int] | None = None
    sized = [bool(SIZE.fullmatch(w.text) or re.fullmatch(r"\d+x\d+b", w.text)) for w in words]
    lookups = 0
    for length in range(min(5, len(words)), 1, -1):
        for i in range(len(words) - length + 1):
            if not any(sized[i : i + length]):
                continue
            lookups += 1
            if lookups > _MAX_FUZZY_LOOKUPS:
                break
            from rapidfuzz import fuzz, process  # only when a sized phrase is not an exact name

            window = words[i : i + length]
            phrase = _phrase_key(window)
            numbers = _NUMBER.findall(phrase)
            for key, score, _ in process.extract(phrase, keys, scorer=fuzz.ratio, score_cutoff=88, limit=5):
                if _NUMBER.findall(key) != numbers:
                    continue  # "llama 5 70b" is not Llama 2 70B: a misspelling never changes a version or a size
                if best is None or (score, length) > (best[0], best[1]):
                    best = (score, length, index[key], window[0].start, window[-1].end)
                break
    if not best:
        return None
    _, _, spec, start, end = best
    typed = " ".join(w.text for w in words if start <= w.start and w.end <= end)
    return ModelMatch(spec.id, start, end, note=note("fuzzy_model", typed=typed, model=spec.name))


def _model_by_shape(catalog: Catalog, shape: str) -> ModelSpec | None:
    """'8x22b' -> Mixtral 8x22B; 'a22b' -> Qwen3-235B-A22B (MoE shapes name one model)."""
    for spec in catalog.models:
        size = spec.size.lower()
        if size == shape or size.endswith("-" + shape):
            return spec
    return None


def _family_words(catalog: Catalog) -> frozenset[str]:
    """'llama', 'qwen', 'gemma', ...: a size next to one of these is not a bare size."""

    def build() -> frozenset[str]:
        words = (re.match(r"[a-z]+", m.family) for m in catalog.models)
        return frozenset(w.group(0) for w in words if w)

    return catalog.memo.get(("family_words",), build)


def _shaped(catalog: Catalog) -> list[ModelSpec]:
    """The dense GQA models a bare size may be read as (data/shapes.yaml)."""
    families = catalog.bare_size_families
    return [
        m
        for m in catalog.models
        if m.family in families and not m.arch.moe and not m.arch.mla and m.arch.kv_heads < m.arch.heads
        and not m.hub_revision  # a model read from the Hub never stands in for a bare size
    ]


def nearest_dense_model(catalog: Catalog, size_b: float) -> ModelSpec:
    """The well-known dense GQA model for a bare 'NNB': one sold at that size (first family first), else the nearest."""
    families = catalog.bare_size_families
    shaped = _shaped(catalog)
    label = f"{size_b:g}b"
    return min(
        shaped,
        key=lambda m: (
            m.size.lower() != label,
            0 if m.size.lower() == label else round(abs(math.log(m.published_params_b / max(size_b, 0.01))), 1),
            families.index(m.family),
        ),
    )
