"""What a user asks for: a Request, and a RequestDelta that a follow-up applies to it.

A frozen dataclass checked by ``engine.constraints`` rather than a pydantic model: a `headroom
plan` builds one on every start, and importing pydantic would cost more than the whole answer
(issue 14). The limits are declared once, in the annotations, and pydantic honours the same ones
where a Request is read back from Redis or a Slack button.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from engine.constraints import Bounds, Invalid, check, problem, rules_of
from engine.dtypes import KvDtype, WeightDtype
from engine.notes import Note
from engine.serving_extras import LORA_RANKS

Concurrency = int | Literal["max"]
SortKey = Literal["cost", "speed"]

DEFAULT_CONTEXT = 8192
DEFAULT_CONCURRENCY = 1
#: no model reads more than 16M tokens of context (Llama 4 Scout: 10M); beyond is a typo, not a plan
MAX_TOKENS = 16 * 1024 * 1024
MAX_USERS = 1_000_000
MAX_NODES = 16


#: the memory flags, vision, drafting and LoRA settings (issue 10): carried by the plan as given, reported
#: when a follow-up changes one, and read from a pasted command by a diagnosis
MEMORY_FLAG_FIELDS = (
    "max_num_seqs", "max_num_batched_tokens", "enforce_eager", "cpu_offload_gb", "kv_cache_memory_bytes", "offline",
)  # fmt: skip
EXTRA_FIELDS = ("text_only", "draft", "speculative_tokens", "max_loras", "lora_rank")

#: vLLM's largest default --max-num-seqs (vllm serve on a >= 70 GiB GPU; engine/catalog/data/vllm.yaml batching)
BIGGEST_DEFAULT_MAX_NUM_SEQS = 1024

def tokens(text: str) -> int:
    """A token count as flags and words write one: '8k' -> 8192, '1.5k' -> 1536, '1m' -> 1048576."""
    text = text.replace(" ", "")
    scale = 1
    if text.endswith("k"):
        text, scale = text[:-1], 1024
    elif text.endswith("m"):
        text, scale = text[:-1], 1024 * 1024
    return int(float(text) * scale)


_POSITIVE = Bounds(gt=0)
_TOKENS = Bounds(gt=0, le=MAX_TOKENS)
_REGION = re.compile(r"[a-z]{2}(-gov)?-[a-z]+-\d")


@dataclass(frozen=True, slots=True, kw_only=True)
class Request:
    """A capacity-planning question, normalised. ``None`` means "use the sensible default".

    Built from keywords (checked in ``__post_init__``), ``Request.from_data`` (a mapping, e.g. stored
    JSON: unknown keys refused too) or ``replace``; any bad value raises ``constraints.Invalid``.
    """

    model: Annotated[str, Bounds(min_length=1, max_length=200)]
    weights: WeightDtype | None = None
    kv_dtype: KvDtype = "auto"
    context_tokens: Annotated[int | None, _TOKENS] = None
    input_tokens: Annotated[int | None, _TOKENS] = None
    output_tokens: Annotated[int | None, _TOKENS] = None
    concurrency: Concurrency | None = None  # None: not said (one user, and the answer says it assumed so)
    instance: str | None = None
    nodes: Annotated[int | None, Bounds(gt=0, le=MAX_NODES)] = None  # how many of the pinned instance ("2x p5.48xlarge")
    gpu: str | None = None
    gpus: Annotated[int | None, _POSITIVE] = None
    tp: Annotated[int | None, _POSITIVE] = None
    pp: Annotated[int | None, _POSITIVE] = None  # pipeline stages (a command's --pipeline-parallel-size)
    replicas: Annotated[int | None, _POSITIVE] = None  # data-parallel replicas (a command's --data-parallel-size)
    gpu_memory_utilization: Annotated[float | None, Bounds(gt=0, le=1)] = None
    vllm_version: Annotated[str | None, Bounds(pattern=r"^\d+\.\d+(\.\d+)?$")] = None
    # vllm serve flags that change start-up memory (None / False: vLLM's default)
    max_num_seqs: Annotated[int | None, Bounds(gt=0, le=MAX_USERS)] = None
    max_num_batched_tokens: Annotated[int | None, _TOKENS] = None
    enforce_eager: bool = False
    cpu_offload_gb: Annotated[float | None, Bounds(ge=0, le=4096)] = None
    kv_cache_memory_bytes: Annotated[int | None, Bounds(gt=0, le=2**50)] = None
    offline: bool = False  # vLLM's offline LLM() class instead of `vllm serve`: other batch defaults, a Python call
    region: str = "us-east-1"
    # constraints and targets
    families: tuple[str, ...] = ()
    exclude_families: tuple[str, ...] = ()
    multi_node: bool = True
    single_gpu: bool = False
    max_usd_per_hour: Annotated[float | None, _POSITIVE] = None
    min_tokens_per_s: Annotated[float | None, _POSITIVE] = None
    max_ttft_s: Annotated[float | None, _POSITIVE] = None
    compare: tuple[str, ...] = ()
    why_not: str | None = None
    sort: SortKey = "cost"
    #: what a loose request was read as ("70B" -> a Llama-3.3-70B-shaped model), said in the answer
    model_note: Note | None = None
    # regions (issue 12): "cheapest region for ...": how many regions to compare (cheapest fitting instance each)
    cheapest_regions: Annotated[int | None, Bounds(gt=0, le=40)] = None
    spot: bool = False  # 'on spot': the answer says whether spot prices are known for the region
    # issue 10: a VLM served for text only, a speculative drafter, LoRA slots (engine/serving_extras.py)
    text_only: bool = False
    zero_modalities: tuple[str, ...] = ()  # a pasted --limit-mm-per-prompt's zeros: text only if they cover the model's
    draft: Annotated[str | None, Bounds(min_length=1, max_length=200)] = None  # a model, or "mtp"
    speculative_tokens: Annotated[int | None, Bounds(gt=0, le=16)] = None
    max_loras: Annotated[int | None, Bounds(gt=0, le=256)] = None
    lora_rank: Annotated[int | None, _POSITIVE] = None

    def __post_init__(self) -> None:
        problems: list[dict[str, Any]] = []
        for rule in _RULES:
            value = getattr(self, rule.name)
            kept, found = check(rule, value)
            if found:
                problems.append(found)
            elif kept is not value:
                object.__setattr__(self, rule.name, kept)  # pydantic's lax reading: 2.0 -> 2, a list -> a tuple
        if not problems:
            problems = _field_problems(self) or _consistency_problems(self)
        if problems:
            raise Invalid(problems)

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Request:
        """A Request from a mapping (flags, words, stored JSON); unknown or missing keys are refused as pydantic would."""
        unknown = _unknown(data)
        if "model" not in data:
            unknown.append(problem("model", "missing", None, "Field required"))
        if unknown:
            raise Invalid(unknown)
        return cls(**data)

    def replace(self, **changes: Any) -> Request:
        """This request with some fields changed, checked again."""
        unknown = _unknown(changes)
        if unknown:
            raise Invalid(unknown)
        return dataclasses.replace(self, **changes)

    def as_data(self, exclude_defaults: bool = False) -> dict[str, Any]:
        """A JSON-native mapping that ``from_data`` reads back (tuples as lists, the model note as its fields)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if exclude_defaults and value == f.default:
                continue
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Note):
                value = {"code": value.code, "data": value.data}
            out[f.name] = value
        return out

    def as_json(self) -> str:
        return json.dumps(self.as_data(), separators=(",", ":"))

    @property
    def users(self) -> Concurrency:
        """Concurrent users to plan for (one when not said)."""
        return DEFAULT_CONCURRENCY if self.concurrency is None else self.concurrency

    # --- derived values -----------------------------------------------------------------

    @property
    def context(self) -> int:
        if self.context_tokens:
            return self.context_tokens
        if self.input_tokens and self.output_tokens:
            return self.input_tokens + self.output_tokens
        return DEFAULT_CONTEXT

    @property
    def split(self) -> tuple[int, int]:
        """(input, output) tokens of a typical request; the default keeps a quarter for output, at most 1,024."""
        context = self.context
        if self.input_tokens and self.output_tokens:
            return self.input_tokens, self.output_tokens
        if self.output_tokens:
            return context - self.output_tokens, self.output_tokens
        if self.input_tokens:
            return self.input_tokens, context - self.input_tokens
        output = min(1024, max(1, context // 4))
        return context - output, output


@dataclass(frozen=True, slots=True)
class RequestDelta:
    """A follow-up: only the fields it names change (``engine.followup.merge`` applies it)."""

    changes: dict[str, Any] = field(default_factory=dict)
    reset: bool = False
    unread: tuple[str, ...] = ()  # words the follow-up had that changed nothing (said back to the user)


_RULES = rules_of(Request, {f.name: f.default for f in dataclasses.fields(Request) if f.default is not dataclasses.MISSING})
_FIELD_NAMES = frozenset(r.name for r in _RULES)


def _unknown(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [problem(str(k), "extra_forbidden", v, "Extra inputs are not permitted") for k, v in data.items()
            if k not in _FIELD_NAMES]  # fmt: skip


def _field_problems(r: Request) -> list[dict[str, Any]]:
    """The limits a type and bounds cannot say: users, LoRA ranks, region names."""
    found = []
    users = r.concurrency
    if users is not None and users != "max":
        if users <= 0:
            found.append(problem("concurrency", "concurrency_positive", users, "concurrency must be positive or 'max'"))
        elif users > MAX_USERS:
            found.append(problem("concurrency", "concurrency_too_large", users, "too many users",
                                 {"limit": MAX_USERS, "value": users}))  # fmt: skip
    if r.lora_rank is not None and r.lora_rank not in LORA_RANKS:  # vLLM refuses any other --max-lora-rank
        found.append(problem("lora_rank", "lora_rank", r.lora_rank, "not a rank vLLM accepts",
                             {"value": r.lora_rank, "ranks": str(LORA_RANKS)}))  # fmt: skip
    if not _REGION.fullmatch(r.region):
        found.append(problem("region", "region_name", r.region, "not an AWS region name", {"value": r.region}))
    return found


def _consistency_problems(r: Request) -> list[dict[str, Any]]:
    """Fields that contradict each other (the first contradiction found)."""

    def one(kind: str, message: str, **ctx: Any) -> list[dict[str, Any]]:
        return [problem("", kind, None, message, ctx)]

    if r.instance and r.gpu:
        return one("instance_and_gpu", "an instance and a GPU type")
    if r.gpus is not None and not r.gpu:
        return one("gpus_without_gpu", "a GPU count without a GPU type")
    if r.nodes is not None and not r.instance:
        return one("nodes_without_instance", "an instance count without an instance type")
    if r.tp and r.gpus and r.gpus % r.tp:
        return one("tp_not_divisor", "TP does not divide the GPUs", tp=r.tp, gpus=r.gpus)
    if r.input_tokens and r.output_tokens and r.context_tokens and r.input_tokens + r.output_tokens > r.context_tokens:
        return one("split_exceeds_context", "input + output exceed the context",
                   input=r.input_tokens, output=r.output_tokens, context=r.context_tokens)  # fmt: skip
    # vLLM's SchedulerConfig refuses max_num_batched_tokens < max_num_seqs; its default max_num_seqs is 256
    # or 1,024 by GPU, so a smaller token budget alone starts on some GPUs and not on others: ask for both
    batched, seqs = r.max_num_batched_tokens, r.max_num_seqs
    if batched is not None and batched < (seqs or BIGGEST_DEFAULT_MAX_NUM_SEQS):
        return one("batched_below_seqs", "max_num_batched_tokens below max_num_seqs", batched=batched, seqs=seqs or 0)
    for limit in (r.input_tokens, r.output_tokens):
        if limit and r.context_tokens and limit >= r.context_tokens and not (r.input_tokens and r.output_tokens):
            return one("part_fills_context", "a part fills the context", part=limit, context=r.context_tokens)
    return []
