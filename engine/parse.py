"""The request language: free text -> Request, and thread follow-ups -> RequestDelta.

Reading is a sequence of rules over cleaned text. Each rule consumes the words it
understands (so "8k" is read once) and records a field; whatever is left names the
model, or is reported back as not understood. Nothing but ParseError leaves here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

from pydantic import ValidationError
from rapidfuzz import fuzz, process

from engine.catalog.loader import Catalog
from engine.catalog.resolve import model_index, normalise, resolve_model, suggest_models
from engine.catalog.schema import ModelSpec
from engine.errors import HeadroomError
from engine.request import Request, RequestDelta
from engine.text import clean

MAX_CHARS = 2000

# words that carry no meaning of their own in a sizing question
STOPWORDS = frozenset(
    """a an the and or of for to with on in at by from into onto using use run running serve serving served
    host hosting deploy deploying can could would will should do does did is are be it its i we you my our
    what about how much many which what's whats instead please pls thanks hi hey hello headroom model llm
    need needs want wants if then than that this those these there here just also too give me us tell show
    recommend recommendation best good ok okay so like size sizing fit fits fitting will work gpu gpus vram
    memory instance instances ec2 aws cluster box machine machines context ctx tokens token length window
    precision weights quantized quantization version setup config configuration plan option options
    try trying get where users user concurrent load traffic long up same but now again let's lets go
    cost price much per hour""".split()
)


class ParseError(HeadroomError):
    """What was understood, which words were not, and the closest model names."""

    def __init__(
        self,
        message: str,
        understood: dict[str, object] | None = None,
        unknown: list[str] | None = None,
        suggestions: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.understood = understood or {}
        self.unknown = unknown or []
        self.suggestions = suggestions or []


@dataclass
class _Scan:
    """Cleaned text being consumed rule by rule, and the fields read so far."""

    text: str
    found: dict[str, object] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    reset: bool = False

    def take(self, pattern: re.Pattern[str], handle: Callable[[re.Match[str]], object]) -> None:
        """Apply `handle` to each match; a match is consumed unless the handler returns False."""
        pieces, last = [], 0
        for match in pattern.finditer(self.text):
            if handle(match) is False:
                continue
            pieces.append(self.text[last : match.start()])
            pieces.append(" ")
            last = match.end()
        if pieces:
            pieces.append(self.text[last:])
            self.text = "".join(pieces)


# --- vocabulary ------------------------------------------------------------------------------

_NUM = r"(\d+(?:\.\d+)?)"
_TOKENS = r"(\d+(?:\.\d+)?\s*[km]?)"
_INSTANCE = r"((?:p|g|gr|inf|trn)\d[a-z0-9-]*\.(?:\d*x?large|metal)|u-p6e-gb200x\d+)"

_WEIGHT_WORDS = {
    "fp32": "fp32", "float32": "fp32", "full precision": "fp32",
    "bf16": "bf16", "bfloat16": "bf16",
    "fp16": "fp16", "float16": "fp16", "half": "fp16", "half precision": "fp16", "16-bit": "bf16", "16 bit": "bf16",
    "16bit": "bf16",
    "fp8": "fp8", "float8": "fp8", "8-bit": "fp8", "8 bit": "fp8", "8bit": "fp8", "int8": "int8", "w8a8": "int8",
    "int4": "int4", "4-bit": "int4", "4 bit": "int4", "4bit": "int4", "w4a16": "int4", "awq": "int4", "gptq": "int4",
    "q4": "int4",
    "nvfp4": "fp4", "fp4": "fp4", "mxfp4": "mxfp4",
}  # fmt: skip
_WEIGHT = re.compile(
    r"(?<![\w.])(" + "|".join(sorted(map(re.escape, _WEIGHT_WORDS), key=len, reverse=True)) + r")(?![\w])"
    r"(?:\s*(?:weights?|quant(?:ization|ized)?|precision|checkpoint))?"
)
_KV_DTYPE = r"(fp8|float8|8[- ]?bit|int8|fp16|bf16|half|fp32)"
_KV = re.compile(
    r"(?:\bkv(?:[- ]?cache)?\s*(?:in|at|as|dtype|=|:)?\s*"
    + _KV_DTYPE
    + r"\b)|(?:\b"
    + _KV_DTYPE
    + r"\s*kv(?:[- ]?cache)?\b)"
)
_MAX_MODEL_LEN = re.compile(r"\bmax[-_ ]?model[-_ ]?len(?:gth)?\s*[=:]?\s*" + _TOKENS + r"\b")
_SPLIT = re.compile(
    r"\b"
    + _TOKENS
    + r"\s*(?:tokens?\s*)?(?:in|input|prompt)(?:\s*tokens?)?\s*[,/+&]?\s*(?:and\s*|with\s*)?"
    + _TOKENS
    + r"\s*(?:tokens?\s*)?(?:out|output|completion|generated|generation)\b"
)
_SPLIT_NAMED = re.compile(
    r"\b(?:input|prompt)s?\s*(?:of|=|:)?\s*" + _TOKENS + r"\s*(?:tokens?)?\s*[,/&]?\s*(?:and\s*)?"
    r"(?:output|completion)s?\s*(?:of|=|:)?\s*" + _TOKENS + r"\b"
)
_CONTEXT = re.compile(
    r"\b(?:(?:context|ctx|context length|context window|seq(?:uence)? ?len(?:gth)?)\s*(?:of|=|:)?\s*"
    + _TOKENS
    + r"(?:\s*tokens?)?\b|(\d+(?:\.\d+)?\s*[km])\b(?:\s*(?:tokens?|ctx|context(?: length| window)?|seq(?:uence)?(?: len(?:gth)?)?))?"
    r"|(\d{3,7})\s*(?:tokens?|ctx|context)\b)"
)
_LOAD = re.compile(
    r"\b(\d+)\s*(?:concurrent|simultaneous|parallel|active)?\s*(?:users?|people|sessions?|requests?|streams?|clients?|"
    r"conversations?|chats?|concurrent|in parallel|at once|concurrency)\b"
    r"|\b(?:batch(?: size)?|concurrency)\s*(?:of|=|:)?\s*(\d+)\b"
)
_LOAD_MAX = re.compile(
    r"\b(?:max(?:imum)?|full)\s*(?:users|concurrency|load|batch|throughput)\b|\bas many (?:users |requests )?as (?:possible|fit|it can)\b"
    r"|\bconcurrency\s*[=:]?\s*max\b"
)
_BUDGET = re.compile(
    r"(?:\b(?:under|below|less than|max(?:imum)?|budget(?: of| is)?|at most|up to|cap(?:ped)? at|within)\s*|<=?\s*)"
    r"(?:\$|usd\s*)\s*" + _NUM + r"\s*(?:usd\s*)?(?:/\s*h(?:ou)?r?\b|per hour\b|an hour\b|/\s*hour\b|ph\b|hourly\b)?"
    r"|\$\s*" + _NUM + r"\s*(?:/\s*h(?:ou)?r?\b|per hour\b|an hour\b|hourly\b)"
)
_SPEED = re.compile(
    r"(?:\b(?:at least|min(?:imum)?|over|above|faster than|>=?)\s*)?(?<![\w.])"
    + _NUM
    + r"\s*(?:tok(?:en)?s?\s*(?:/|per)\s*s(?:ec(?:ond)?)?|t/s|tps)\b(?:\s*(?:per user|each|per stream))?"
)
_TTFT = re.compile(
    r"\b(?:ttft|time to first token|first token)\s*(?:under|below|<=?|less than|within|of|at most|max|in)?\s*"
    + _NUM
    + r"\s*(ms|milliseconds?|s|secs?|seconds?)\b"
)
_TP = re.compile(r"\b(?:tp|tensor[- ]parallel(?:ism)?(?:[- ]size)?)\s*[=:]?\s*(\d+)\b")
_UTIL = re.compile(
    r"\b(?:gpu[- ]?)?(?:util(?:i[sz]ation)?|gpu-memory-utilization|mem(?:ory)?[- ]util(?:i[sz]ation)?)\s*(?:of|=|:)?\s*"
    r"(0?\.\d+|1(?:\.0+)?|\d{1,3}\s*%)"
)
_VLLM = re.compile(r"\bvllm\s*(?:version\s*)?v?(\d+\.\d+(?:\.\d+)?)\b")
_REGION = re.compile(
    r"\b([a-z]{2}(?:-gov)?-(?:east|west|north|south|central|northeast|southeast|northwest|southwest)-\d)\b"
)
_NO_MULTI_NODE = re.compile(
    r"\b(?:no|without|avoid|not)\s*multi[- ]?node\b|\bsingle[- ](?:node|instance|machine|box)\b|\bone (?:node|instance|machine|box)\b"
)
_SINGLE_GPU = re.compile(r"\b(?:single|1)[- ]gpu\b|\bone gpu\b")
_CHEAP = re.compile(r"\b(?:cheapest|cheaper|lowest cost|least expensive|cheap)\b")
_FAST = re.compile(r"\b(?:fastest|faster|quickest|lowest latency|highest throughput|speed)\b")
_RESET = re.compile(r"^\s*(?:start over|start again|reset|new question|forget (?:that|it|everything))\b[\s,.:;!-]*")
_SIZE = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s*b\b")
_SHAPE = re.compile(r"(?<![\w.])(?:\d+x\d+(?:\.\d+)?b|a\d+(?:\.\d+)?b)\b")


def _tokens(text: str) -> int:
    """'8k' -> 8192, '1.5k' -> 1536, '1m' -> 1048576, '8192' -> 8192."""
    text = text.replace(" ", "")
    scale = 1
    if text.endswith("k"):
        text, scale = text[:-1], 1024
    elif text.endswith("m"):
        text, scale = text[:-1], 1024 * 1024
    return int(float(text) * scale)


def _seconds(value: str, unit: str) -> float:
    return float(value) / 1000 if unit.startswith("m") else float(value)


# --- the rules -------------------------------------------------------------------------------


@cache
def _vocabulary(
    catalog: Catalog,
) -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str], re.Pattern[str], dict[str, str]]:
    """Patterns built from the catalog: family constraints, GPU pins, "on <family>", and GPU names."""
    families = sorted({i.family for i in catalog.instances.values()}, key=len, reverse=True)
    family = r"(" + "|".join(map(re.escape, families)) + r")(?![\w-])(?!\.)"
    listing = family + r"(?:\s*(?:,|and|or|/|\+)\s*" + family + r")*"
    only = re.compile(
        r"\b(?:only|just|stick to|limit to|restrict to)\s*(?:the\s*)?(?:" + listing + r")(?:\s*(?:family|instances?))?"
        r"|\b" + family + r"\s*only\b"
    )
    exclude = re.compile(r"\b(?:exclude|excluding|except|no|not|without|avoid|skip|drop|ban)\s*(?:the\s*)?" + listing)
    names: dict[str, str] = {}
    for gpu in catalog.gpus.values():
        for alias in (gpu.id, *gpu.aliases):
            key = alias.lower().strip()
            if key and not key[0].isdigit() and len(key) >= 2:
                names.setdefault(key, gpu.id)
    gpu_alt = "|".join(sorted(map(re.escape, names), key=len, reverse=True))
    gpu_pin = re.compile(
        r"(?:\b(?:on|using|with|across|over)\s+)?(?:(?<![\w.])(\d+)\s*(?:x|×|\*)?\s*|\b(?:an?|single|one)\s+|(?<![\w.]))"
        r"(?:nvidia\s+)?(" + gpu_alt + r")s?(?![\w.])(?:\s*gpus?)?"
    )
    on_family = re.compile(r"\b(?:on|using|with|in)\s+(?:an?\s+)?" + listing)
    return only, exclude, gpu_pin, on_family, names


def _read_constraints(scan: _Scan, catalog: Catalog) -> None:
    only, exclude, _, on_family, _ = _vocabulary(catalog)

    def compare(m: re.Match[str]) -> None:
        scan.found["compare"] = tuple(dict.fromkeys(x for x in m.groups() if x))

    scan.take(
        re.compile(r"\bcompare\s*(?:the\s*)?" + _INSTANCE + r"\s*(?:vs\.?|versus|with|and|to|against)\s*" + _INSTANCE),
        compare,
    )
    scan.take(re.compile(r"\b" + _INSTANCE + r"\s*(?:vs\.?|versus|or|against)\s*" + _INSTANCE + r"\b"), compare)
    scan.take(
        re.compile(r"\bcompare\s*(?:it\s*)?(?:with|to|against)\s*" + _INSTANCE),
        lambda m: scan.found.__setitem__("compare", (m.group(1),)),
    )
    scan.take(
        re.compile(r"\bwhy\s*(?:not|no|isn'?t|wasn'?t|doesn'?t)\s*(?:use\s*|pick\s*|the\s*|on\s*|an?\s*)?" + _INSTANCE),
        lambda m: scan.found.__setitem__("why_not", m.group(1)),
    )
    scan.take(_NO_MULTI_NODE, lambda m: scan.found.__setitem__("multi_node", False))
    scan.take(_SINGLE_GPU, lambda m: scan.found.__setitem__("single_gpu", True))
    scan.take(
        re.compile(r"\b(?:only|just)\s*(?:on\s*)?" + _INSTANCE),
        lambda m: scan.found.__setitem__("instance", m.group(1)),
    )

    def family_list(m: re.Match[str]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(x for x in m.groups() if x))

    scan.take(only, lambda m: scan.found.__setitem__("families", family_list(m)))
    scan.take(
        exclude,
        lambda m: scan.found.__setitem__(
            "exclude_families",
            tuple(dict.fromkeys((*scan.found.get("exclude_families", ()), *family_list(m)))),  # type: ignore[misc]
        ),
    )
    scan.take(
        re.compile(r"(?:\b(?:on|using|with|in)\s+(?:an?\s+)?)?" + _INSTANCE),
        lambda m: scan.found.__setitem__("instance", m.group(1)),
    )
    scan.take(on_family, lambda m: scan.found.__setitem__("families", family_list(m)))


def _read_gpu_pin(scan: _Scan, catalog: Catalog) -> None:
    """'on 2x H100', '4 l40s', 'an a100' (after precisions, so 'int4' is never a T4)."""
    _, _, gpu_pin, _, gpu_names = _vocabulary(catalog)

    def pin_gpu(m: re.Match[str]) -> None:
        scan.found["gpu"] = gpu_names[m.group(2)]
        scan.found["gpus"] = int(m.group(1)) if m.group(1) else 1

    scan.take(gpu_pin, pin_gpu)


def _read_numbers(scan: _Scan) -> None:
    def percent(value: str) -> float:
        return float(value.rstrip("% ")) / 100 if "%" in value else float(value)

    scan.take(_TP, lambda m: scan.found.__setitem__("tp", int(m.group(1))))
    scan.take(_UTIL, lambda m: scan.found.__setitem__("gpu_memory_utilization", percent(m.group(1))))
    scan.take(_VLLM, lambda m: scan.found.__setitem__("vllm_version", m.group(1)))
    scan.take(_REGION, lambda m: scan.found.__setitem__("region", m.group(1)))
    scan.take(_BUDGET, lambda m: scan.found.__setitem__("max_usd_per_hour", float(m.group(1) or m.group(2))))
    scan.take(_TTFT, lambda m: scan.found.__setitem__("max_ttft_s", _seconds(m.group(1), m.group(2))))
    scan.take(_SPEED, lambda m: scan.found.__setitem__("min_tokens_per_s", float(m.group(1))))
    scan.take(_MAX_MODEL_LEN, lambda m: scan.found.__setitem__("context_tokens", _tokens(m.group(1))))

    def split(m: re.Match[str]) -> None:
        scan.found["input_tokens"], scan.found["output_tokens"] = _tokens(m.group(1)), _tokens(m.group(2))

    scan.take(_SPLIT, split)
    scan.take(_SPLIT_NAMED, split)
    scan.take(_KV, lambda m: scan.found.__setitem__("kv_dtype", _kv_dtype(m.group(1) or m.group(2))))

    def context(m: re.Match[str]) -> None:
        scan.found["context_tokens"] = _tokens(next(g for g in m.groups() if g))

    scan.take(_CONTEXT, context)
    scan.take(_LOAD_MAX, lambda m: scan.found.__setitem__("concurrency", "max"))
    scan.take(_LOAD, lambda m: scan.found.__setitem__("concurrency", int(m.group(1) or m.group(2))))
    scan.take(_WEIGHT, lambda m: scan.found.setdefault("weights", _WEIGHT_WORDS[m.group(1)]))
    scan.take(_CHEAP, lambda m: scan.found.__setitem__("sort", "cost"))
    scan.take(_FAST, lambda m: scan.found.__setitem__("sort", "speed"))


def _kv_dtype(word: str) -> str:
    word = word.replace(" ", "").replace("-", "")
    return {"float8": "fp8", "8bit": "fp8", "int8": "fp8", "half": "fp16"}.get(word, word)


# --- the model -------------------------------------------------------------------------------

_HF_ID = re.compile(r"(?<![\w/])([a-z][\w.\-]+/[a-z0-9][\w.\-]*[\d\-][\w.\-]*)", re.IGNORECASE)
_WORD = re.compile(r"[a-z0-9][a-z0-9.\-]*")


def _read_hf_id(scan: _Scan, catalog: Catalog, original: str) -> None:
    """Hugging Face ids first, before their '-FP8'/'-AWQ' suffixes could be read as precisions."""
    typed = {m.group(1).lower(): m.group(1) for m in _HF_ID.finditer(original)}

    def hf_id(m: re.Match[str]) -> bool | None:
        try:
            resolved = resolve_model(catalog, m.group(1))
        except HeadroomError:
            return False
        scan.found["model"] = typed.get(m.group(1), m.group(1)) if resolved.release else resolved.spec.id
        if resolved.implied_weights:
            scan.found["weights"] = resolved.implied_weights
        return None

    scan.take(_HF_ID, hf_id)


def _read_model(scan: _Scan, catalog: Catalog) -> None:
    if "model" in scan.found:
        return
    index = model_index(catalog)
    words = []
    for m in _WORD.finditer(scan.text):
        word = m.group(0).strip(".-")
        if word and len(word) <= _MAX_WORD:
            words.append(_Word(word, normalise(word), m.start(), m.end()))
        if len(words) == _MAX_WORDS:
            break  # a model is named early; a 2,000-character essay does not get n-gram searched
    match = _longest_model_phrase(words, index) or _fuzzy_model_phrase(words, index)
    if match:
        spec, start, end, note = match
        scan.found["model"] = spec.id
        if note:
            scan.notes.append(note)
        scan.text = scan.text[:start] + " " + scan.text[end:]
        return
    shape = _SHAPE.search(scan.text)
    if shape:
        by_shape = _model_by_shape(catalog, shape.group(0).replace(" ", ""))
        if by_shape:
            scan.found["model"] = by_shape.id
            scan.text = scan.text[: shape.start()] + " " + scan.text[shape.end() :]
            return
    size = _SIZE.search(scan.text)
    if size and not _family_words(catalog) & set(re.findall(r"[a-z]+", scan.text)):
        spec = nearest_dense_model(catalog, float(size.group(1)))
        scan.found["model"] = spec.id
        scan.found["model_note"] = (
            f"'{size.group(1)}B' read as a dense GQA model shaped like {spec.name} "
            f"({spec.arch.layers} layers, {spec.arch.kv_heads} KV heads); name the model for an exact answer"
        )
        scan.text = scan.text[: size.start()] + " " + scan.text[size.end() :]


@dataclass(frozen=True)
class _Word:
    text: str
    key: str  # normalise(text), computed once
    start: int
    end: int


_MAX_WORDS = 120
_MAX_WORD = 80
_MAX_FUZZY_LOOKUPS = 40


def _phrase_key(window: list[_Word]) -> str:
    """normalise() of the joined words, from each word's own normalised form."""
    return "-".join(w.key for w in window if w.key)


