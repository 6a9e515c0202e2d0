"""What a user asks for: a Request, and a RequestDelta that a follow-up applies to it."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

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
MEMORY_FLAG_FIELDS = ("max_num_seqs", "max_num_batched_tokens", "enforce_eager", "cpu_offload_gb", "kv_cache_memory_bytes")
EXTRA_FIELDS = ("text_only", "draft", "speculative_tokens", "max_loras", "lora_rank")

#: vLLM's largest default --max-num-seqs (vllm serve on a >= 70 GiB GPU; engine/catalog/data/vllm.yaml batching)
BIGGEST_DEFAULT_MAX_NUM_SEQS = 1024


class Request(BaseModel):
    """A capacity-planning question, normalised. ``None`` means "use the sensible default"."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(min_length=1, max_length=200)
    weights: WeightDtype | None = None
    kv_dtype: KvDtype = "auto"
    context_tokens: int | None = Field(default=None, gt=0, le=MAX_TOKENS)
    input_tokens: int | None = Field(default=None, gt=0, le=MAX_TOKENS)
    output_tokens: int | None = Field(default=None, gt=0, le=MAX_TOKENS)
    concurrency: Concurrency = DEFAULT_CONCURRENCY
    instance: str | None = None
    nodes: int | None = Field(default=None, gt=0, le=MAX_NODES)  # how many of the pinned instance ("2x p5.48xlarge")
    gpu: str | None = None
    gpus: int | None = Field(default=None, gt=0)
    tp: int | None = Field(default=None, gt=0)
    pp: int | None = Field(default=None, gt=0)  # pipeline stages (a command's --pipeline-parallel-size)
    replicas: int | None = Field(default=None, gt=0)  # data-parallel replicas (a command's --data-parallel-size)
    gpu_memory_utilization: float | None = Field(default=None, gt=0, le=1)
    vllm_version: str | None = Field(default=None, pattern=r"^\d+\.\d+(\.\d+)?$")
    # vllm serve flags that change start-up memory (None / False: vLLM's default)
    max_num_seqs: int | None = Field(default=None, gt=0, le=MAX_USERS)
    max_num_batched_tokens: int | None = Field(default=None, gt=0, le=MAX_TOKENS)
    enforce_eager: bool = False
    cpu_offload_gb: float | None = Field(default=None, ge=0, le=4096)
    kv_cache_memory_bytes: int | None = Field(default=None, gt=0, le=2**50)
    region: str = "us-east-1"
    # constraints and targets
    families: tuple[str, ...] = ()
    exclude_families: tuple[str, ...] = ()
    multi_node: bool = True
    single_gpu: bool = False
    max_usd_per_hour: float | None = Field(default=None, gt=0)
    min_tokens_per_s: float | None = Field(default=None, gt=0)
    max_ttft_s: float | None = Field(default=None, gt=0)
    compare: tuple[str, ...] = ()
    why_not: str | None = None
    sort: SortKey = "cost"
    #: what a loose request was read as ("70B" -> a Llama-3.3-70B-shaped model), said in the answer
    model_note: Note | None = None
    # regions (issue 12): "cheapest region for ...": how many regions to compare (cheapest fitting instance each)
    cheapest_regions: int | None = Field(default=None, gt=0, le=40)
    spot: bool = False  # 'on spot': the answer says whether spot prices are known for the region
    # issue 10: a VLM served for text only, a speculative drafter, LoRA slots (engine/serving_extras.py)
    text_only: bool = False
    zero_modalities: tuple[str, ...] = ()  # a pasted --limit-mm-per-prompt's zeros: text only if they cover the model's
    draft: str | None = Field(default=None, min_length=1, max_length=200)  # a model, or "mtp"
    speculative_tokens: int | None = Field(default=None, gt=0, le=16)
    max_loras: int | None = Field(default=None, gt=0, le=256)
    lora_rank: int | None = Field(default=None, gt=0)

    @field_validator("concurrency")
    @classmethod
    def _positive(cls, value: Concurrency) -> Concurrency:
        if value != "max" and value <= 0:
            raise PydanticCustomError("concurrency_positive", "concurrency must be positive or 'max'")
        if value != "max" and value > MAX_USERS:
            raise PydanticCustomError("concurrency_too_large", "too many users", {"limit": MAX_USERS, "value": value})
        return value

    @field_validator("lora_rank")
    @classmethod
    def _vllm_rank(cls, value: int | None) -> int | None:
        """vLLM refuses any other --max-lora-rank (issue 10)."""
        if value is not None and value not in LORA_RANKS:
            raise PydanticCustomError("lora_rank", "not a rank vLLM accepts", {"value": value, "ranks": str(LORA_RANKS)})
        return value

    @field_validator("region")
    @classmethod
    def _aws_region(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z]{2}(-gov)?-[a-z]+-\d", value):
            raise PydanticCustomError("region_name", "not an AWS region name", {"value": value})
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Request:
        if self.instance and self.gpu:
            raise PydanticCustomError("instance_and_gpu", "an instance and a GPU type")
        if self.gpus is not None and not self.gpu:
            raise PydanticCustomError("gpus_without_gpu", "a GPU count without a GPU type")
        if self.nodes is not None and not self.instance:
            raise PydanticCustomError("nodes_without_instance", "an instance count without an instance type")
        if self.tp and self.gpus and self.gpus % self.tp:
            raise PydanticCustomError("tp_not_divisor", "TP does not divide the GPUs", {"tp": self.tp, "gpus": self.gpus})
        if self.input_tokens and self.output_tokens and self.context_tokens:
            if self.input_tokens + self.output_tokens > self.context_tokens:
                raise PydanticCustomError(
                    "split_exceeds_context",
                    "input + output exceed the context",
                    {"input": self.input_tokens, "output": self.output_tokens, "context": self.context_tokens},
                )
        # vLLM's SchedulerConfig refuses max_num_batched_tokens < max_num_seqs; its default max_num_seqs is 256
        # or 1,024 by GPU, so a smaller token budget alone starts on some GPUs and not on others: ask for both
        batched, seqs = self.max_num_batched_tokens, self.max_num_seqs
        if batched is not None and batched < (seqs or BIGGEST_DEFAULT_MAX_NUM_SEQS):
            raise PydanticCustomError(
                "batched_below_seqs", "max_num_batched_tokens below max_num_seqs", {"batched": batched, "seqs": seqs or 0}
            )
        for limit in (self.input_tokens, self.output_tokens):
            if (
                limit
                and self.context_tokens
                and limit >= self.context_tokens
                and not (self.input_tokens and self.output_tokens)
            ):
                raise PydanticCustomError(
                    "part_fills_context", "a part fills the context", {"part": limit, "context": self.context_tokens}
                )
        return self

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


def validation_problems(exc: ValidationError) -> list[dict[str, object]]:
    """A rejected Request as data for the error template: field, error type, and the limits pydantic names."""
    problems: list[dict[str, object]] = []
    for error in exc.errors():
        context = {k: v for k, v in (error.get("ctx") or {}).items() if isinstance(v, str | int | float)}
        problems.append(
            {
                "field": ".".join(str(p) for p in error["loc"]),
                "type": error["type"],
                "input": error["input"] if isinstance(error["input"], str | int | float) else None,
                "ctx": context,
                "message": error["msg"],
            }
        )
    return problems


class RequestDelta(BaseModel):
    """A follow-up: only the fields it names change (``engine.followup.merge`` applies it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    changes: dict[str, object] = {}
    reset: bool = False
    unread: tuple[str, ...] = ()  # words the follow-up had that changed nothing (said back to the user)
