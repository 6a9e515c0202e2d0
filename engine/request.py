"""What a user asks for: a Request, and a RequestDelta that a follow-up applies to it.

A NamedTuple checked by ``engine.constraints`` rather than a pydantic model or a dataclass: a
`headroom plan` builds one on every start, and importing pydantic, or dataclasses with inspect,
would cost more than the whole answer (issue 14). The limits are declared once, in the
annotations, and pydantic honours the same ones where a Request is read back from Redis or a
Slack button (``Request.__get_pydantic_core_schema__``).
"""

import json
import re
from collections.abc import Mapping
from typing import Annotated, Any, Literal, NamedTuple

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


class _Fields(NamedTuple):
    """The fields of a Request, their types, limits and defaults (``Request`` checks them)."""

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



class Request(_Fields):
    """A capacity-planning question, normalised. ``None`` means "use the sensible default".

    Built from keywords only (checked here), ``Request.from_data`` (a mapping, e.g. stored JSON:
    unknown keys refused too) or ``replace``; any bad value raises ``constraints.Invalid``. Immutable,
    and equal to a Request with the same fields.
    """

    __slots__ = ()

    def __new__(cls, **fields: Any) -> "Request":
        unknown = _unknown(fields)
        unknown += [problem(r.name, "missing", None, "Field required") for r in _RULES if r.required and r.name not in fields]
        if unknown:
            raise Invalid(unknown)
        problems: list[dict[str, Any]] = []
        for rule in _RULES:
            if rule.name in fields:
                kept, found = check(rule, fields[rule.name])
                if found:
                    problems.append(found)
                else:
                    fields[rule.name] = kept  # pydantic's lax reading: 2.0 -> 2, a list -> a tuple
        if problems:
            raise Invalid(problems)
        self = super().__new__(cls, **fields)
        problems = _field_problems(self) or _consistency_problems(self)
        if problems:
            raise Invalid(problems)
        return self

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> "Request":
        """A Request from a mapping (flags, words, stored JSON); unknown or missing keys are refused as pydantic would."""
        return cls(**data)

    def replace(self, **changes: Any) -> "Request":
        """This request with some fields changed, checked again."""
        return Request(**{**self._asdict(), **changes})

    _replace = replace  # NamedTuple's own would skip the checks

    @classmethod
    def _make(cls, iterable: Any) -> "Request":  # type: ignore[override]
        """NamedTuple's own would skip the checks too: values in field order, checked like keywords."""
        return cls(**dict(zip(cls._fields, iterable, strict=True)))

    def __getnewargs_ex__(self) -> tuple[tuple[()], dict[str, Any]]:
        """copy and pickle rebuild a Request from its fields by name (``__new__`` takes no positional ones)."""
        return (), self._asdict()

    def as_data(self, exclude_defaults: bool = False) -> dict[str, Any]:
        """A JSON-native mapping that ``from_data`` reads back (tuples as lists, the model note as its fields)."""
        out: dict[str, Any] = {}
        defaults = self._field_defaults
        value: Any
        for name, value in zip(self._fields, self, strict=True):
            if exclude_defaults and name in defaults and value == defaults[name]:
                continue
            if isinstance(value, Note):
                value = {"code": value.code, "data": value.data}
            elif isinstance(value, tuple):
                value = list(value)
            out[name] = value
        return out

    def as_json(self) -> str:
        return json.dumps(self.as_data(), separators=(",", ":"))

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        """Inside a pydantic model (a stored answer): each field validated by its annotation, then the Request's checks.

        A Request is stored as the object ``as_data`` writes, so pydantic reads it as a typed dict of the
        same fields (unknown keys forbidden), names a bad field as its own error, and builds the Request.
        """

        from pydantic_core import core_schema

        stored = core_schema.typed_dict_schema(
            {name: core_schema.typed_dict_field(handler.generate_schema(hint), required=name not in cls._field_defaults)
             for name, hint in _Fields.__annotations__.items()},
            extra_behavior="forbid",
        )  # fmt: skip
        fields = core_schema.no_info_after_validator_function(lambda data: cls(**data), stored)
        return core_schema.no_info_before_validator_function(
            lambda value: value.as_data() if isinstance(value, cls) else value,
            fields,
            serialization=core_schema.plain_serializer_function_ser_schema(lambda r: r.as_data()),
        )

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


class RequestDelta(NamedTuple):
    """A follow-up: only the fields it names change (``engine.followup.merge`` applies it)."""

    changes: dict[str, Any]
    reset: bool = False
    unread: tuple[str, ...] = ()  # words the follow-up had that changed nothing (said back to the user)


_RULES = rules_of(_Fields, _Fields._field_defaults)
_FIELD_NAMES = frozenset(_Fields._fields)


def _unknown(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [problem(str(k), "extra_forbidden", v, "Extra inputs are not permitted") for k, v in data.items()
            if k not in _FIELD_NAMES]  # fmt: skip


def _field_problems(r: "Request") -> list[dict[str, Any]]:
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


def _consistency_problems(r: "Request") -> list[dict[str, Any]]:
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