def _longest_model_phrase(words: list[_Word], index: dict[str, ModelSpec]) -> tuple[ModelSpec, int, int, str] | None:
    for length in range(min(6, len(words)), 0, -1):
        for i in range(len(words) - length + 1):
            window = words[i : i + length]
            key = _phrase_key(window)
            if key in index and (length > 1 or _looks_like_model(key)):
                return index[key], window[0].start, window[-1].end, ""
    return None


def _looks_like_model(key: str) -> bool:
    """A single word names a model only if it carries a size or a version ('gpt-oss-20b', 'phi-4', 'qwq-32b')."""
    return bool(re.search(r"\d", key)) and len(key) >= 4


def _fuzzy_model_phrase(words: list[_Word], index: dict[str, ModelSpec]) -> tuple[ModelSpec, int, int, str] | None:
    """Misspelt families ('lama 3.3 70b', 'mistrall 7b'): only phrases that include a size are tried."""
    keys = list(index)
    best: tuple[float, int, ModelSpec, int, int] | None = None
    sized = [bool(_SIZE.fullmatch(w.text) or re.fullmatch(r"\d+x\d+b", w.text)) for w in words]
    lookups = 0
    for length in range(min(5, len(words)), 1, -1):
        for i in range(len(words) - length + 1):
            if not any(sized[i : i + length]):
                continue
            lookups += 1
            if lookups > _MAX_FUZZY_LOOKUPS:
                break
            window = words[i : i + length]
            found = process.extractOne(_phrase_key(window), keys, scorer=fuzz.ratio, score_cutoff=88)
            if found and (best is None or (found[1], length) > (best[0], best[1])):
                best = (found[1], length, index[found[0]], window[0].start, window[-1].end)
    if not best:
        return None
    _, _, spec, start, end = best
    return spec, start, end, f"read as {spec.name}"


