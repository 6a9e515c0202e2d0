"""The request language's rules as data: (pattern, what a match sets), applied in order.

Each rule consumes the words it matched, so "8k" is read once. Patterns that depend on the
catalog (instance families, GPU names) are built once per catalog by ``lexicon``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

from engine.catalog.loader import Catalog
from engine.errors import ParseError
from engine.request import tokens

Fields = dict[str, object]


class Rule(NamedTuple):
    """A pattern and what one match sets."""

    pattern: re.Pattern[str]
    read: Callable[[re.Match[str]], Fields]


# --- vocabulary ------------------------------------------------------------------------------

_NUM = r"(\d+(?:\.\d+)?)"
_TOKENS = r"(\d+(?:\.\d+)?\s*[km]?)"
INSTANCE = r"((?:p|g|gr|inf|trn)\d[a-z0-9-]*\.(?:\d*x?large|metal)|u-p6e-gb200x\d+)"

WEIGHT_WORDS = {
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
    r"(?<![\w.])(" + "|".join(sorted(map(re.escape, WEIGHT_WORDS), key=len, reverse=True)) + r")(?![\w])"
    r"(?:\s*(?:weights?|quant(?:ization|ized)?|precision|checkpoint))?"
)
_KV_DTYPE = r"(fp8|float8|8[- ]?bit|int8|fp16|bf16|half|fp32)"
_KV = re.compile(
    r"(?:\bkv(?:[- ]?cache)?\s*(?:in|at|as|dtype|=|:)?\s*" + _KV_DTYPE + r"\b)"
    r"|(?:\b" + _KV_DTYPE + r"\s*kv(?:[- ]?cache)?\b)"
)
_MAX_MODEL_LEN = re.compile(r"\bmax[-_ ]?model[-_ ]?len(?:gth)?\s*[=:]?\s*" + _TOKENS + r"\b")
_SPLIT = re.compile(
    r"\b" + _TOKENS + r"\s*(?:tokens?\s*)?(?:in|inputs?|prompts?)(?:\s*tokens?)?\s*[,/+&]?\s*(?:and\s*|with\s*|plus\s*)?"
    + _TOKENS + r"\s*(?:tokens?\s*)?(?:out|outputs?|completions?|generated|generation)\b"
)
_SPLIT_NAMED = re.compile(
    r"\b(?:input|prompt)s?\s*(?:of|=|:)?\s*" + _TOKENS + r"\s*(?:tokens?)?\s*[,/&]?\s*(?:and\s*)?"
    r"(?:output|completion)s?\s*(?:of|=|:)?\s*" + _TOKENS + r"\b"
)
_CONTEXT = re.compile(
    r"\b(?:(?:context|ctx|context length|context window|seq(?:uence)? ?len(?:gth)?)\s*(?:of|=|:)?\s*"
    + _TOKENS
    + r"(?:\s*tokens?)?\b|(\d+(?:\.\d+)?\s*[km])\b(?:\s*(?:tokens?|ctx|context(?: length| window)?|seq(?:uence)?(?: len(?:gth)?)?))?"
    r"|(\d+)\s*(?:tokens?|ctx|context)\b)"
)
_LOAD = re.compile(
    r"(?<![\d.])\b(\d+)\s*(?:concurrent|simultaneous|parallel|active)?\s*(?:users?|people|sessions?|requests?|streams?|clients?|"
    r"conversations?|chats?|concurrent|in parallel|at once|concurrency)\b"
    r"|\b(?:batch(?: size)?|concurrency)\s*(?:of|=|:)?\s*(\d+)\b"
)
#: "0.5 users", "2.5 concurrent requests": a load is a whole number; refused, never read as 5 or 1
_LOAD_FRACTION = re.compile(
    r"(?<![\w.])(\d*\.\d+)\s*(?:concurrent|simultaneous|parallel|active)?\s*(?:users?|people|sessions?|requests?|streams?|"
    r"clients?|conversations?|chats?)\b"
)
#: "-4 users", "-32k context": no count or length is negative; refused, never read without its sign
_NEGATIVE = re.compile(
    r"(?<![\w.])-\s?(\d[\d.,]*\s*[km]?)\s*(?:concurrent\s+|simultaneous\s+|active\s+)?(?:users?|people|sessions?|"
    r"requests?|streams?|clients?|conversations?|chats?|tokens?|context|ctx|replicas?|gpus?)\b"
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


def _parallel_size(short: str, kind: str) -> re.Pattern[str]:
    """'tp 4', 'tensor parallel size 4', 'pp=2', 'pipeline parallelism 2'."""
    return re.compile(rf"\b(?:{short}|{kind}[- ]parallel(?:ism)?(?:[- ]size)?)\s*[=:]?\s*(\d+)\b")


_TP = _parallel_size("tp", "tensor")
_PP = _parallel_size("pp", "pipeline")
_REPLICAS = re.compile(
    r"\b(\d+)\s*(?:data[- ]parallel\s*)?(?:replicas?|copies)\b|\b(?:dp|data[- ]parallel(?:ism)?(?:[- ]size)?)\s*[=:]?\s*(\d+)\b"
)
_UTIL = re.compile(
    r"\b(?:gpu[- ]?)?(?:util(?:i[sz]ation)?|gpu-memory-utilization|mem(?:ory)?[- ]util(?:i[sz]ation)?)\s*(?:of|=|:)?\s*"
    r"(\d*\.?\d+\s*%?)"
)
_VLLM = re.compile(r"\bvllm\s*(?:version\s*)?v?(\d+\.\d+(?:\.\d+)?)\b")
#: vllm serve's memory flags in words: "max-num-seqs 32", "batched tokens 8k", "enforce eager", "cpu offload 10gb"
_MAX_SEQS = re.compile(r"(?:--)?\bmax[-_ ]?num[-_ ]?seqs\s*[=:]?\s*(\d+)\b")
_BATCHED = re.compile(r"(?:--)?\b(?:max[-_ ]?num[-_ ]?)?batched[-_ ]?tokens\s*[=:]?\s*" + _TOKENS + r"(?![\w.])")
_EAGER = re.compile(  # the setting, not the adjective: "llama 3.1 8b eager" yes, "I am eager to ..." no
    r"(?:--)?\benforce[-_ ]?eager\b|\bno cuda ?graphs?\b"
    r"|(?<!\bam )(?<!\bis )(?<!\bare )(?<!\bso )(?<!\bbe )(?<!\bvery )(?<!\bm )(?<!\bwas )\beager\b(?!\s+(?:to|for)\b)"
)
#: vLLM's offline LLM() class ("offline batch", "LLM()", "python api"); HF_HUB_OFFLINE is not it (no word boundary)
_OFFLINE = re.compile(r"\boffline(?:\s+(?:inference|batch(?:\s+inference)?|mode))?\b|\b(?:vllm\.)?llm\s*\(\s*\)|\bllm\s+class\b"
                      r"|\bpython\s+api\b")
_CPU_OFFLOAD = re.compile(r"(?:--)?\bcpu[-_ ]?offload(?:[-_ ]?gb)?\s*[=:]?\s*" + _NUM + r"\s*(?:gi?b)?\b")
_REGION = re.compile(
    # region-shaped words that name no AWS region ("mars-east-1") are read too, so validation refuses them
    r"\b([a-z]{2,6}(?:-gov)?-(?:east|west|north|south|central|northeast|southeast|northwest|southwest)-\d{1,2})\b"
)
_NO_MULTI_NODE = re.compile(
    r"\b(?:no|without|avoid|not)\s*multi[- ]?node\b|\bsingle[- ](?:node|instance|machine|box)\b|\bone (?:node|instance|machine|box)\b"
)
_SINGLE_GPU = re.compile(r"\b(?:single|1)[- ]gpu\b|\bone gpu\b")
_CHEAP = re.compile(r"\b(?:cheapest|cheaper|lowest cost|least expensive|cheap)\b")
_FAST = re.compile(r"\b(?:fastest|faster|quickest|lowest latency|highest throughput|speed)\b")
RESET = re.compile(r"^\s*(?:start over|start again|reset|new question|forget (?:that|it|everything))\b[\s,.:;!-]*")
_COMPARE_TWO = re.compile(r"\bcompare\s*(?:the\s*)?" + INSTANCE + r"\s*(?:vs\.?|versus|with|and|to|against)\s*" + INSTANCE)
_VERSUS = re.compile(r"\b" + INSTANCE + r"\s*(?:vs\.?|versus|or|against|and|,)\s*" + INSTANCE + r"\b")
_COMPARE_ONE = re.compile(r"\bcompare\s*(?:it\s*)?(?:with|to|against)\s*" + INSTANCE)
_WHY_NOT = re.compile(r"\bwhy\s*(?:not|no|isn'?t|wasn'?t|doesn'?t)\s*(?:use\s*|pick\s*|the\s*|on\s*|an?\s*)?" + INSTANCE)
_ONLY_INSTANCE = re.compile(r"\b(?:only|just)\s*(?:on\s*)?" + INSTANCE)
_INSTANCE_COUNT = re.compile(r"(?:\b(?:on|using|with|across|over)\s+)?(?<![\w.])(\d+)\s*(?:x|×|\*)\s*" + INSTANCE)
#: "on 2 p5.48xlarge": a count with no "x" only after these words ("tp 8 p5.48xlarge" is a degree, then a type)
_INSTANCE_COUNT_SAID = re.compile(r"\b(?:on|using|with|across|over)\s+(\d+)\s+" + INSTANCE)
#: a word shaped like a precision that is none of the known ones ("fp3", "int2")
UNKNOWN_PRECISION = re.compile(r"(?<![\w.])((?:fp|bf|int|nvfp|mxfp|float|w)\d+(?:a\d+)?)(?![\w.])")
_ON_INSTANCE = re.compile(r"(?:\b(?:on|using|with|in)\s+(?:an?\s+)?)?" + INSTANCE)


# --- conversions -----------------------------------------------------------------------------


def _seconds(value: str, unit: str) -> float:
    return float(value) / 1000 if unit.startswith("m") else float(value)


def _fraction(value: str) -> float:
    return float(value.rstrip("% ")) / 100 if "%" in value else float(value)


def _kv_dtype(word: str) -> str:
    word = word.replace(" ", "").replace("-", "")
    return {"float8": "fp8", "8bit": "fp8", "int8": "fp8", "half": "fp16"}.get(word, word)


def _distinct(m: re.Match[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(x for x in m.groups() if x))


def _one(field: str, convert: Callable[[str], object] = str, group: int = 1) -> Callable[[re.Match[str]], Fields]:
    return lambda m: {field: convert(m.group(group))}


def _first_group(field: str, convert: Callable[[str], object]) -> Callable[[re.Match[str]], Fields]:
    return lambda m: {field: convert(next(g for g in m.groups() if g))}


def _split(m: re.Match[str]) -> Fields:
    return {"input_tokens": tokens(m.group(1)), "output_tokens": tokens(m.group(2))}


def _refuse(code: str, value: str) -> Fields:
    """For words that name an impossible value: the request is refused, not read another way."""
    raise ParseError(code, value=value)


def _constant(fields: Fields) -> Callable[[re.Match[str]], Fields]:
    return lambda m: dict(fields)


# --- the tables, in the order they are applied -----------------------------------------------

#: comparisons and instance pins, before the catalog's family patterns
INSTANCE_RULES: tuple[Rule, ...] = (
    Rule(_COMPARE_TWO, lambda m: {"compare": _distinct(m)}),
    Rule(_VERSUS, lambda m: {"compare": _distinct(m)}),
    Rule(_COMPARE_ONE, lambda m: {"compare": (m.group(1),)}),
    Rule(_WHY_NOT, _one("why_not")),
    Rule(_INSTANCE_COUNT, lambda m: {"instance": m.group(2), "nodes": int(m.group(1))}),
    Rule(_INSTANCE_COUNT_SAID, lambda m: {"instance": m.group(2), "nodes": int(m.group(1))}),
    Rule(_NO_MULTI_NODE, _constant({"multi_node": False})),
    Rule(_SINGLE_GPU, _constant({"single_gpu": True})),
    Rule(_ONLY_INSTANCE, _one("instance")),
    # regions (issue 12): "cheapest region for ...", "top 3 regions", "compare regions"
    Rule(
        re.compile(
            r"\b(?:(?:cheapest|cheaper|lowest[- ]cost|least expensive|best)\s+(?:aws\s+)?regions?|compare\s+(?:the\s+)?regions"
            r"|which\s+regions?\s+(?:is\s+)?(?:the\s+)?cheapest|(?:top|cheapest)\s+(\d+)\s+(?:aws\s+)?regions)\b"
        ),
        lambda m: {"cheapest_regions": int(m.group(1)) if m.group(1) else 5},
    ),
    Rule(re.compile(r"(?<!\bsweet )\b(?:on\s+|use\s+|using\s+|with\s+)?spot(?:\s+(?:instances?|prices?|capacity|market))?\b"),
         _constant({"spot": True})),
)

#: numbers, precisions and ranking words, after every pin
NUMBER_RULES: tuple[Rule, ...] = (
    Rule(_NEGATIVE, lambda m: _refuse("negative_value", "-" + m.group(1).strip())),
    Rule(_MAX_SEQS, _one("max_num_seqs", int)),
    Rule(_BATCHED, _one("max_num_batched_tokens", tokens)),
    Rule(_EAGER, _constant({"enforce_eager": True})),
    Rule(_OFFLINE, _constant({"offline": True})),
    Rule(_CPU_OFFLOAD, _one("cpu_offload_gb", float)),
    Rule(_TP, _one("tp", int)),
    Rule(_PP, _one("pp", int)),
    Rule(_REPLICAS, _first_group("replicas", int)),
    Rule(_UTIL, _one("gpu_memory_utilization", _fraction)),
    Rule(_VLLM, _one("vllm_version")),
    Rule(_REGION, _one("region")),
    Rule(_BUDGET, _first_group("max_usd_per_hour", float)),
    Rule(_TTFT, lambda m: {"max_ttft_s": _seconds(m.group(1), m.group(2))}),
    Rule(_SPEED, _one("min_tokens_per_s", float)),
    Rule(_MAX_MODEL_LEN, _one("context_tokens", tokens)),
    Rule(_SPLIT, _split),
    Rule(_SPLIT_NAMED, _split),
    Rule(_KV, _first_group("kv_dtype", _kv_dtype)),
    Rule(_CONTEXT, _first_group("context_tokens", tokens)),
    Rule(_LOAD_MAX, _constant({"concurrency": "max"})),
    Rule(_LOAD_FRACTION, lambda m: _refuse("fractional_load", m.group(1))),
    Rule(_LOAD, _first_group("concurrency", int)),
    Rule(_WEIGHT, lambda m: {"weights": WEIGHT_WORDS[m.group(1)]}),
    Rule(_CHEAP, _constant({"sort": "cost"})),
    Rule(_FAST, _constant({"sort": "speed"})),
)


class Lexicon(NamedTuple):
    """The catalog's words as patterns: family constraints, GPU pins, "on <family>", GPU names."""

    family_rules: tuple[Rule, ...]  # only / exclude / a named instance / "on g6e"
    gpu_pin: Rule
    gpu_names: dict[str, str]


