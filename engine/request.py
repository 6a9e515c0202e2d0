"""What a user asks for: a Request, and a RequestDelta that a follow-up applies to it."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from engine.dtypes import KvDtype, WeightDtype

Concurrency = int | Literal["max"]
SortKey = Literal["cost", "speed"]

DEFAULT_CONTEXT = 8192
DEFAULT_CONCURRENCY = 1


class Request(BaseModel):
    """A capacity-planning question, normalised. ``None`` means "use the sensible default"."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field(min_length=1, max_length=200)
    weights: WeightDtype | None = None
    kv_dtype: KvDtype = "auto"
    context_tokens: int | None = Field(default=None, gt=0)
    input_tokens: int | None = Field(default=None, gt=0)
    output_tokens: int | None = Field(default=None, gt=0)
    concurrency: Concurrency = DEFAULT_CONCURRENCY
    instance: str | None = None
    gpu: str | None = None
    gpus: int | None = Field(default=None, gt=0)
    tp: int | None = Field(default=None, gt=0)
    gpu_memory_utilization: float | None = Field(default=None, gt=0, le=1)
    vllm_version: str | None = Field(default=None, pattern=r"^\d+\.\d+(\.\d+)?$")
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
    model_note: str | None = None

    @field_validator("concurrency")
    @classmethod
    def _positive(cls, value: Concurrency) -> Concurrency:
        if value != "max" and value <= 0:
            raise ValueError("concurrency must be a positive number of users, or 'max'")
        return value

    @field_validator("region")
    @classmethod
    def _aws_region(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z]{2}(-gov)?-[a-z]+-\d", value):
            raise ValueError(f"'{value}' is not an AWS region name like us-east-1 or eu-west-2")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Request:
        if self.instance and self.gpu:
            raise ValueError("pick either an instance (--instance) or a GPU type (--gpu), not both")
        if self.gpus is not None and not self.gpu:
            raise ValueError("--gpus needs --gpu to say which GPU (e.g. --gpu h100 --gpus 2)")
        if self.tp and self.gpus and self.gpus % self.tp:
            raise ValueError(f"tensor parallel {self.tp} does not divide {self.gpus} GPUs")
        if self.input_tokens and self.output_tokens and self.context_tokens:
            if self.input_tokens + self.output_tokens > self.context_tokens:
                raise ValueError(
                    f"input {self.input_tokens} + output {self.output_tokens} tokens exceed the "
                    f"{self.context_tokens}-token context; raise the context or shorten the split"
                )
        for limit in (self.input_tokens, self.output_tokens):
            if (
                limit
                and self.context_tokens
                and limit >= self.context_tokens
                and not (self.input_tokens and self.output_tokens)
            ):
                raise ValueError(f"a {limit}-token part does not leave room in a {self.context_tokens}-token context")
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


class RequestDelta(BaseModel):
    """A follow-up: only the fields it names change; everything else carries over."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    changes: dict[str, object] = {}
    reset: bool = False

    def apply(self, previous: Request) -> Request:
        if self.reset:
            return Request.model_validate(self.changes)
        merged = previous.model_dump()
        merged.update(self.changes)
        return Request.model_validate(merged)