def _model_by_shape(catalog: Catalog, shape: str) -> ModelSpec | None:
    """'8x22b' -> Mixtral 8x22B; 'a22b' -> Qwen3-235B-A22B (MoE shapes name one model)."""
    for spec in catalog.models:
        size = spec.size.lower()
        if size == shape or size.endswith("-" + shape):
            return spec
    return None


_SHAPE_FAMILIES = ("llama-3.3", "llama-3.1", "llama-3.2", "qwen2.5", "qwen3", "mistral-large-2", "mistral-small-3.1")


@cache
def _family_words(catalog: Catalog) -> frozenset[str]:
    """'llama', 'qwen', 'gemma', ...: a size next to one of these is not a bare size."""
    words = (re.match(r"[a-z]+", m.family) for m in catalog.models)
    return frozenset(w.group(0) for w in words if w)


def nearest_dense_model(catalog: Catalog, size_b: float) -> ModelSpec:
    """The well-known dense GQA model for a bare 'NNB': one sold at that size (Llama 3.x first), else the nearest."""
    shaped = [
        m
        for m in catalog.models
        if m.family in _SHAPE_FAMILIES and not m.arch.moe and not m.arch.mla and m.arch.kv_heads < m.arch.heads
    ]
    label = f"{size_b:g}b"
    return min(
        shaped,
        key=lambda m: (
            m.size.lower() != label,
            0 if m.size.lower() == label else round(abs(math.log(m.published_params_b / max(size_b, 0.01))), 1),
            _SHAPE_FAMILIES.index(m.family),
        ),
    )