def lexicon(catalog: Catalog) -> Lexicon:
    """Built once per catalog (memoised on it): ~3 ms of regex compilation."""
    return catalog.memo.get(("lexicon",), _build_lexicon, catalog)


def _build_lexicon(catalog: Catalog) -> Lexicon:
    known = {i.family for i in catalog.instances.values()}
    expand: dict[str, tuple[str, ...]] = {f: (f,) for f in known}
    for base in {f.split("-")[0] for f in known if "-" in f} - known:  # "p6" names p6-b200 and p6-b300
        expand[base] = tuple(sorted(f for f in known if f.split("-")[0] == base))
    families = sorted(expand, key=len, reverse=True)
    family = r"(" + "|".join(map(re.escape, families)) + r")(?![\w-])(?!\.)"

    def named(m: re.Match[str]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(f for word in _distinct(m) for f in expand[word]))

    listing = family + r"(?:\s*(?:,|and|or|/|\+)\s*" + family + r")*"
    only = re.compile(
        r"\b(?:only|just|stick to|limit to|restrict to)\s*(?:the\s*)?(?:" + listing + r")(?:\s*(?:family|instances?))?"
        r"|\b" + family + r"\s*only\b"
    )
    exclude = re.compile(r"\b(?:exclude|excluding|except|no|not|without|avoid|skip|drop|ban)\s*(?:the\s*)?" + listing)
    on_family = re.compile(r"\b(?:on|using|with|in)\s+(?:an?\s+)?" + listing)
    names: dict[str, str] = {}
    for gpu in catalog.gpus.values():
        for alias in (gpu.id, *gpu.aliases):
            key = alias.lower().strip()
            if key and not key[0].isdigit() and len(key) >= 2:
                # an ambiguous alias stays as typed, so the plan can say which part it assumed
                names.setdefault(key, key if alias in gpu.ambiguous_aliases else gpu.id)
    gpu_alt = "|".join(sorted(map(re.escape, names), key=len, reverse=True))
    gpu_pin = re.compile(
        r"(?:\b(?:on|using|with|across|over)\s+)?(?:(?<![\w.])(\d+)\s*(?:x|×|\*)?\s*|\b(?:an?|single|one)\s+|(?<![\w.]))"
        r"(?:nvidia\s+)?(" + gpu_alt + r")s?(?![\w.])(?:\s*gpus?)?"
    )
    family_rules = (
        Rule(only, lambda m: {"families": named(m)}),
        Rule(exclude, lambda m: {"exclude_families": named(m)}),
        Rule(_ON_INSTANCE, _one("instance")),
        Rule(on_family, lambda m: {"families": named(m)}),
        *_place_rules(catalog),  # regions (issue 12)
    )
    pin = Rule(gpu_pin, lambda m: {"gpu": names[m.group(2)], "gpus": int(m.group(1)) if m.group(1) else 1})
    return Lexicon(family_rules, pin, names)


# --- regions (issue 12): place names ("frankfurt", "sao paulo") read as the region there -------


def _place_rules(catalog: Catalog) -> tuple[Rule, ...]:
    """A place a region's data names (data/regions.yaml `places`) sets that region."""
    places = {place: code for code, spec in catalog.regions.items() for place in spec.places}
    if not places:
        return ()
    words = "|".join(re.escape(p).replace(r"\ ", r"\s+") for p in sorted(places, key=len, reverse=True))
    pattern = re.compile(r"(?:\b(?:in|at|near|from|around)\s+(?:the\s+)?)?(?<![\w-])(" + words + r")(?![\w-])(?:\s+region)?")
    return (Rule(pattern, lambda m: {"region": places[re.sub(r"\s+", " ", m.group(1))]}),)