# --- entry points ----------------------------------------------------------------------------


def _scan(text: str, catalog: Catalog) -> _Scan:
    if len(text) > MAX_CHARS:
        raise ParseError(
            f"That message is {len(text):,} characters; I read requests up to {MAX_CHARS:,}. "
            "Ask with the model, precision, context and load, e.g. 'llama 3.3 70b fp8 8k context 16 users'."
        )
    scan = _Scan(clean(text))
    reset = _RESET.match(scan.text)
    if reset:
        scan.reset = True
        scan.text = scan.text[reset.end() :]
    _read_hf_id(scan, catalog, clean(text, lower=False))
    _read_constraints(scan, catalog)
    _read_numbers(scan)
    _read_gpu_pin(scan, catalog)
    _read_model(scan, catalog)
    return scan


def leftover_words(scan: _Scan) -> list[str]:
    words = re.findall(r"[^\s?!,.;:()\[\]{}\"'/]+", scan.text)
    return [w for w in words if w not in STOPWORDS and not re.fullmatch(r"[\W_]+|\$?\d+(?:\.\d+)?", w)]


def _understood(scan: _Scan) -> dict[str, object]:
    return {k: v for k, v in scan.found.items() if k != "model_note"}


EXAMPLES = ("llama 3.3 70b fp8 8k context", "qwen2.5 72b bf16 32k, 20 users", "70B fp8 8k context on g6e.12xlarge")


def _safe(function: Callable[[], object]) -> object:
    """No exception but ParseError leaves the parser, whatever the input."""
    try:
        return function()
    except ParseError:
        raise
    except ValidationError as exc:
        problems = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
        raise ParseError(f"I read that, but it doesn't add up: {problems}") from exc
    except Exception as exc:  # noqa: BLE001 - the parser's promise: only ParseError escapes
        raise ParseError("I couldn't read that request. Try e.g. " + "; ".join(f"'{e}'" for e in EXAMPLES)) from exc


def parse_fields(text: str, catalog: Catalog) -> dict[str, object]:
    """The Request fields a text names (no model required), for merging with command-line flags."""
    return _safe(lambda: _fields(_scan(text, catalog).found))  # type: ignore[return-value]


def parse_request(text: str, catalog: Catalog) -> Request:
    """A whole request: a model is required; everything else has defaults."""

    def run() -> Request:
        scan = _scan(text, catalog)
        if "model" not in scan.found:
            unknown = leftover_words(scan)
            raise ParseError(
                "I couldn't tell which model you mean"
                + (f" ('{' '.join(unknown)}' isn't one I know)" if unknown else "")
                + ". Name it like 'llama 3.3 70b', 'qwen3 32b' or a Hugging Face id.",
                understood=_understood(scan),
                unknown=unknown,
                suggestions=suggest_models(catalog, " ".join(unknown)[:60]) if unknown else [],
            )
        return Request.model_validate(_fields(scan.found))

    return _safe(run)  # type: ignore[return-value]


def parse_followup(text: str, catalog: Catalog) -> RequestDelta:
    """A thread follow-up: only what it names changes. 'start over' begins a new request."""

    def run() -> RequestDelta:
        scan = _scan(text, catalog)
        if scan.reset:
            if "model" in scan.found:
                Request.model_validate(_fields(scan.found))  # validate now, with a clear message
            return RequestDelta(changes=_fields(scan.found), reset=True)
        if not scan.found:
            unknown = leftover_words(scan)
            raise ParseError(
                "I couldn't tell what to change"
                + (f" ('{' '.join(unknown)}' isn't something I know)" if unknown else "")
                + ". Try 'what about 32k?', 'int4 instead', '64 users', 'only g6e' or 'start over'.",
                unknown=unknown,
                suggestions=suggest_models(catalog, " ".join(unknown)[:60]) if unknown else [],
            )
        return RequestDelta(changes=_fields(scan.found))

    return _safe(run)  # type: ignore[return-value]


_PINS = ("instance", "gpu", "gpus", "compare")


def _fields(found: dict[str, object]) -> dict[str, object]:
    fields = dict(found)
    if "model" in fields and "model_note" not in fields:
        fields["model_note"] = None
    if any(k in fields for k in (*_PINS, "families")):
        # a new pin replaces the old ones rather than contradicting them
        for key in _PINS:
            fields.setdefault(key, () if key == "compare" else None)
        if any(fields.get(k) for k in _PINS):
            fields.setdefault("families", ())
    if fields.get("gpu") and not fields.get("gpus"):
        fields["gpus"] = 1
    return fields
